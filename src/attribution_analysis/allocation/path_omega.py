"""Path credit as the allocation weight ω (``omega_source='path_credit'``, mta only).

By default a campaign's weight in its cell C(channel, period[, geo]) is its effective
exposure. With path credit the weight is the credit the campaign earned on the journeys that
converted in that period, read from ``analysis/path_campaign_credit.csv`` (written by
``attribute_paths`` beside ``analysis/path_attribution.json``, which records the CSV's hash).

Construction, per cell (the pairs are the same as with exposure: the campaigns *live* in the
cell, i.e. with positive effective exposure, which includes the adstock carry-over):

* **dated**: when any live campaign of the cell has credit on conversion days inside the
  period, ω = that credit. This follows the MMM's own timing: C(channel, week) is the
  conversions of that week the channel caused, and the path credit of that week's
  conversions says which campaigns those converting users had touched.
* **fallback**: otherwise (the journeys do not cover the period, or none of that period's
  conversions touched the channel), ω = the campaign's mean path credit per period over the
  journey window (its total credit x period length / window length), for its live
  campaigns only. On the same scale as the dated weights (credit per period), so an EM that
  also fits rates sees comparable weights in both kinds of cell.
* a cell whose live campaigns have no path credit at all keeps ω = 0 and, when its total is
  positive, is listed as unallocated (never spread elsewhere).

Journeys carry no geo: in a geo model the national ω of a period is used in every geo cell
where the campaign is live. Mass is conserved as with exposure: the split of a cell's total
always sums to it, whatever the weights.
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from pydantic import ValidationError

from attribution_analysis import layout
from attribution_analysis.contracts.allocation import OmegaRecord
from attribution_analysis.contracts.common import Finding
from attribution_analysis.contracts.paths import PathAttributionReport
from attribution_analysis.errors import (
    DataValidationError,
    MissingInputError,
    WorkspaceError,
    arg,
    step_ref,
)
from attribution_analysis.workspace import Workspace

PATH_REPORT = layout.PATH_ATTRIBUTION.path
RUN_PATHS = (
    f"run {step_ref('attribute_paths')} first on {layout.JOURNEYS.path} with a campaign column, "
    f"or allocate with {arg('omega_source')} 'exposure'."
)
RERUN_PATHS = f"re-run {step_ref('attribute_paths')}, which writes both together."
RULE = (
    "omega(campaign, cell) = path credit the campaign earned on the conversions of the cell's "
    "period (dated); in cells with no dated credit, its mean path credit per period over the "
    "journey window (fallback); only campaigns live in the cell (positive effective exposure); "
    "journeys have no geo, so every geo cell of a period uses the national credit"
)
FALLBACK_WARNING_SHARE = 0.5  # above this share of the totals, most ω is not from its period
SHOWN = 5


@dataclass
class PathOmega:
    rows: pd.DataFrame  # date, [geo], channel, campaign, path_credit (> 0 only)
    files: list[Path]
    record: OmegaRecord
    findings: list[Finding] = field(default_factory=list)


def read_path_credit(ws: Workspace) -> tuple[PathAttributionReport, str, pd.DataFrame, list[Path]]:
    """The path report, its hash, the dated credit table and the files read; refuses a missing
    or stale one with the step to run."""
    path = ws.resolve(PATH_REPORT)
    if not path.is_file():
        raise MissingInputError(
            f"{arg('omega_source')} 'path_credit' needs {PATH_REPORT}, which does not exist.",
            fix=RUN_PATHS,
            file=PATH_REPORT,
        )
    # Parse and hash the same bytes: an attribute_paths run landing between two reads
    # could otherwise pair one report's content with another's hash.
    report_bytes = path.read_bytes()
    try:
        report = PathAttributionReport.model_validate(json.loads(report_bytes.decode("utf-8")))
    except (json.JSONDecodeError, UnicodeDecodeError, ValidationError) as exc:
        raise DataValidationError(
            problem=f"the path attribution report cannot be read ({type(exc).__name__}: "
            f"{str(exc).splitlines()[0]}).",
            fix=f"re-run {step_ref('attribute_paths')} to rewrite it.",
            file=PATH_REPORT,
            code="bad_contract",
        ) from None
    summary = report.campaign_credit
    if summary is None:
        raise MissingInputError(
            f"{PATH_REPORT} has no campaign credit: the journeys it was computed from carry no "
            f"campaign column ({report.input.file}), so there is no path-based ω.",
            fix=f"add a campaign column to {layout.JOURNEYS.path} and re-run "
            f"{step_ref('attribute_paths')}, or allocate with {arg('omega_source')} 'exposure'.",
            file=PATH_REPORT,
        )
    journeys = report.input.file
    recorded = report.metadata.input_hashes.get(journeys)
    current = ws.resolve(journeys)
    if recorded is None or not current.is_file() or ws.sha256(current) != recorded:
        raise WorkspaceError(
            f"{PATH_REPORT} is stale: {journeys} changed or disappeared since attribute_paths "
            "ran, so its campaign credit no longer describes the journeys.",
            fix=f"re-run {step_ref('attribute_paths')} on the current journeys, then allocate "
            "again.",
            file=PATH_REPORT,
        )
    csv_path = ws.resolve(summary.file)
    if not csv_path.is_file():
        raise MissingInputError(
            f"{summary.file} is missing although {PATH_REPORT} lists it.",
            fix=RERUN_PATHS,
            file=summary.file,
        )
    csv_bytes = csv_path.read_bytes()
    if hashlib.sha256(csv_bytes).hexdigest() != summary.sha256:
        raise WorkspaceError(
            f"{summary.file} is stale: it is not the file {PATH_REPORT} records (sha256 "
            "differs), so it was edited or written by another run.",
            fix=RERUN_PATHS,
            file=summary.file,
        )
    table = pd.read_csv(
        io.BytesIO(csv_bytes),
        dtype={"mmm_channel": str, "channel": str, "campaign": str, "date": str},
        keep_default_na=False,
    )
    return report, hashlib.sha256(report_bytes).hexdigest(), table, [path, csv_path]


GRAIN_DAYS = {"weekly": 7, "daily": 1}
VALIDATION_REPORT = layout.DATA_VALIDATION.path


def _periods(ws: Workspace, dates: np.ndarray) -> tuple[np.ndarray, int]:
    """Sorted period starts (datetime64[D]) and the period length in days: the grain the
    validation step chose (the panel's own), else the median gap between periods."""
    starts = np.unique(dates.astype("datetime64[D]"))
    path = ws.resolve(VALIDATION_REPORT)
    if path.is_file():
        try:
            grain = json.loads(path.read_text("utf-8")).get("grain")
        except (json.JSONDecodeError, UnicodeDecodeError):
            grain = None  # the loaders have already refused an unreadable report
        if grain in GRAIN_DAYS:
            return starts, GRAIN_DAYS[grain]
    step = int(np.median(np.diff(starts).astype(np.int64))) if len(starts) > 1 else 7
    return starts, max(step, 1)


def path_omega(
    ws: Workspace, effective: pd.DataFrame, totals: pd.DataFrame, keys: list[str]
) -> PathOmega:
    """Path-credit weights for the live (cell, campaign) pairs of ``effective``.

    ``effective``: date (YYYY-MM-DD), [geo], channel, campaign, effective_exposure (the full
    grid). ``totals``: the cells' ``keys`` and ``total``. Returns the rows to allocate on.
    """
    report, report_sha, table, files = read_path_credit(ws)
    summary = report.campaign_credit
    assert summary is not None  # read_path_credit refuses a report without it
    starts, step = _periods(ws, pd.to_datetime(effective["date"]).to_numpy())
    day = pd.to_datetime(table["date"]).to_numpy().astype("datetime64[D]")
    index = np.searchsorted(starts, day, side="right") - 1
    inside = (index >= 0) & (day < starts[np.maximum(index, 0)] + np.timedelta64(step, "D"))
    known = pd.MultiIndex.from_frame(effective[["channel", "campaign"]].drop_duplicates())
    matched = pd.MultiIndex.from_arrays([table["mmm_channel"], table["campaign"]]).isin(known)
    credit = table["credit"].to_numpy(dtype=float)
    unmatched = float(credit[~matched].sum())
    outside = float(credit[matched & ~inside].sum())
    findings = _coverage_findings(table, matched, credit, unmatched, outside, summary.file)
    use = matched & inside
    dated = (
        pd.DataFrame(
            {
                "channel": table["mmm_channel"].to_numpy()[use],
                "campaign": table["campaign"].to_numpy()[use],
                "date": pd.DatetimeIndex(starts[index[use]]).strftime("%Y-%m-%d"),
                "dated": credit[use],
            }
        )
        .groupby(["channel", "campaign", "date"], as_index=False)["dated"]
        .sum()
    )
    # Mean credit per period over the journey window (first to last touch day).
    first = report.input.first_date or summary.first_date
    last = report.input.last_date or summary.last_date
    window_days = (last - first).days + 1 if first is not None and last is not None else step
    mean = (
        pd.DataFrame({"channel": table["mmm_channel"], "campaign": table["campaign"], "c": credit})
        .groupby(["channel", "campaign"])["c"]
        .sum()
        .mul(step / max(window_days, 1))
        .rename("mean")
    )
    live, cells = _live_weights(effective, totals, keys, dated, mean)
    record = _record(report, report_sha, summary.file, cells, unmatched, outside)
    findings.extend(_findings(record, cells, live, effective, summary.file))
    rows = live.loc[live["path_credit"] > 0, [*keys, "campaign", "path_credit"]]
    return PathOmega(rows.reset_index(drop=True), files, record, findings)


def _coverage_findings(
    table: pd.DataFrame,
    matched: np.ndarray,
    credit: np.ndarray,
    unmatched: float,
    outside: float,
    credit_file: str,
) -> list[Finding]:
    """Path credit that cannot be used: campaigns the panel lacks, days outside the periods."""
    findings: list[Finding] = []
    if unmatched > 0:
        missing = table.loc[~matched]
        names = sorted(set(missing["mmm_channel"] + "/" + missing["campaign"]))
        findings.append(
            Finding(
                code="path_campaigns_not_in_panel",
                severity="warning",
                subject=credit_file,
                value=unmatched,
                message=f"{len(names)} campaign(s) of the path credit are not in the campaign "
                f"panel under the same channel ({', '.join(names[:SHOWN])}"
                f"{' ...' if len(names) > SHOWN else ''}); their credit ({unmatched:.4g} of "
                f"{credit.sum():.4g}) is not used. Map channel names with attribute_paths' "
                "channel_map, or name campaigns the same way in both sources.",
            )
        )
    if outside > 0:
        findings.append(
            Finding(
                code="path_credit_outside_window",
                severity="info",
                subject=credit_file,
                value=outside,
                message=f"{outside:.4g} of the matched path credit "
                f"({outside / credit[matched].sum():.1%}) is on conversion days outside the "
                "allocated periods; it enters only the campaigns' mean credit per period "
                "(fallback cells).",
            )
        )
    return findings


def _live_weights(
    effective: pd.DataFrame,
    totals: pd.DataFrame,
    keys: list[str],
    dated: pd.DataFrame,
    mean: pd.Series,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """ω of every live (cell, campaign) pair (dated credit where the cell has any, else the
    mean per period), and each cell's status: dated, fallback or none."""
    live = effective.loc[effective["effective_exposure"] > 0, [*keys, "campaign"]]
    live = live.merge(dated, on=["channel", "campaign", "date"], how="left")
    live = live.merge(mean, left_on=["channel", "campaign"], right_index=True, how="left")
    live[["dated", "mean"]] = live[["dated", "mean"]].fillna(0.0)
    cell_dated = live.groupby(keys)["dated"].transform("max") > 0
    live["path_credit"] = np.where(cell_dated, live["dated"], live["mean"])
    live["status"] = np.where(cell_dated, "dated", "fallback")
    cells = live.groupby(keys, as_index=False).agg(
        status=("status", "first"), weight=("path_credit", "sum")
    )
    cells.loc[cells["weight"] <= 0, "status"] = "none"
    cells = totals[[*keys, "total"]].merge(cells, on=keys, how="left")
    cells["status"] = cells["status"].fillna("none")
    return live, cells


def _record(
    report: PathAttributionReport,
    report_sha: str,
    credit_file: str,
    cells: pd.DataFrame,
    unmatched: float,
    outside: float,
) -> OmegaRecord:
    summary = report.campaign_credit
    assert summary is not None
    count = cells["status"].value_counts()
    total = float(cells["total"].sum())
    by_status = cells.groupby("status")["total"].sum()
    return OmegaRecord(
        source=summary.omega_source,
        rule=RULE,
        path_attribution_file=PATH_REPORT,
        path_attribution_sha256=report_sha,
        credit_file=credit_file,
        method=summary.method,
        groups_dated=int(count.get("dated", 0)),
        groups_fallback=int(count.get("fallback", 0)),
        groups_without_credit=int(count.get("none", 0)),
        total_share_dated=float(by_status.get("dated", 0.0) / total) if total > 0 else None,
        total_share_fallback=float(by_status.get("fallback", 0.0) / total) if total > 0 else None,
        credit_outside_window=outside,
        credit_unmatched=unmatched,
    )


def _findings(
    record: OmegaRecord,
    cells: pd.DataFrame,
    live: pd.DataFrame,
    effective: pd.DataFrame,
    credit_file: str,
) -> list[Finding]:
    findings = [
        Finding(
            code="omega_from_path_credit",
            severity="info",
            subject=credit_file,
            value=record.total_share_dated,
            message=f"ω is path credit ({record.source}), not effective exposure: "
            f"{record.groups_dated} of {len(cells)} cells weighted by the credit of their own "
            f"period, {record.groups_fallback} by their live campaigns' mean credit per period "
            f"(no dated credit that period), {record.groups_without_credit} with no path credit "
            "for any live campaign. Path credit is correlational; the channel totals stay the "
            "MMM's.",
        )
    ]
    share = record.total_share_fallback
    if share is not None and share > FALLBACK_WARNING_SHARE:
        findings.append(
            Finding(
                code="path_credit_mostly_fallback",
                severity="warning",
                value=share,
                threshold=FALLBACK_WARNING_SHARE,
                rule="share of the channel totals in cells without dated path credit",
                message=f"{share:.0%} of the channel totals lie in periods without dated path "
                "credit (the journeys cover few of the MMM's periods), so most of the split "
                "uses each campaign's average path credit, not that period's. Export journeys "
                "for the MMM's whole window for a period-by-period split.",
            )
        )
    weighted = live.loc[live["path_credit"] > 0]
    credited = set(zip(weighted["channel"], weighted["campaign"], strict=True))
    panel = effective.loc[effective["effective_exposure"] > 0, ["channel", "campaign"]]
    silent = sorted(
        f"{c}/{k}" for c, k in set(zip(panel["channel"], panel["campaign"], strict=True)) - credited
    )
    if silent:
        findings.append(
            Finding(
                code="campaigns_without_path_credit",
                severity="warning",
                value=float(len(silent)),
                message=f"{len(silent)} campaign(s) with impressions have no path credit and so "
                f"get no credit under path ω ({', '.join(silent[:SHOWN])}"
                f"{' ...' if len(silent) > SHOWN else ''}): no converting journey touched "
                "them, or they are untracked (offline) media. Compare with "
                "omega_source='exposure' before reading that as 'no effect'.",
            )
        )
    return findings
