"""Per channel, whether the data decided its number: an identification verdict.

The convergence gate speaks of computation (did the sampler explore the posterior); this
speaks of the estimate (did the data, rather than the priors or a neighbouring channel,
decide it). Three sources, all already computed by ``validate_model``:

- the refit under vague priors (``sensitivity.compare_with_vague_priors``): a channel whose
  mean ROAS moves by more than ``SHIFT_LIMIT`` or whose two posteriors overlap less than
  ``OVERLAP_LIMIT`` is **prior-driven**: another reasonable prior gives another answer;
- the posterior correlation of channel totals: two channels whose totals trade off against
  each other (correlation below ``TRADE_OFF_LIMIT``) are **not separable**: the data fix their
  sum better than either part (the classic sign of collinear spend);
- power-scaling sensitivity of the channel's own parameters, used only when no refit was
  made: the verdict is then **unchecked**, with the flagged parameters named.

Everything else is **data-driven**. The verdict is on the channel's total and ROAS (the
numbers quoted and optimised), not on each curve parameter: a curve's shape can rest on the
prior while the total it implies over the observed spend is pinned by the data.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from attribution_analysis.contracts.outputs import ChannelIdentification

# Totals that move against each other this strongly across draws cannot be told apart.
TRADE_OFF_LIMIT = -0.5


def channel_verdicts(
    channels: Sequence[str],
    totals: np.ndarray | None,
    comparison: list[dict[str, Any]],
    sensitivity: list[dict[str, Any]],
    refit_made: bool,
) -> list[ChannelIdentification]:
    """One verdict per channel; ``totals``: (sample, channel) draws of channel totals (None
    for a fit without draws, e.g. a quick MAP fit)."""
    by_channel = {row["channel"]: row for row in comparison}
    partners = _trade_offs(channels, totals)
    verdicts = []
    for k, channel in enumerate(channels):
        row = by_channel.get(channel)
        trading = partners[k]
        if trading:
            corr = ", ".join(f"{name} ({value:+.2f})" for name, value in trading)
            verdict, reason = (
                "not_separable",
                f"its total trades off against {corr} across posterior draws: the data fix "
                "the sum better than each part. Quote them together, or run a lift test on one.",
            )
        elif row is not None and row.get("prior_dominates"):
            verdict, reason = (
                "prior_driven",
                f"with vague priors its mean ROAS moves by {row['relative_shift']:+.0%} and the "
                f"two posteriors overlap {row['overlap']:.2f}: the priors, not the data, set "
                "its number. Treat it as an assumption until a lift test pins it down.",
            )
        elif row is not None:
            verdict, reason = (
                "data_driven",
                f"vague priors move its mean ROAS by only {row['relative_shift']:+.0%} "
                f"(overlap {row['overlap']:.2f}) and no other channel trades off against it.",
            )
        else:
            flagged = _flagged_parameters(channel, sensitivity)
            verdict = "unchecked"
            reason = (
                (
                    "no refit under vague priors was made"
                    if not refit_made
                    else "this fit has no prior comparison"
                )
                + (
                    f"; power-scaling flags {', '.join(flagged)}, so its curve may rest on the "
                    "priors"
                    if flagged
                    else ""
                )
                + (". Run validate_model with the sensitivity refit to decide.")
            )
        verdicts.append(
            ChannelIdentification(
                channel=channel,
                verdict=verdict,  # type: ignore[arg-type]
                reason=reason,
                trades_off_with=[name for name, _ in trading],
            )
        )
    return verdicts


def _trade_offs(
    channels: Sequence[str], totals: np.ndarray | None
) -> list[list[tuple[str, float]]]:
    """Per channel, the other channels whose totals correlate below ``TRADE_OFF_LIMIT``."""
    out: list[list[tuple[str, float]]] = [[] for _ in channels]
    if totals is None or totals.shape[0] < 3 or len(channels) < 2:
        return out
    spread = totals.std(axis=0) > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = np.corrcoef(totals, rowvar=False)
    for i in range(len(channels)):
        for j in range(len(channels)):
            if i != j and spread[i] and spread[j] and corr[i, j] < TRADE_OFF_LIMIT:
                out[i].append((channels[j], float(corr[i, j])))
    return out


def _flagged_parameters(channel: str, sensitivity: list[dict[str, Any]]) -> list[str]:
    """The channel's media parameters power-scaling flags (labels such as
    'saturation_kappa[tv]'); organic parameters carry another prefix and are not counted."""
    return [
        row["parameter"]
        for row in sensitivity
        if row["parameter"].endswith(f"[{channel}]")
        and row["parameter"].startswith(("adstock_", "saturation_"))
        and str(row.get("diagnosis", "")).startswith("potential")
    ]
