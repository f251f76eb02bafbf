"""Find and load the workspace's raw input files (the workspace contract)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from attribution_analysis import layout
from attribution_analysis.contracts import inputs
from attribution_analysis.data.grain import Grain, detect_grain
from attribution_analysis.data.tables import check_unique, load_table, table_spec
from attribution_analysis.errors import DataValidationError, MissingInputError, step_ref
from attribution_analysis.workspace import Workspace

SPEND_GLOB = layout.SPEND.name.replace("{platform}", "*")  # inside raw/
SPEND_NAME = re.compile(r"^campaign_spend_([A-Za-z0-9][A-Za-z0-9_-]{0,63})\.csv$")

SPEND_SPEC = table_spec("campaign_spend", inputs.CampaignSpendRow)
CONVERSIONS_SPEC = table_spec("conversions", inputs.ConversionsRow)
FACTORS_SPEC = table_spec("external_factors", inputs.ExternalFactorRow)


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
