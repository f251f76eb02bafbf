"""Find and load the workspace's raw input files (the workspace contract)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from attribution_analysis import layout
from attribution_analysis.contracts import inputs
from attribution_analysis.contracts.common import Finding
from attribution_analysis.data.grain import Grain, detect_grain
from attribution_analysis.data.tables import LINE, check_unique, load_table, table_spec
from attribution_analysis.errors import DataValidationError, MissingInputError, step_ref
from attribution_analysis.workspace import Workspace

SPEND_GLOB = layout.SPEND.name.replace("{platform}", "*")  # inside raw/
SPEND_NAME = re.compile(r"^campaign_spend_([A-Za-z0-9][A-Za-z0-9_-]{0,63})\.csv$")

SPEND_SPEC = table_spec("campaign_spend", inputs.CampaignSpendRow)
CONVERSIONS_SPEC = table_spec("conversions", inputs.ConversionsRow)
FACTORS_SPEC = table_spec("external_factors", inputs.ExternalFactorRow)
EXPOSURE_METRICS = ("impressions", "clicks", "reach")  # optional; empty = not reported


@dataclass
class Source:
    """One loaded input file."""

    path: Path
    shown: str  # workspace-relative path used in messages
    table: str
    frame: pd.DataFrame
    ignored_columns: list[str]
    grain: Grain | None  # None: irregular spacing allowed (external factors)
    platform: str | None = None

    @property
    def start(self) -> pd.Timestamp:
        return self.frame["date"].min()

    @property
    def end(self) -> pd.Timestamp:
        return self.frame["date"].max()


@dataclass
class MMMSources:
    spend: list[Source]
    conversions: Source
    factors: Source | None

    @property
    def all(self) -> list[Source]:
        return [*self.spend, self.conversions, *([self.factors] if self.factors else [])]


def _load(
    ws: Workspace, path: Path, spec, keys: list[str], what: str
) -> tuple[pd.DataFrame, list[str], str]:
    shown = ws.relative(path)
    frame, ignored = load_table(path, shown, spec)
    check_unique(frame, [k for k in keys if k in frame.columns], shown, what)
    return frame, ignored, shown


def load_mmm_sources(ws: Workspace) -> MMMSources:
    """Load spend files, conversions and (optional) external factors, checking each."""
    spend_paths = ws.raw_files(SPEND_GLOB)
    if not spend_paths:
        raise MissingInputError(
            f"no spend file found: the MMM needs at least one {layout.SPEND.path}.",
            fix="run the data-extraction skill to export spend per platform (columns date, "
            "channel, spend, impressions, clicks), or create a demo workspace with "
            f"{step_ref('simulate_workspace')} (kind mmm).",
            file=layout.SPEND.path,
        )
    conversions_path = ws.resolve(layout.CONVERSIONS.path)
    if not conversions_path.exists():
        raise MissingInputError(
            f"{layout.CONVERSIONS.path} is missing: the MMM needs the outcome to explain.",
            fix="export the outcome at the same grain as spend (columns date, conversions, "
            "revenue) from your analytics or CRM via the data-extraction skill.",
            file=layout.CONVERSIONS.path,
        )
    spend = []
    for path in spend_paths:
        match = SPEND_NAME.match(path.name)
        if not match:
            raise DataValidationError(
                problem="the platform part of the file name must be letters, digits, '_' or '-'.",
                fix="rename the file to campaign_spend_<platform>.csv, e.g. "
                "campaign_spend_google_ads.csv.",
                file=ws.relative(path),
                code="bad_name",
            )
        frame, ignored, shown = _load(
            ws, path, SPEND_SPEC, ["date", "channel", "campaign", "creative", "geo"], "spend"
        )
        check_lookalike_columns(frame, ignored, shown)
        check_exposure_cells(frame, shown)
        spend.append(
            Source(
                path,
                shown,
                "campaign_spend",
                frame,
                ignored,
                detect_grain(frame, shown),
                platform=match.group(1),
            )
        )
    frame, ignored, shown = _load(
        ws, conversions_path, CONVERSIONS_SPEC, ["date", "geo"], "conversions"
    )
    if "conversions" not in frame.columns and "revenue" not in frame.columns:
        raise DataValidationError(
            problem="neither 'conversions' nor 'revenue' is present; there is no outcome.",
            fix="add a 'conversions' or 'revenue' column (or both).",
            file=shown,
            column="conversions",
            rows=(1,),
            code="missing_column",
        )
    conversions = Source(
        conversions_path, shown, "conversions", frame, ignored, detect_grain(frame, shown)
    )
    factors = None
    factors_path = ws.resolve(layout.EXTERNAL_FACTORS.path)
    if factors_path.exists():
        frame, ignored, shown = _load(
            ws,
            factors_path,
            FACTORS_SPEC,
            ["date", "factor_name"],
            "external factor",
        )
        # Factors may be monthly or irregular (macro indicators): they are mapped onto the
        # modelling periods as-of, so their spacing is not forced to daily/weekly.
        factors = Source(factors_path, shown, "external_factors", frame, ignored, None)
    return MMMSources(spend, conversions, factors)


def check_lookalike_columns(frame: pd.DataFrame, ignored: list[str], shown: str) -> None:
    """An optional delivery column that is absent while an unknown column looks like it
    ('impresions'): a typo, not a spend-only file, so it is refused as a missing column."""
    import difflib

    for metric in EXPOSURE_METRICS:
        if metric in frame:
            continue
        close = difflib.get_close_matches(metric, ignored, n=1, cutoff=0.8)
        if close:
            raise DataValidationError(
                problem=f"column '{metric}' is missing but {close[0]!r} looks like '{metric}'.",
                fix=f"rename {close[0]!r} to '{metric}' (or drop the column: a channel "
                f"without {metric} is modelled on spend alone).",
                file=shown,
                column=metric,
                rows=(1,),
                code="missing_column",
            )


def check_exposure_cells(frame: pd.DataFrame, shown: str) -> None:
    """A channel's exposure metric is reported in all of its rows of a file or in none:
    empty in some rows only is a broken export, and guessing those cells (as 0 or by
    interpolation) would bias the effective exposure of its campaigns."""
    for metric in EXPOSURE_METRICS:
        if metric not in frame:
            continue
        unknown = frame[metric].isna()
        if not unknown.any():
            continue
        mixed = unknown.groupby(frame["channel"]).transform(lambda s: 0 < s.sum() < len(s))
        if mixed.any():
            channel = frame.loc[mixed, "channel"].iloc[0]
            rows = frame.loc[mixed & unknown & (frame["channel"] == channel), LINE]
            raise DataValidationError(
                problem=f"{metric} of channel '{channel}' is empty in some rows but not in "
                "others; empty means 'not reported', and a channel reports it in every row or "
                "in none.",
                fix=f"fill the empty cells (0 where nothing was delivered), or empty the "
                f"channel's {metric} in every row to model it on spend alone.",
                file=shown,
                column=metric,
                rows=tuple(int(r) for r in rows),
                code="missing_value",
            )


def spend_only_channels(spend: list[Source]) -> list[str]:
    """Channels with no impressions in any row of any spend file (modelled on spend)."""
    known: dict[str, bool] = {}
    for src in spend:
        has = (
            src.frame["impressions"].notna()
            if "impressions" in src.frame
            else pd.Series(False, index=src.frame.index)
        )
        for channel, any_known in has.groupby(src.frame["channel"]).any().items():
            known[str(channel)] = known.get(str(channel), False) or bool(any_known)
    return sorted(c for c, k in known.items() if not k)


def spend_only_findings(sources: MMMSources) -> list[Finding]:
    """One finding per spend-only channel: what modelling it on spend alone costs."""
    out = []
    for channel in spend_only_channels(sources.spend):
        files = [s.shown for s in sources.spend if (s.frame["channel"] == channel).any()]
        campaigns = {
            c
            for s in sources.spend
            if "campaign" in s.frame
            for c in s.frame.loc[s.frame["channel"] == channel, "campaign"]
        }
        out.append(
            Finding(
                code="spend_only_channel",
                severity="info",
                subject=channel,
                value=float(len(campaigns)) if campaigns else None,
                message=f"channel '{channel}' has no impressions ({', '.join(files)}): it is "
                "modelled on spend. Its campaigns get no effective exposure from delivery, so "
                "allocation within it can only split by spend"
                + (f" ({len(campaigns)} campaigns)" if len(campaigns) > 1 else "")
                + "; export impressions to weigh campaigns by what they delivered.",
            )
        )
    return out
