"""Platform signals as evidence on campaign rates, and a user-named exposure column.

Engine checks: the simulator's daily world (``simulate.mta.simulate_daily_campaigns``) summed
to 16 weeks with an MMM-like noisy total and 12 campaigns, where the co-movement of the
totals alone separates campaigns poorly. Its true productivities (outcome per reached user)
build two signals: an informative one (clicks drawn in proportion to true rate x reach, so
clicks per reached user track the truth) and a pure-noise one (clicks per reached user
unrelated to the truth). Truth shares are the simulator's.

Step checks: the hand-built daily world of :mod:`tests.allocation.test_grain`, whose raw
campaign files are edited here (a user column added, a signal column absent, a bad cell).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
import pytest

from attribution_analysis.allocation.em import fit_em
from attribution_analysis.allocation.loaders import load_inputs
from attribution_analysis.api import allocate
from attribution_analysis.contracts.allocation import AllocateParams
from attribution_analysis.errors import DataValidationError, ParameterError
from attribution_analysis.simulate.mta import simulate_daily_campaigns
from attribution_analysis.workspace import Workspace
from tests.allocation.test_grain import (  # noqa: F401 (the fixtures 'world', 'world_root')
    SOCIAL,
    World,
    analysis_bytes,
    per_period_gap,
    read_table,
    world_fixture,
    world_root_fixture,
)
from tests.allocation.test_pooling import FEW_PERIODS, _share_mae, _weekly

# 12 campaigns over 16 weeks, noisy totals: few periods per rate, where evidence is scarce.
SCARCE = replace(FEW_PERIODS, campaigns=(12, 12))
SEEDS = range(6)
CLICKS_PER_REACHED_USER = 0.02  # informative clicks: this many per reached user at rate 1
NOISE_SD = 0.5  # log-scale spread of the noise signal's clicks per reached user
# Informative signal: the mean beta over 6 seeds (per-seed standard errors ~0.2-0.5 here)
# lies within 0.4 of the truth 1, and the mean share error falls by at least 15% (measured:
# beta 0.91, error 0.0199 -> 0.0141).
BETA_TOL = 0.4
ERROR_CUT = 0.85
# Noise signal: mean beta within 0.35 of 0, its 90% interval covering 0 in at least 4 of 6
# seeds (5 measured; binomial(6, 0.9) gives 4 or more 98% of the time), and the mean share
# error within 10% of the fit without a signal (measured: beta 0.09, 0.0197 against 0.0199).
NOISE_BETA_TOL = 0.35
NOISE_COVERED_MIN = 4
NOISE_ERROR_SLACK = 1.10
# Exact totals and a signal proportional to the true rates: beta within 0.1 of 1.
EXACT_BETA_TOL = 0.1
SOCIAL_ONLY = "analysis/social_contributions.csv"
META_FILE = "raw/campaign_spend_meta.csv"


@dataclass(frozen=True)
class SeedFits:
    truth: np.ndarray
    error_none: float
    error_informative: float
    error_noise: float
    beta_informative: float
    beta_noise: float
    noise_interval_covers_0: bool


@pytest.fixture(scope="module")
def seed_fits() -> list[SeedFits]:
    out = []
    for seed in SEEDS:
        world = simulate_daily_campaigns(seed, SCARCE)
        problem = _weekly(world)
        truth = world.true_share.to_numpy()
        productivity = world.campaigns["productivity_true"].to_numpy()
        reach = np.bincount(problem.entity, problem.exposure, problem.n_entities)
        rng = np.random.default_rng(1000 + seed)
        informative = rng.poisson(CLICKS_PER_REACHED_USER * productivity * reach).astype(float)
        unrelated = rng.lognormal(0.0, NOISE_SD, problem.n_entities)
        noise = rng.poisson(CLICKS_PER_REACHED_USER * unrelated * reach).astype(float)
        plain = fit_em(problem)
        with_signal = fit_em(problem, platform_signal=informative)
        with_noise = fit_em(problem, platform_signal=noise)
        assert with_signal.signal_weight is not None and with_noise.signal_weight is not None
        weight = with_noise.signal_weight
        out.append(
            SeedFits(
                truth=truth,
                error_none=_share_mae(problem, plain.allocated, truth),
                error_informative=_share_mae(problem, with_signal.allocated, truth),
                error_noise=_share_mae(problem, with_noise.allocated, truth),
                beta_informative=with_signal.signal_weight.beta,
                beta_noise=weight.beta,
                noise_interval_covers_0=abs(weight.beta) <= 1.645 * weight.std_error,
            )
        )
    return out


def test_an_informative_signal_gets_a_weight_near_one_and_cuts_the_share_error(seed_fits):
    beta = np.mean([f.beta_informative for f in seed_fits])
    error_none = np.mean([f.error_none for f in seed_fits])
    error_signal = np.mean([f.error_informative for f in seed_fits])
    assert abs(beta - 1.0) < BETA_TOL, beta
    assert error_signal < ERROR_CUT * error_none, (error_signal, error_none)


def test_a_pure_noise_signal_gets_no_weight_and_leaves_the_split_as_without(seed_fits):
    """Negative control: the signal machinery must not find weight where there is none."""
    beta = np.mean([f.beta_noise for f in seed_fits])
    error_none = np.mean([f.error_none for f in seed_fits])
    error_noise = np.mean([f.error_noise for f in seed_fits])
    assert abs(beta) < NOISE_BETA_TOL, beta
    assert sum(f.noise_interval_covers_0 for f in seed_fits) >= NOISE_COVERED_MIN
    assert error_noise < NOISE_ERROR_SLACK * error_none, (error_noise, error_none)
    # ... while the informative signal's weight is told apart from the noise's.
    assert np.mean([f.beta_informative for f in seed_fits]) - beta > 0.5


def test_a_signal_on_free_rates_is_refused():
    problem = _weekly(simulate_daily_campaigns(0, SCARCE))
    with pytest.raises(ParameterError, match="pooled free rates"):
        fit_em(problem, pooling="none", platform_signal=np.ones(problem.n_entities))


# ----- through the allocate step ------------------------------------------------------------
@pytest.fixture
def social(world: World) -> World:
    """Contributions of the social channel only (impressions, reach and clicks reported)."""
    frame = world.contributions[world.contributions["channel"] == SOCIAL]
    frame.to_csv(world.root / SOCIAL_ONLY, index=False, date_format="%Y-%m-%d")
    return World(world.root, world.delivery, frame, world.truth)


def _edit_meta(root, **columns) -> pd.DataFrame:
    """Add columns to the social channel's raw campaign file (after validation)."""
    path = root / META_FILE
    frame = pd.read_csv(path, dtype=str)
    for name, values in columns.items():
        frame[name] = values(frame)
    frame.to_csv(path, index=False)
    return frame


