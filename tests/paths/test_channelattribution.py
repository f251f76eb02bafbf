"""First-order Markov shares against the ChannelAttribution package (the reference most users
compare with). It is GPL-3 and only in the optional ``bench`` extra: skipped without it."""

from __future__ import annotations

import contextlib
import io

import numpy as np
import pandas as pd
import pytest

from attribution_analysis.paths.inputs import load_aggregated
from attribution_analysis.paths.markov import fit_markov
from tests.paths.helpers import workspace_with

AGREEMENT_PP = 1.0  # the target, per channel
# ChannelAttribution simulates walks; 1e6 of them put its Monte Carlo error on these shares
# well under the target (its default 1e5 already stays within about 0.5 point).
NSIM = 1e6
# A fixed set of paths: revisits, a repeat (merged by both tools), converting and
# non-converting journeys on every channel.
PATHS = pd.DataFrame(
    [
        ("search", 40, 160),
        ("social > search", 30, 70),
        ("display > social > search", 18, 42),
        ("display", 2, 120),
        ("email > search", 25, 25),
        ("social > email > social", 6, 44),
        ("display > display > email", 9, 31),
        ("video > social", 7, 63),
        ("video > display > search > email", 12, 18),
        ("email", 10, 30),
        ("social", 4, 96),
        ("search > video > search", 5, 15),
    ],
    columns=["path", "conversions", "nulls"],
)


@pytest.mark.slow
def test_first_order_shares_agree_with_channelattribution_within_one_point(tmp_path):
    with contextlib.redirect_stdout(io.StringIO()):  # it prints a banner on import
        ca = pytest.importorskip("ChannelAttribution")
        result = ca.markov_model(
            PATHS,
            "path",
            "conversions",
            var_null="nulls",
            order=1,
            nsim_start=NSIM,
            verbose=False,
            flg_pro=False,
        )
    frame = result if isinstance(result, pd.DataFrame) else result["result"]
    theirs = frame.set_index("channel_name")["total_conversions"]

    text = PATHS.to_csv(index=False)
    fit = fit_markov(load_aggregated(workspace_with(tmp_path, {"raw/paths.csv": text})).data, 1)
    channels = sorted({c.strip() for p in PATHS["path"] for c in p.split(">")})
    ours = pd.Series(fit.conversions, index=channels)
    share_ours = ours / ours.sum()
    share_theirs = theirs.reindex(channels).fillna(0.0)
    share_theirs = share_theirs / share_theirs.sum()
    gap = (share_ours - share_theirs).abs() * 100
    assert gap.max() <= AGREEMENT_PP, pd.DataFrame({"ours": share_ours, "ca": share_theirs})
    # Both credit every conversion: the totals agree too.
    assert ours.sum() == pytest.approx(PATHS["conversions"].sum())
    assert theirs.sum() == pytest.approx(PATHS["conversions"].sum(), rel=1e-6)
    assert np.all(share_ours > 0)
