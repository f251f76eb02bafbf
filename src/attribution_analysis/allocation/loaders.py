"""Read a workspace's allocation inputs into an :class:`AllocationProblem`.

Two layouts:

* ``hcp-brick``: ``raw/brick_sales.csv`` (groups and totals), ``raw/hcp_brick.csv``
  (exposure), ``raw/hcps.csv`` (entities and their covariates; optional without covariates).
* ``mta``: channel contributions C(channel, period[, geo]) from ``contributions`` (or, in a
  simulated workspace, ``truth/contributions.csv`` standing in for the MMM's output), split
  across the channel's campaigns by their effective exposure, built from
  ``analysis/prepared_campaign_panel.csv`` (written by ``validate_data``) and the
  channel's adstock/saturation; covariates from ``raw/campaign_metadata.csv``.

Every table goes through :func:`attribution_analysis.data.tables.load_table` with its row
model, so bad input gets the project's file / column / row errors.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd

from attribution_analysis import layout
from attribution_analysis.allocation.covariates import parse_spec
from attribution_analysis.allocation.exposure import (
    NO_CARRYOVER,
    build_effective_exposure,
    check_delivery,
    choose_exposure,
    spend_basis_finding,
    to_periods,
    transforms_from_json,
)
from attribution_analysis.allocation.path_omega import path_omega
from attribution_analysis.allocation.problem import AllocationProblem, Origin, build_problem
from attribution_analysis.contracts.allocation import (
    AllocateParams,
    ChannelTransform,
    ContributionRow,
    OmegaRecord,
)
from attribution_analysis.contracts.common import DataRange, Finding
from attribution_analysis.contracts.inputs import (
    BrickSalesRow,
    CampaignMetadataRow,
    CampaignSpendRow,
    HcpBrickRow,
    HcpRow,
)
from attribution_analysis.data.grain import WEEKDAYS, Grain, detect_grain
from attribution_analysis.data.sources import SPEND_GLOB, SPEND_SPEC
from attribution_analysis.data.tables import (
    LINE,
    ColumnSpec,
    check_input_file,
    check_unique,
    load_table,
    shown_list,
    shown_value,
    table_spec,
)
from attribution_analysis.errors import (
    DataValidationError,
    MissingInputError,
    ParameterError,
    arg,
    step_ref,
)
from attribution_analysis.workspace import Workspace

BRICK_SALES = layout.BRICK_SALES.path
HCP_BRICK = layout.HCP_BRICK.path
HCPS = layout.HCPS.path
CAMPAIGN_PANEL = layout.CAMPAIGN_PANEL.path
CAMPAIGN_METADATA = layout.CAMPAIGN_METADATA.path
TRUTH_CONTRIBUTIONS = layout.TRUTH_CONTRIBUTIONS.path
MMM_CONTRIBUTIONS = layout.CONTRIBUTION_DRAWS_CSV.path  # written by decompose_contributions
MMM_WEEKLY = layout.WEEKLY_CONTRIBUTIONS.path  # full-posterior means, same run
MMM_TRANSFORMS = layout.TRANSFORMS.path
TRUTH_PARAMETERS = layout.TRUTH_PARAMETERS.path
DATA_VALIDATION = layout.DATA_VALIDATION.path

BRICK_SALES_SPEC = table_spec("brick_sales", BrickSalesRow)
HCP_BRICK_SPEC = table_spec("hcp_brick", HcpBrickRow)
HCPS_SPEC = table_spec("hcps", HcpRow)
PANEL_SPEC = table_spec("campaign_panel", CampaignSpendRow)
METADATA_SPEC = table_spec("campaign_metadata", CampaignMetadataRow)
CONTRIBUTIONS_SPEC = table_spec("contributions", ContributionRow)
UNEXPOSED = "unexposed"
EXPOSURE_RULE = (
    "omega = effective exposure: the campaign's {metric} through its channel's adstock and "
    "saturation (the MMM's view of what they are worth in the period)"
)
DELIVERY_RULE = (
    "omega = the campaign's {metric} in the period: no adstock or saturation at the "
    "contributions' grain, so no carryover"
)


@dataclass
class LoadedInputs:
    """A problem plus what the step needs to label, explain and check it."""

    source: str  # 'hcp-brick' | 'mta'
    problem: AllocationProblem
    files: list[Path]
    entity_block: np.ndarray  # (H,) block label (channel, or connected block)
    group_block: np.ndarray  # (G,) block label
    covariate_table: pd.DataFrame | None = None
    covariate_key: str = "entity"
    covariate_file: str | None = None
    group_columns: pd.DataFrame | None = None  # mta: date, channel[, geo] per group
    draws: np.ndarray | None = None  # mta: (D, G) contribution draws
    # mta at daily grain: (G,) week of each cell, whose days may share an error (an MMM's
    # daily contributions carry smooth errors); None: cells independent
    group_clusters: np.ndarray | None = None
    data_range: DataRange | None = None
    zero_exposure_rule: str | None = None
    findings: list[Finding] = field(default_factory=list)
    truth_inputs: bool = False  # contributions or transforms read from truth/
    omega: OmegaRecord | None = None  # where the weights came from
    # mta with a platform signal: (H,) each campaign's signal over the allocated periods (0
    # for the campaigns of a channel that does not report it) and the column it came from.
    platform_signal: np.ndarray | None = None
    signal_column: str | None = None


def _existing(ws: Workspace, relative: str) -> Path | None:
    """The input's path if it is a file, None if absent; a folder in its place is refused
    rather than taken for a missing file."""
    path = ws.resolve(relative)
    if path.is_file():
        return path
    if path.exists():
        check_input_file(path, relative)
    return None


def _load(ws: Workspace, relative: str, spec, keys: list[str], what: str) -> pd.DataFrame:
    path = ws.resolve(relative)
    frame, _ = load_table(path, relative, spec)
    check_unique(frame, [k for k in keys if k in frame.columns], relative, what)
    return frame


def _cell_label(frame: pd.DataFrame, keys: list[str]) -> pd.Series:
    """'channel|date[|geo]' labels, built column-wise (no per-row Python join)."""
    label = frame[keys[0]].astype(str)
    for key in keys[1:]:
        label = label + "|" + frame[key].astype(str)
    return label


def detect_source(ws: Workspace) -> str:
    return "hcp-brick" if _existing(ws, BRICK_SALES) else "mta"


# ----- presence of the inputs ------------------------------------------------------------------
# One wording for every missing input of the allocation: the loaders raise these, and the
# pre-check of the server and CLI (steps.StepSpec.check) calls ``require_inputs`` so a call
# that cannot work is refused before a job starts, with the same text the job would give.
CONTRIBUTIONS_FORMAT = "a CSV: date, channel, [geo], contribution[, draw]"
TRANSFORMS_FORMAT = "JSON {channel: {alpha, l_max, saturation}}"


def _given_file_missing(name: str, relative: str, what: str) -> MissingInputError:
    return MissingInputError(
        f"the file given as {arg(name)} does not exist.",
        fix=f"give {arg(name)} as the workspace-relative path of an existing file ({what}).",
        file=relative,
    )


def _no_transforms() -> MissingInputError:
    return MissingInputError(
        "no adstock/saturation parameters per channel were found.",
        fix=f"run {step_ref('decompose_contributions')} (it writes {MMM_TRANSFORMS}) or pass "
        f"{arg('transforms_file')} ({TRANSFORMS_FORMAT}); a simulated workspace uses "
        f"{TRUTH_PARAMETERS} when neither exists.",
        file=MMM_TRANSFORMS,
    )


def _require_file(ws: Workspace, relative: str, problem: str, fix: str) -> Path:
    path = _existing(ws, relative)
    if path is None:
        raise MissingInputError(problem, fix=fix, file=relative)
    return path


def require_campaign_panel(ws: Workspace) -> Path:
    """The validated campaign panel (campaign impressions), or the error saying how to get it."""
    return _require_file(
        ws,
        CAMPAIGN_PANEL,
        f"{CAMPAIGN_PANEL} is missing: campaign impressions come from the validation step.",
        fix=f"run {step_ref('validate_data')} on a workspace with campaign-level spend files "
        "first.",
    )


def require_inputs(ws: Workspace, params: AllocateParams, source: str) -> None:
    """Refuse, with the file and the fix, an allocation whose input files do not exist
    (``source``: 'hcp-brick' or 'mta', from :func:`resolve_source`). Presence only: the
    loaders read and check the contents."""
    if source == "hcp-brick":
        for required in (BRICK_SALES, HCP_BRICK):
            _require_file(
                ws,
                required,
                f"{required} is missing: the HCP-brick allocation needs brick sales and HCP "
                "visits per brick.",
                fix=f"export {layout.BRICK_SALES.name} (brick_id, sales) and "
                f"{layout.HCP_BRICK.name} (hcp_id, brick_id, visits) into raw/, or try a "
                f"simulated workspace ({step_ref('simulate_workspace')} with kind hcp-brick).",
            )
        return
    if params.contributions is not None and _existing(ws, params.contributions) is None:
        raise _given_file_missing("contributions", params.contributions, CONTRIBUTIONS_FORMAT)
    if params.transforms_file is not None and _existing(ws, params.transforms_file) is None:
        raise _given_file_missing("transforms_file", params.transforms_file, TRANSFORMS_FORMAT)
    require_campaign_panel(ws)
    if params.contributions is None and not any(
        _existing(ws, p) for p in (MMM_CONTRIBUTIONS, TRUTH_CONTRIBUTIONS)
    ):
        raise MissingInputError(
            "no channel contributions to allocate: the MMM's C(channel, period[, geo]) table "
            f"({MMM_CONTRIBUTIONS}) is missing.",
            fix=f"run {step_ref('fit_mmm')}, {step_ref('validate_model')} and "
            f"{step_ref('decompose_contributions')} first (they write {MMM_CONTRIBUTIONS}), or "
            f"pass {arg('contributions')} ({CONTRIBUTIONS_FORMAT}).",
            file=MMM_CONTRIBUTIONS,
        )
    given = params.transforms is not None or params.transforms_file is not None
    from_mmm = params.contributions is None and _existing(ws, MMM_CONTRIBUTIONS) is not None
    if (
        from_mmm
        and not given
        and not any(_existing(ws, p) for p in (MMM_TRANSFORMS, TRUTH_PARAMETERS))
    ):
        # The MMM's decomposition writes its transforms with its contributions: one without
        # the other is a half-finished run. Contributions given by the user need none.
        raise _no_transforms()


def _component_labels(problem: AllocationProblem) -> tuple[np.ndarray, np.ndarray]:
    """Connected blocks labelled block_1, block_2, ... by size; unexposed entities apart."""
    n, group_block, entity_block = problem.blocks
    exposed = problem.entity_exposure > 0
    size = np.bincount(entity_block[exposed], minlength=n)
    rank = np.empty(n, dtype=np.int64)
    rank[np.argsort(-size, kind="stable")] = np.arange(1, n + 1)
    names = np.array([f"block_{r}" for r in rank], dtype=object)
    entity_labels = np.where(exposed, names[entity_block], UNEXPOSED)
    return entity_labels.astype(object), names[group_block]


# ----- hcp-brick -------------------------------------------------------------------------------
def load_hcp_brick(ws: Workspace, params: AllocateParams) -> LoadedInputs:
    require_inputs(ws, params, "hcp-brick")
    sales = _load(ws, BRICK_SALES, BRICK_SALES_SPEC, ["brick_id"], "brick")
    pairs = _load(ws, HCP_BRICK, HCP_BRICK_SPEC, ["hcp_id", "brick_id"], "HCP-brick")
    exposure, rule, findings = _hcp_exposure(pairs, params)
    hcps, entities, hcp_files, hcp_findings = _hcp_entities(ws, params, pairs)
    findings += hcp_findings
    exposure_column = "exposure" if "exposure" in pairs.columns else "visits"
    problem = build_problem(
        sales,
        pairs.assign(**{exposure_column: exposure}),
        entities=entities,
        origin=Origin(
            totals_file=BRICK_SALES,
            total_column="sales",
            group_column="brick_id",
            pairs_file=HCP_BRICK,
            entity_column="hcp_id",
            exposure_column=exposure_column,
        ),
    )
    entity_block, group_block = _component_labels(problem)
    return LoadedInputs(
        source="hcp-brick",
        problem=problem,
        files=[ws.resolve(BRICK_SALES), ws.resolve(HCP_BRICK), *hcp_files],
        entity_block=entity_block,
        group_block=group_block,
        covariate_table=hcps,
        covariate_key="hcp_id",
        covariate_file=HCPS if hcps is not None else None,
        zero_exposure_rule=rule,
        findings=findings,
        omega=OmegaRecord(source=exposure_column, rule=rule),
    )


def _hcp_exposure(
    pairs: pd.DataFrame, params: AllocateParams
) -> tuple[np.ndarray, str, list[Finding]]:
    """Each HCP-brick pair's exposure (the exposure column, or visits with the zero-visit
    rule), the rule in words, and a note on zero-visit pairs."""
    findings: list[Finding] = []
    if "exposure" in pairs.columns:
        return pairs["exposure"].to_numpy(dtype=float), "exposure column used as given", findings
    if "visits" not in pairs.columns:
        raise DataValidationError(
            problem=f"{layout.HCP_BRICK.name} needs a 'visits' or an 'exposure' column.",
            fix="add the visits of each HCP in each brick.",
            file=HCP_BRICK,
            column="visits",
            rows=(1,),
            code="missing_column",
        )
    visits = pairs["visits"].to_numpy(dtype=float)
    zero = visits == 0
    exposure = np.where(zero, params.zero_visit_exposure, visits)
    rule = (
        f"pairs listed with 0 visits keep exposure {params.zero_visit_exposure:g} (an HCP "
        "assigned to a brick prescribes there between visits); other pairs use their visits"
    )
    if zero.any():
        findings.append(
            Finding(
                code="zero_visits",
                severity="info",
                subject=HCP_BRICK,
                value=float(zero.sum()),
                message=f"{int(zero.sum())} HCP-brick pairs have 0 visits; they were given "
                f"exposure {params.zero_visit_exposure:g} (zero_visit_exposure)"
                + (", so they get no credit." if params.zero_visit_exposure == 0 else "."),
            )
        )
    return exposure, rule, findings


def _hcp_entities(
    ws: Workspace, params: AllocateParams, pairs: pd.DataFrame
) -> tuple[pd.DataFrame | None, list[str], list[Path], list[Finding]]:
    """The HCP table (covariates) when there is one, every HCP id, the files read and a
    warning on HCPs that work in no brick."""
    entities = sorted(set(pairs["hcp_id"]))
    if not _existing(ws, HCPS):
        if params.covariates:
            raise MissingInputError(
                f"{HCPS} is missing but covariates {params.covariates} were requested.",
                fix=f"add {HCPS} (hcp_id and covariate columns) or drop {arg('covariates')}.",
                file=HCPS,
            )
        return None, entities, [], []
    hcps = _load(ws, HCPS, HCPS_SPEC, ["hcp_id"], "HCP")
    entities = sorted(set(entities) | set(hcps["hcp_id"]))
    idle = sorted(set(hcps["hcp_id"]) - set(pairs["hcp_id"]))
    findings = []
    if idle:
        findings.append(
            Finding(
                code="entities_in_no_group",
                severity="warning",
                subject=HCPS,
                value=float(len(idle)),
                message=f"{len(idle)} HCPs of {layout.HCPS.name} work in no brick of "
                f"{layout.HCP_BRICK.name} (e.g. {idle[0]}); they get no credit. With "
                "covariates, their productivity is predicted (cold start) and flagged.",
            )
        )
    return hcps, entities, [ws.resolve(HCPS)], findings


# ----- mta: transforms, contributions, campaigns, weights -----------------------------------
@dataclass(frozen=True)
class Transforms:
    """Adstock/saturation per channel and where they came from."""

    values: dict[str, ChannelTransform]
    files: list[Path]  # the file read (none when given in the call)
    source: str  # workspace-relative file, or TRANSFORMS_GIVEN
    from_truth: bool  # the simulator's truth/parameters.json

    def for_channels(self, channels: Iterable[str]) -> dict[str, ChannelTransform]:
        """The transforms of ``channels``; refuses, naming the file, a channel it lacks."""
        wanted = sorted(set(channels))
        missing = [ch for ch in wanted if ch not in self.values]
        if missing and not self.files:
            raise ParameterError(
                f"no adstock/saturation parameters for channel(s) {missing} in "
                f"{arg('transforms')}.",
                fix="add an entry {alpha, l_max, saturation} for each of them.",
                parameter="transforms",
            )
        if missing:
            raise DataValidationError(
                problem=f"no adstock/saturation parameters for channel(s) {missing}: the file "
                f"has entries for {sorted(self.values)} only.",
                fix="add an entry {alpha, l_max, saturation} per channel of the campaign "
                f"panel (a fresh {step_ref('decompose_contributions')} writes all of them).",
                file=self.source,
                code="missing_channel",
            )
        return {ch: self.values[ch] for ch in wanted}


TRANSFORMS_GIVEN = "parameters given in the call"


def load_transforms(ws: Workspace, params: AllocateParams) -> Transforms:
    """Adstock/saturation per channel: given inline, from ``transforms_file``, from the MMM's
    ``analysis/mmm_transforms.json``, or (simulated workspaces) ``truth/parameters.json``."""
    if params.transforms is not None:
        return Transforms(dict(params.transforms), [], TRANSFORMS_GIVEN, False)
    if params.transforms_file is not None:
        path = _existing(ws, params.transforms_file)
        if path is None:
            raise _given_file_missing("transforms_file", params.transforms_file, TRANSFORMS_FORMAT)
        shown = params.transforms_file
    elif (path := _existing(ws, MMM_TRANSFORMS)) is not None:
        shown = MMM_TRANSFORMS
    elif (path := _existing(ws, TRUTH_PARAMETERS)) is not None:
        shown = TRUTH_PARAMETERS
    else:
        raise _no_transforms()
    values = transforms_from_json(path, shown)
    return Transforms(values, [path], ws.relative(path), shown == TRUTH_PARAMETERS)


def _full_posterior_means(totals: pd.DataFrame, keys: list[str], weekly_path: Path) -> pd.DataFrame:
    weekly = pd.read_csv(weekly_path, dtype={"channel": str, "date": str, "geo": str})
    missing = [k for k in keys if k not in weekly.columns]
    if missing or "contribution" not in weekly.columns:
        raise DataValidationError(
            problem=f"{MMM_WEEKLY} lacks columns {missing or ['contribution']}.",
            fix=f"rerun {step_ref('decompose_contributions')} to rewrite it.",
            file=MMM_WEEKLY,
            column=(missing or ["contribution"])[0],
            code="missing_column",
        )
    means = weekly.set_index(keys)["contribution"]
    index = pd.MultiIndex.from_frame(totals[keys].astype(str))
    found = means.reindex(index)
    if found.isna().any():
        raise DataValidationError(
            problem=f"{MMM_WEEKLY} and {MMM_CONTRIBUTIONS} cover different cells (e.g. "
            f"{tuple(index[found.isna().to_numpy()][0])}); they come from different runs.",
            fix=f"rerun {step_ref('decompose_contributions')}, which writes both together.",
            file=MMM_WEEKLY,
            code="misaligned_inputs",
        )
    return totals.assign(total=found.to_numpy(dtype=float))


def _draw_matrix(contrib: pd.DataFrame, keys: list[str], shown: str) -> pd.DataFrame:
    draws = contrib["draw"].to_numpy(dtype=float)
    if (draws != np.round(draws)).any():
        bad = draws != np.round(draws)
        raise DataValidationError(
            problem="draw must be a whole number.",
            fix="number the draws 0, 1, 2, ...",
            file=shown,
            column="draw",
            rows=[int(x) for x in contrib.loc[bad, LINE]],
            code="not_a_number",
        )
    wide = contrib.pivot_table(index="draw", columns=keys, values="contribution", aggfunc="sum")
    if wide.isna().to_numpy().any():
        raise DataValidationError(
            problem="some draws lack some (date, channel) cells.",
            fix="give every draw a row for every cell.",
            file=shown,
            column="draw",
            code="incomplete_draws",
        )
    return wide


def _contributions_source(ws: Workspace, params: AllocateParams) -> tuple[str, Path, list[Finding]]:
    """The contributions file to split (given, the MMM's draws, or the simulator's truth),
    its path and a note when it is the truth."""
    if params.contributions is not None:
        return params.contributions, ws.resolve(params.contributions), []
    if (path := _existing(ws, MMM_CONTRIBUTIONS)) is not None:
        return MMM_CONTRIBUTIONS, path, []
    # require_inputs made sure the simulator's truth is there
    note = Finding(
        code="contributions_from_truth",
        severity="info",
        subject=TRUTH_CONTRIBUTIONS,
        message=f"the channel contributions are the simulator's truth ({TRUTH_CONTRIBUTIONS}), "
        "standing in for the MMM's output.",
    )
    return TRUTH_CONTRIBUTIONS, ws.resolve(TRUTH_CONTRIBUTIONS), [note]


def _campaign_panel(ws: Workspace) -> pd.DataFrame:
    panel = _load(
        ws, CAMPAIGN_PANEL, PANEL_SPEC, ["date", "geo", "channel", "campaign", "creative"], "panel"
    )
    if "campaign" not in panel.columns:
        raise DataValidationError(
            problem="the campaign panel has no campaign column.",
            fix="campaign-level spend files are needed to split channels across campaigns.",
            file=CAMPAIGN_PANEL,
            column="campaign",
            code="missing_column",
        )
    return panel


@dataclass
class _Cells:
    """The MMM cells C(channel, period[, geo]) to split: totals, labels and draws."""

    totals: pd.DataFrame  # keys, total, LINE, group (sorted by keys)
    keys: list[str]
    group_labels: np.ndarray
    draws: np.ndarray | None  # (D, G), columns in the order of ``totals``
    weekly_path: Path | None  # full-posterior means used for the point split


def _cells(ws: Workspace, contrib: pd.DataFrame, shown: str, with_geo: bool) -> _Cells:
    keys = ["channel", "date", *(["geo"] if with_geo else [])]
    contrib = contrib.assign(date=contrib["date"].dt.strftime("%Y-%m-%d"))
    draws = None
    weekly_path = None
    if "draw" in contrib.columns:
        wide = _draw_matrix(contrib, keys, shown)
        cells = wide.columns.to_frame(index=False)
        draws = wide.to_numpy(dtype=float)
        totals = cells.assign(total=draws.mean(axis=0))
        totals[LINE] = 0
        if shown == MMM_CONTRIBUTIONS:
            weekly_path = _existing(ws, MMM_WEEKLY)
        if weekly_path is not None:
            # The CSV keeps a few hundred draws for intervals; its mean differs from the
            # full-posterior mean by Monte Carlo error (several % on wide channels). The point
            # split uses the decomposition's own means, so campaign credit adds up to the
            # channel totals every other output reports.
            totals = _full_posterior_means(totals, keys, weekly_path)
    else:
        totals = contrib[[*keys, "contribution", LINE]].rename(columns={"contribution": "total"})
    totals = totals.sort_values(keys).reset_index(drop=True)
    group_labels = _cell_label(totals, keys).to_numpy()
    totals = totals.assign(group=group_labels)
    if draws is not None:
        order = pd.MultiIndex.from_frame(cells[keys].astype(str)).get_indexer(
            pd.MultiIndex.from_frame(totals[keys].astype(str))
        )
        draws = draws[:, order]
    return _Cells(totals, keys, group_labels, draws, weekly_path)


@dataclass
class _Campaigns:
    """Every campaign allocated (with impressions, or listed in the metadata) and its
    entity name (channel/campaign when two channels share a campaign name)."""

    table: pd.DataFrame  # channel, campaign
    entity_of: dict[tuple[str, str], str]
    meta: pd.DataFrame | None
    meta_path: Path | None
    findings: list[Finding]


def _campaigns(ws: Workspace, effective: pd.DataFrame, channels: Iterable[str]) -> _Campaigns:
    campaigns = effective[["channel", "campaign"]].drop_duplicates()
    meta_path = _existing(ws, CAMPAIGN_METADATA)
    meta = None
    findings: list[Finding] = []
    if meta_path is not None:
        meta = _load(ws, CAMPAIGN_METADATA, METADATA_SPEC, ["campaign", "channel"], "campaign")
        idle = meta.loc[
            ~meta["campaign"].isin(set(campaigns["campaign"])) & meta["channel"].isin(channels),
            ["channel", "campaign"],
        ]
        if len(idle):
            # Campaigns with metadata but no impressions in the window: kept as entities so
            # they are reported (no exposure, no credit), never silently missing.
            campaigns = pd.concat([campaigns, idle], ignore_index=True)
            findings.append(
                Finding(
                    code="entities_in_no_group",
                    severity="info",
                    subject=CAMPAIGN_METADATA,
                    value=float(len(idle)),
                    message=f"{len(idle)} campaigns of {CAMPAIGN_METADATA} delivered no "
                    f"impressions in the window (e.g. {idle['campaign'].iloc[0]}); they get no "
                    "credit.",
                )
            )
    shared = campaigns["campaign"].duplicated(keep=False)
    names = np.where(
        shared, campaigns["channel"] + "/" + campaigns["campaign"], campaigns["campaign"]
    )
    entity_of = dict(
        zip(zip(campaigns["channel"], campaigns["campaign"], strict=True), names, strict=True)
    )
    return _Campaigns(campaigns, entity_of, meta, meta_path, findings)


@dataclass
class _Weights:
    """The (cell, campaign) rows to allocate on, with their weight ω."""

    rows: pd.DataFrame  # keys, campaign, entity, group, <column>
    column: str  # 'effective_exposure' or 'path_credit'
    pairs_file: str
    omega: OmegaRecord
    files: list[Path]
    findings: list[Finding]


def _weights(
    ws: Workspace,
    params: AllocateParams,
    effective: pd.DataFrame,
    cells: _Cells,
    entity_of: dict[tuple[str, str], str],
    transforms: Transforms | None,
) -> _Weights:
    if params.omega_source == "path_credit":
        from_paths = path_omega(ws, effective, cells.totals, cells.keys)
        rows = from_paths.rows
        weights = _Weights(
            rows,
            "path_credit",
            from_paths.record.credit_file or layout.PATH_CAMPAIGN_CREDIT.path,
            from_paths.record,
            from_paths.files,
            list(from_paths.findings),
        )
    else:
        rows = effective[effective["effective_exposure"] > 0]
        rule = DELIVERY_RULE if transforms is None else EXPOSURE_RULE
        omega = OmegaRecord(
            source="effective_exposure",
            rule=rule.format(metric=params.exposure),
            exposure_metric=params.exposure,
            transforms_source=None if transforms is None else transforms.source,
        )
        weights = _Weights(rows, "effective_exposure", CAMPAIGN_PANEL, omega, [], [])
    rows = weights.rows.assign(
        entity=[entity_of[k] for k in zip(rows["channel"], rows["campaign"], strict=True)],
        group=_cell_label(rows, cells.keys),
    )
    weights.rows = rows[rows["group"].isin(set(cells.group_labels))]
    return weights


def _covariate_table(
    params: AllocateParams, campaigns: _Campaigns
) -> tuple[pd.DataFrame, str | None]:
    """One row per entity with its metadata columns (the covariates' source), and the file
    they came from; refuses covariates without metadata, or campaigns lacking a row."""
    table = campaigns.table.assign(
        entity=[
            campaigns.entity_of[k]
            for k in zip(campaigns.table["channel"], campaigns.table["campaign"], strict=True)
        ]
    )
    needs_meta = bool({parse_spec(c).column for c in params.covariates} - {"channel"})
    if campaigns.meta is None:
        if needs_meta:
            raise MissingInputError(
                f"{CAMPAIGN_METADATA} is missing but covariates {params.covariates} were "
                "requested.",
                fix=f"add {CAMPAIGN_METADATA} (campaign, channel, objective, format, ...).",
                file=CAMPAIGN_METADATA,
            )
        return _by_campaign(table), None
    table = table.merge(campaigns.meta, on=["channel", "campaign"], how="left")
    absent = table[LINE].isna().to_numpy()
    if needs_meta and absent.any():
        raise DataValidationError(
            problem=f"campaign {shown_value(table.loc[absent, 'campaign'].iloc[0])} has "
            f"impressions but no row in {CAMPAIGN_METADATA} ({int(absent.sum())} campaigns "
            "lack one).",
            fix="add a metadata row per campaign (campaign, channel, objective, ...).",
            file=CAMPAIGN_METADATA,
            column="campaign",
            code="missing_entity",
        )
    table[LINE] = table[LINE].fillna(0).astype(int)
    return _by_campaign(table), CAMPAIGN_METADATA


def _by_campaign(table: pd.DataFrame) -> pd.DataFrame:
    """Covariates keyed by the entity name (under the column 'campaign')."""
    return table.drop(columns=["campaign"]).rename(columns={"entity": "campaign"})


def _data_range(totals: pd.DataFrame, with_geo: bool, grain: Grain) -> DataRange:
    dates = pd.to_datetime(totals["date"])
    return DataRange(
        start=dates.min().date(),
        end=dates.max().date(),
        grain=grain,
        n_periods=int(dates.nunique()),
        geos=sorted(totals["geo"].unique().tolist()) if with_geo else [],
    )


# ----- mta: the contributions' grain --------------------------------------------------------
@dataclass(frozen=True)
class Periods:
    """The periods the allocation runs on: the contributions' own grain."""

    grain: Grain
    anchor: int  # weekday weeks start on (0 = Monday); 0 for daily


def _grain_of(frame: pd.DataFrame, shown: str) -> Grain | None:
    """Daily or weekly from the spacing of the dates; None with a single date."""
    return detect_grain(frame, shown) if frame["date"].nunique() > 1 else None


def contribution_periods(contrib: pd.DataFrame, panel: pd.DataFrame, shown: str) -> Periods:
    """The contributions' grain, checked against the campaign panel's.

    Weekly contributions over a daily panel are fine (the days are summed into the
    contributions' weeks); daily contributions over a weekly panel cannot be split (a day's
    total has no daily delivery to follow), and weeks starting on different weekdays do not
    line up: both are refused naming the contributions file, never left unallocated."""
    grain = _grain_of(contrib, shown)
    panel_grain = _grain_of(panel, CAMPAIGN_PANEL) or grain or "weekly"
    grain = grain or panel_grain
    lines = tuple(int(x) for x in contrib[LINE]) if LINE in contrib else ()
    if grain == "daily" and panel_grain == "weekly":
        raise DataValidationError(
            problem="the contributions are daily but the campaign data are weekly (one row per "
            f"campaign and week in {CAMPAIGN_PANEL}): a day's contribution cannot be split by "
            "weekly delivery.",
            fix="give weekly contributions (each week's days summed, weeks starting "
            f"{_weekday(panel)}), or export daily campaign rows into raw/campaign_spend_*.csv "
            f"and rerun {step_ref('validate_data')}.",
            file=shown,
            column="date",
            rows=lines,
            code="grain_mismatch",
        )
    if grain == "daily":
        return Periods("daily", 0)
    anchor = int(pd.Timestamp(contrib["date"].min()).day_of_week)
    if panel_grain == "weekly":
        panel_anchor = int(pd.Timestamp(pd.to_datetime(panel["date"]).min()).day_of_week)
        if panel_anchor != anchor:
            raise DataValidationError(
                problem=f"the contributions' weeks start on {WEEKDAYS[anchor]} but the campaign "
                f"panel's on {WEEKDAYS[panel_anchor]}: their weeks do not line up.",
                fix=f"label the contribution weeks by their {WEEKDAYS[panel_anchor]}, or export "
                f"daily campaign rows and rerun {step_ref('validate_data')}.",
                file=shown,
                column="date",
                rows=lines,
                code="grain_mismatch",
            )
    return Periods("weekly", anchor)


def _weekday(panel: pd.DataFrame) -> str:
    return WEEKDAYS[int(pd.Timestamp(pd.to_datetime(panel["date"]).min()).day_of_week)]


def check_coverage(
    contrib: pd.DataFrame, panel: pd.DataFrame, periods: Periods, shown: str
) -> None:
    """Refuse positive contributions of a campaign channel dated outside its campaign data:
    there is no campaign to credit there (a window mismatch, not an allocation finding).
    Channels with no campaign rows at all stay listed as unallocated, as before."""
    step = pd.Timedelta(days=7 if periods.grain == "weekly" else 1)
    dates = pd.to_datetime(panel["date"])
    span = dates.groupby(panel["channel"]).agg(["min", "max"])
    rows = contrib[contrib["channel"].isin(span.index) & (contrib["contribution"] > 0)]
    first = rows["channel"].map(span["min"])
    last = rows["channel"].map(span["max"])
    start = pd.to_datetime(rows["date"])
    outside = ((start + step <= first) | (start > last)).to_numpy()
    if not outside.any():
        return
    bad = rows.loc[outside]
    channel = str(bad["channel"].iloc[0])
    raise DataValidationError(
        problem=f"{int(outside.sum())} positive contributions are dated outside the campaign "
        f"data (e.g. channel '{channel}' on {pd.Timestamp(bad['date'].iloc[0]).date()}, whose "
        f"campaign rows in {CAMPAIGN_PANEL} run from {span.loc[channel, 'min'].date()} to "
        f"{span.loc[channel, 'max'].date()}): there is no campaign to credit there.",
        fix="give contributions for the dates of the campaign data only, or export the campaign "
        f"rows of those dates and rerun {step_ref('validate_data')}.",
        file=shown,
        column="date",
        rows=tuple(int(x) for x in bad[LINE]) if LINE in bad else (),
        code="misaligned_dates",
    )


def _week_clusters(cells: _Cells, periods: Periods) -> np.ndarray | None:
    """Daily cells: 'channel|week[|geo]' of each, so the fit does not count the days of a
    week's smooth error as independent evidence. Weekly cells: None."""
    if periods.grain != "daily":
        return None
    dates = pd.to_datetime(cells.totals["date"])
    week = (dates - pd.to_timedelta(dates.dt.day_of_week, unit="D")).dt.strftime("%Y-%m-%d")
    keys = cells.totals[[k for k in cells.keys if k != "date"]].astype(str)
    return _cell_label(keys.assign(week=week), [*keys.columns, "week"]).to_numpy()


# ----- mta: which transforms, at which grain ---------------------------------------------------
def mmm_periods(ws: Workspace) -> Periods | None:
    """The MMM's grain and week start, from the validation report; None without one."""
    path = _existing(ws, DATA_VALIDATION)
    if path is None:
        return None
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None  # validate_data rewrites it; the transforms then apply as they are
    if not isinstance(report, dict):
        return None
    grain = report.get("grain")
    start = (report.get("window") or {}).get("start")
    if grain not in ("daily", "weekly") or start is None:
        return None
    return Periods(grain, int(pd.Timestamp(start).day_of_week) if grain == "weekly" else 0)


def resolve_transforms(
    ws: Workspace, params: AllocateParams, periods: Periods
) -> tuple[Transforms | None, list[Finding]]:
    """The adstock/saturation to apply, or None (no carryover), and the finding that says so.

    Parameters given in the call apply as given. The workspace's own (the MMM's, or a
    simulated workspace's truth) are per MMM period, so they apply only to contributions at
    the MMM's grain. Nothing is invented: without transforms at the contributions' grain the
    weights are the campaigns' delivery in the period."""
    if params.transforms is not None or params.transforms_file is not None:
        return load_transforms(ws, params), []
    metric = params.exposure
    found = next((f for f in (MMM_TRANSFORMS, TRUTH_PARAMETERS) if _existing(ws, f)), None)
    mmm = mmm_periods(ws)
    if found is not None and (mmm is None or mmm.grain == periods.grain):
        transforms = load_transforms(ws, params)
        findings = []
        if transforms.from_truth:
            findings.append(
                Finding(
                    code="transforms_from_truth",
                    severity="info",
                    subject=TRUTH_PARAMETERS,
                    message="adstock and saturation parameters are the simulator's truth "
                    f"({TRUTH_PARAMETERS}), standing in for the MMM fit.",
                )
            )
        return transforms, findings
    why = (
        f"{found} holds adstock/saturation per {mmm.grain} period, which do not apply to "
        f"{periods.grain} contributions"
        if found is not None and mmm is not None
        else "there is no MMM fit in the workspace (no adstock/saturation parameters)"
    )
    return None, [
        Finding(
            code="no_carryover",
            severity="info",
            subject=params.contributions,
            rule="no transforms at the contributions' grain",
            message=f"{why}: each campaign is weighed by its {metric} in the same "
            f"{'day' if periods.grain == 'daily' else 'week'}, with no carryover and no "
            "saturation. Credit the channel earns from earlier delivery goes to the campaigns "
            f"live in that period; give {arg('transforms_file')} at the contributions' grain "
            "if the channel's carryover is known.",
        )
    ]


def _effective_exposure(
    panel: pd.DataFrame,
    transforms: Transforms | None,
    params: AllocateParams,
    with_geo: bool,
    periods: Periods,
    metric: str,
) -> tuple[pd.DataFrame, list[str]]:
    """Effective exposure per (period, campaign) at the contributions' grain, and the
    channels weighed by spend (they report no impressions)."""
    basis, spend_only = choose_exposure(panel, metric, CAMPAIGN_PANEL)
    media = to_periods(basis, periods.grain, periods.anchor, ["impressions"])
    media = media[["date", "channel", "campaign", "impressions", *(["geo"] if with_geo else [])]]
    if transforms is not None:
        known = transforms.for_channels(media["channel"])
        return build_effective_exposure(media, known, params.saturation_on), spend_only
    identity = {channel: NO_CARRYOVER for channel in set(media["channel"])}
    table = build_effective_exposure(media, identity, params.saturation_on)
    # With no transforms the weight is the delivery itself; build_effective_exposure still
    # gives the dense period grid, but divides by the channel's max, a unit we do not want
    # in the reported exposure.
    return table.assign(effective_exposure=table["impressions"]), spend_only


# ----- mta: columns of the campaign spend files beyond the prepared panel's -------------------
BUILT_IN_EXPOSURE = ("impressions", "reach", "clicks", "spend")
PANEL_KEYS = ("date", "geo", "channel", "campaign", "creative")


def column_name(name: str) -> str:
    """A column as the tables name it (headers are read stripped and lower-cased)."""
    return name.strip().lower()


def with_spend_file_column(
    ws: Workspace, panel: pd.DataFrame, column: str, channels: set[str], what: str
) -> tuple[pd.DataFrame, list[Path]]:
    """The prepared panel with ``column`` of the raw campaign spend files added, summed to
    the panel's rows (its periods, creatives and geos), and the files read.

    ``validate_data`` keeps only the media metrics and reach in the prepared panel; any other
    numeric column a user names (``exposure`` or ``signal``) is read here from every
    ``raw/campaign_spend_*.csv`` holding campaign rows of the ``channels`` allocated. A file
    without the column, a cell that is not a non-negative number, are refused naming the
    file, the column and the rows. Empty cells are unknown (NaN), never 0."""
    if column in panel.columns:
        return panel, []
    spec = replace(
        SPEND_SPEC,
        columns=(
            *SPEND_SPEC.columns,
            ColumnSpec(column, "number", False, True, f"user column ({what})", blank=True),
        ),
    )
    parts, files = [], []
    for path in ws.raw_files(SPEND_GLOB):
        shown = ws.relative(path)
        frame, _ = load_table(path, shown, spec)
        if "campaign" not in frame.columns:
            continue  # channel-level file: not in the campaign panel either
        frame = frame[frame["channel"].isin(channels)]
        if frame.empty:
            continue
        if column not in frame.columns:
            raise DataValidationError(
                problem=f"{what} '{column}' was chosen but {shown} has no {column} column "
                f"(it holds campaign rows of channel(s) "
                f"{shown_list(sorted(set(frame['channel'])))}).",
                fix=f"add the {column} column to {shown} (empty cells where a campaign does not "
                f"report it), or choose another {arg(what)}: {_choices(what)}.",
                file=shown,
                column=column,
                rows=(1,),
                code="missing_column",
            )
        parts.append(frame)
        files.append(path)
    if not parts:
        raise DataValidationError(
            problem=f"{what} '{column}' was chosen but no campaign spend file holds campaign "
            "rows of the channels allocated.",
            fix=f"choose another {arg(what)}: {_choices(what)}.",
            file=layout.SPEND.path,
            column=column,
            code="missing_column",
        )
    raw = pd.concat(parts, ignore_index=True)
    dates = pd.to_datetime(raw["date"])
    if _grain_of(panel, CAMPAIGN_PANEL) == "weekly":
        anchor = int(pd.Timestamp(pd.to_datetime(panel["date"]).min()).day_of_week)
        dates = dates - pd.to_timedelta((dates.dt.day_of_week - anchor) % 7, unit="D")
    raw = raw.assign(date=dates)
    keys = [k for k in PANEL_KEYS if k in panel.columns]
    for key in keys:
        if key not in raw.columns:
            raw[key] = ""
    grouped = raw.groupby(keys, sort=False)[column]
    # A cell with any unknown row is unknown (a partial sum would understate it).
    summed = grouped.sum().mask(grouped.apply(lambda v: v.isna().any())).rename(column)
    merged = panel.assign(date=pd.to_datetime(panel["date"])).merge(
        summed.reset_index(), on=keys, how="left"
    )
    return merged.assign(date=panel["date"].to_numpy()), files


def _choices(what: str) -> str:
    built_in = "impressions, reach, clicks, spend" if what == "exposure" else "clicks, reach"
    return f"{built_in}, or another numeric column of the campaign spend files"


def campaign_signal(
    media: pd.DataFrame,
    column: str,
    group_of_row: pd.Series,
    group_labels: np.ndarray,
    entity_of: dict[tuple[str, str], str],
    entities: np.ndarray,
) -> np.ndarray:
    """(H,) each campaign's ``column`` summed over the periods allocated (rows of ``media``
    whose cell is one of ``group_labels``). A channel that reports the signal in none of its
    rows carries none (0 for its campaigns, so the fit gives it no weight there); one that
    reports it in some rows only is refused, naming the rows."""
    rows = media[group_of_row.isin(set(group_labels)).to_numpy()]
    unknown = rows[column].isna()
    reported = (~unknown).groupby(rows["channel"]).any()
    partial = unknown & rows["channel"].map(reported).to_numpy()
    if partial.any():
        channels = sorted(set(rows.loc[partial, "channel"]))
        raise DataValidationError(
            problem=f"signal '{column}' is reported for channel(s) {shown_list(channels)} but "
            f"missing in {int(partial.sum())} of their campaign periods.",
            fix=f"fill in {column} for those rows (0 where there was none), or choose another "
            f"{arg('signal')}.",
            file=CAMPAIGN_PANEL,
            column=column,
            rows=_lines(rows, partial.to_numpy()),
            code="missing_value",
        )
    entity = [entity_of[k] for k in zip(rows["channel"], rows["campaign"], strict=True)]
    totals = rows[column].fillna(0.0).groupby(np.asarray(entity)).sum()
    return totals.reindex(entities).fillna(0.0).to_numpy(dtype=float)


def _lines(frame: pd.DataFrame, mask: np.ndarray) -> tuple[int, ...]:
    return tuple(int(x) for x in frame.loc[mask, LINE]) if LINE in frame else ()


def check_signal_params(params: AllocateParams, source: str) -> None:
    """A platform signal is evidence on pooled free EM rates of campaigns: refuse it with
    anything else, naming the parameter."""
    if params.signal == "none":
        return
    conflict = (
        "the HCP-brick allocation (signals are campaign columns)"
        if source == "hcp-brick"
        else "method 'bayes'"
        if params.method == "bayes"
        else "covariates (the signal enters the pooled free rates' prior)"
        if params.covariates
        else "pooling 'none' (free rates have no prior to inform)"
        if params.pooling == "none"
        else None
    )
    if conflict is not None:
        raise ParameterError(
            f"{arg('signal')} '{params.signal}' cannot be used with {conflict}.",
            fix=f"drop {arg('signal')}, or allocate campaigns with method 'em', no covariates "
            "and the default pooling.",
            parameter="signal",
        )


def load_mta(ws: Workspace, params: AllocateParams) -> LoadedInputs:
    require_inputs(ws, params, "mta")
    shown, path, findings = _contributions_source(ws, params)
    contrib = _load(
        ws, shown, CONTRIBUTIONS_SPEC, ["date", "channel", "geo", "draw"], "contribution"
    )
    panel = _campaign_panel(ws)
    split_channels = set(contrib["channel"])
    exposure = column_name(params.exposure)
    signal = None if params.signal == "none" else column_name(params.signal)
    extra_files: list[Path] = []
    for column, what in ((exposure, "exposure"), (signal, "signal")):
        if column is not None and column not in BUILT_IN_EXPOSURE:
            panel, read = with_spend_file_column(ws, panel, column, split_channels, what)
            extra_files += read
    check_delivery(panel, CAMPAIGN_PANEL)
    periods = contribution_periods(contrib, panel, shown)
    transforms, transform_findings = resolve_transforms(ws, params, periods)
    findings += transform_findings
    with_geo = "geo" in contrib.columns
    if with_geo and "geo" not in panel.columns:
        raise DataValidationError(
            problem="the contributions are per geo but the campaign panel is national.",
            fix="give campaign spend files a geo column, or national contributions.",
            file=shown,
            column="geo",
            code="misaligned_geos",
        )
    check_coverage(contrib, panel, periods, shown)
    # Only the channels being split: another channel's campaign rows are not this call's input.
    allocated = panel[panel["channel"].isin(split_channels)]
    effective, spend_only = _effective_exposure(
        allocated, transforms, params, with_geo, periods, exposure
    )
    if spend_only:
        findings.append(spend_basis_finding(spend_only))
    cells = _cells(ws, contrib, shown, with_geo)
    campaigns = _campaigns(ws, effective, set(allocated["channel"]))
    findings += campaigns.findings
    weights = _weights(ws, params, effective, cells, campaigns.entity_of, transforms)
    findings += weights.findings
    problem = build_problem(
        cells.totals[["group", "total", LINE]].rename(columns={"total": "contribution"}),
        weights.rows[["group", "entity", weights.column]].rename(columns={"entity": "campaign"}),
        entities=sorted(campaigns.entity_of.values()),
        origin=Origin(
            totals_file=shown,
            total_column="contribution",
            group_column="group",
            pairs_file=weights.pairs_file,
            entity_column="campaign",
            exposure_column=weights.column,
        ),
    )
    channel_of_entity = {entity: key[0] for key, entity in campaigns.entity_of.items()}
    covariate_table, covariate_file = _covariate_table(params, campaigns)
    platform_signal = None
    if signal is not None:
        if signal not in allocated.columns:
            raise DataValidationError(
                problem=f"signal '{signal}' was chosen but the campaign panel has no {signal} "
                "column (the campaign spend files report none).",
                fix=f"export {signal} in raw/campaign_spend_*.csv and rerun "
                f"{step_ref('validate_data')}, or choose another {arg('signal')}.",
                file=CAMPAIGN_PANEL,
                column=signal,
                code="missing_column",
            )
        media = to_periods(allocated, periods.grain, periods.anchor, [signal])
        platform_signal = campaign_signal(
            media,
            signal,
            _cell_label(media, cells.keys),
            cells.group_labels,
            campaigns.entity_of,
            problem.entity_labels,
        )
    files = [
        path,
        ws.resolve(CAMPAIGN_PANEL),
        *extra_files,
        *([] if transforms is None else transforms.files),
        *([cells.weekly_path] if cells.weekly_path else []),
        *weights.files,
        *([campaigns.meta_path] if covariate_file is not None else []),
    ]
    return LoadedInputs(
        source="mta",
        problem=problem,
        files=[f for f in files if f is not None],
        entity_block=np.array([channel_of_entity[e] for e in problem.entity_labels], dtype=object),
        group_block=cells.totals["channel"].to_numpy(dtype=object),
        covariate_table=covariate_table,
        covariate_key="campaign",
        covariate_file=covariate_file,
        group_columns=cells.totals[cells.keys].reset_index(drop=True),
        draws=cells.draws,
        group_clusters=_week_clusters(cells, periods),
        data_range=_data_range(cells.totals, with_geo, periods.grain),
        zero_exposure_rule="campaign-cell pairs with zero effective exposure carry no credit and "
        "are left out; cells whose campaigns all have zero exposure are listed as unallocated"
        + (
            " (path credit: likewise for pairs and cells with zero path credit)"
            if params.omega_source == "path_credit"
            else ""
        ),
        findings=findings,
        truth_inputs=shown == TRUTH_CONTRIBUTIONS
        or (transforms is not None and transforms.from_truth),
        omega=weights.omega,
        platform_signal=platform_signal,
        signal_column=signal,
    )


def resolve_source(ws: Workspace, params: AllocateParams) -> str:
    """The layout to allocate ('hcp-brick' or 'mta'); refuses an ω source the layout lacks."""
    source = params.source if params.source != "auto" else detect_source(ws)
    if source == "hcp-brick" and params.omega_source != "exposure":
        raise ParameterError(
            f"{arg('omega_source')} '{params.omega_source}' applies to the campaign (mta) "
            "allocation; the HCP-brick allocation weighs HCPs by their visits.",
            fix=f"drop {arg('omega_source')} (or set it to 'exposure') for hcp-brick workspaces.",
            parameter="omega_source",
        )
    return source


def load_inputs(ws: Workspace, params: AllocateParams) -> LoadedInputs:
    source = resolve_source(ws, params)
    check_signal_params(params, source)
    return load_hcp_brick(ws, params) if source == "hcp-brick" else load_mta(ws, params)