def test_a_signal_column_missing_from_the_campaign_files_names_the_file_and_column(social):
    before = analysis_bytes(social.root)
    with pytest.raises(DataValidationError) as caught:
        allocate(
            Workspace.open(social.root),
            AllocateParams(contributions=SOCIAL_ONLY, signal="conversions", bootstrap=0),
        )
    assert caught.value.file == META_FILE and caught.value.column == "conversions"
    assert analysis_bytes(social.root) == before  # nothing written


def test_a_user_named_exposure_column_equal_to_impressions_gives_the_same_split(social):
    _edit_meta(social.root, impressions_copy=lambda f: f["impressions"])
    ws = Workspace.open(social.root)

    def problem(exposure: str):
        params = AllocateParams(contributions=SOCIAL_ONLY, exposure=exposure, bootstrap=0)
        return load_inputs(ws, params).problem

    built_in, named = problem("impressions"), problem("impressions_copy")
    for attribute in ("group", "entity", "totals"):
        np.testing.assert_array_equal(getattr(named, attribute), getattr(built_in, attribute))
    np.testing.assert_array_equal(named.exposure, built_in.exposure)
    # negative control: another column (clicks) weighs the campaigns differently
    assert not np.allclose(problem("clicks").exposure, built_in.exposure, rtol=1e-3)
    # ... and the step runs on the named column, its pieces adding up to each day's total
    report = allocate(
        ws, AllocateParams(contributions=SOCIAL_ONLY, exposure="impressions_copy", bootstrap=0)
    )
    assert report.omega.exposure_metric == "impressions_copy"
    assert per_period_gap(read_table(social.root), social.contributions) < 1e-9


def test_a_non_numeric_user_column_names_the_file_column_and_row(social):
    frame = _edit_meta(social.root, video_views=lambda f: f["impressions"])
    bad = 7
    frame.loc[bad, "video_views"] = "n/a!"
    frame.to_csv(social.root / META_FILE, index=False)
    with pytest.raises(DataValidationError) as caught:
        allocate(
            Workspace.open(social.root),
            AllocateParams(contributions=SOCIAL_ONLY, exposure="video_views", bootstrap=0),
        )
    error = caught.value
    assert error.file == META_FILE and error.column == "video_views"
    assert bad + 2 in error.rows  # data row 7 is line 9 (line 1 is the header)


def test_a_user_column_as_signal_is_reported_with_its_weight_and_a_finding(social):
    """Platform conversions proportional to the true credit (half of it, per row): per
    impression they follow the true rates exactly, and the totals are exact, so the data
    give the signal its full weight: beta near 1."""
    credit = social.truth.loc[social.truth["channel"] == SOCIAL, "credit"].to_numpy()
    _edit_meta(social.root, platform_conversions=lambda f: np.round(0.5 * credit, 6))
    report = allocate(
        Workspace.open(social.root),
        AllocateParams(contributions=SOCIAL_ONLY, signal="platform_conversions", bootstrap=0),
    )
    signal = report.pooling.signal
    assert signal is not None and signal.column == "platform_conversions"
    assert signal.lower_90 is not None and signal.upper_90 is not None
    assert abs(signal.beta - 1.0) < EXACT_BETA_TOL, signal
    assert signal.explained > 0.9, signal
    finding = next(f for f in report.findings if f.code == "platform_signal")
    assert "platform_conversions explain" in finding.message
    assert "co-movement decides the rest" in finding.message
