"""MMM accuracy on worlds this project did not write, beside PyMC-Marketing's plain default.

    python benchmarks/mmm_accuracy.py [--worlds hill_season,trend_break] [--seeds 1,2]
        [--quick] [--models ours,library] [--variant NAME[,NAME...]] [--out results.jsonl]
        [--lift-tests N [--lift-se 0.1] [--calibrated-only]] [--lift-reading]

For every world of ``benchmarks/worlds.py`` and seed, the same wide weekly table is fitted
twice:

- ours: the project's real path (``import_data`` -> ``validate_data`` -> ``fit_mmm`` ->
  ``validate_model`` without refits -> ``decompose_contributions``) with its defaults, or
  with one named ``--variant`` of the configuration (the ablations that locate where ours
  and the library differ);
- library: ``pymc_marketing.mmm.MMM`` with GeometricAdstock(l_max=8), LogisticSaturation and
  its own default priors, ``fit()`` with its defaults, on the very table ``fit_mmm`` models
  (same controls, scaled the same way, same Fourier order).

With ``--lift-tests N`` every model is fitted a second time, calibrated with N go-dark lift
tests of the world (``world_lift_tests``: the N channels with the largest spend, each dark for
4 weeks, the truth from the world's own curves, observed with a standard error of
``--lift-se`` times the lift): ours with ``calibrate=True`` from the workspace's lift-test
file, the library with ``add_lift_test_measurements`` on the same tests, converted by the
same ``lift_test_frame``. Their rows are labelled ``+liftN`` (``+liftN@SE`` for another
``--lift-se``); ``--calibrated-only`` skips the uncalibrated fits, which a run with the same
seeds has already made (the same inputs and seed give the same posterior). ``--lift-reading``
fits nothing: for a test of every channel of every world it prints PyMC-Marketing's
steady-state reading of the test (with the world's own curve) over the test's true lift.

Printed per world and overall: share-of-media MAE (points), media-total bias (%), the share
of channels whose true total lies inside the 90% interval, mean absolute ROAS error (%),
seconds of the fit, min bulk ESS and whether the convergence gates pass (R-hat < 1.05, bulk
ESS > 400, divergences <= 0.1%). ``--quick`` samples 1,000 draws after 1,000 warm-up draws
for both (the library's own default) and skips our retry, so a first pass is affordable on
two cores. Each fit is appended to ``--out`` as one JSON line as soon as it ends, so a long
run in the background can be read while it goes on (``--report-only`` prints the table of
a results file).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from attribution_analysis import layout
from attribution_analysis.api import decompose_contributions, fit_mmm, validate_data
from attribution_analysis.api import validate_model as validate_fit
from attribution_analysis.contracts.importing import ChannelColumns, ImportDataParams, ImportRoles
from attribution_analysis.contracts.inputs import IncrementalityResult
from attribution_analysis.contracts.mmm import FitMMMParams, MMMConfig, SamplerSettings
from attribution_analysis.mmm.calibration import calibrate, lift_test_frame
from attribution_analysis.mmm.convergence import convergence_summary, passes_gates
from attribution_analysis.mmm.decompose import expected_share_error
from attribution_analysis.mmm.panel import load_model_data
from attribution_analysis.runner import run_step
from attribution_analysis.steps import step
from attribution_analysis.summaries import interval
from attribution_analysis.workspace import Workspace

# benchmarks/ is not a package: the worlds module is imported from beside this file.
sys.path.insert(0, str(Path(__file__).resolve().parent))
from worlds import WORLDS, World, make_world

QUICK_SAMPLER = SamplerSettings(draws=1000, tune=1000)
LIBRARY_L_MAX = 8
# PyMC-Marketing's own defaults for the pieces where this project's defaults differ.
LIBRARY_ALPHA = {"adstock_alpha": {"dist": "Beta", "kwargs": {"alpha": 1.0, "beta": 3.0}}}
LIBRARY_HILL = {
    "saturation_kappa": {"dist": "HalfNormal", "kwargs": {"sigma": 1.5}},
    "saturation_slope": {"dist": "HalfNormal", "kwargs": {"sigma": 1.5}},
}
# One piece of our configuration swapped at a time (the ablations of the methodology note).
VARIANTS: dict[str, dict[str, Any]] = {
    "default": {},
    "logistic": {"saturation": "logistic"},
    "logistic_library_alpha": {"saturation": "logistic", "priors": LIBRARY_ALPHA},
    "library_alpha": {"priors": LIBRARY_ALPHA},
    "hill_library_priors": {"priors": {**LIBRARY_HILL, **LIBRARY_ALPHA}},
    "no_trend": {"use_trend": False},
    # Both families fitted, PSIS-LOO keeps one (mmm/family.py). Run after "default" and
    # "logistic" in the same run it reuses their two fits from the store (same data, seed
    # and settings), so the three rows score one set of posteriors.
    "auto": {"saturation": "auto"},
    # Meridian's default ROI prior, LogNormal(0.2, 0.9), on each channel (mmm/roi_prior.py):
    # what "default" carries on these revenue worlds since it was measured; "no_roi_prior"
    # is the previous default.
    "roi_prior": {"roi_prior": {"mu": 0.2, "sigma": 0.9}},
    "intercept_sampled": {"intercept_sampled_as": "intercept"},
    # The carry-over family: Weibull (PDF form: a peak after the spend possible) against the
    # default geometric, on worlds whose carry-over peaks late (delayed_events) and others.
    "weibull": {"adstock": "weibull"},
    "no_roi_prior": {"roi_prior": None},
    # Carry-over longer than the default 8 weeks (two worlds' retention runs past it): 13
    # weeks, a quarter, the longest window commonly used for weekly data.
    "l_max_13": {"l_max": 13},
    "logistic_roi_prior": {"saturation": "logistic", "roi_prior": {"mu": 0.2, "sigma": 0.9}},
    # The Hill slope prior: the default's LogNormal(0, 0.5) (median 1: concave, S-shapes
    # allowed) against the previous default, chosen on the project's own simulator (median 1.5),
    # and a tighter prior near Meridian's fixed slope of 1.
    "slope_previous": {
        "priors": {"saturation_slope": {"dist": "LogNormal", "kwargs": {"mu": 0.4, "sigma": 0.5}}}
    },
    "slope_concave": {
        "priors": {"saturation_slope": {"dist": "LogNormal", "kwargs": {"mu": 0.0, "sigma": 0.3}}}
    },
}


def import_world(world: World, root: Path) -> Workspace:
    """The world's table into a new workspace through import_data, then validate_data."""
    ws = Workspace.create(root)
    roles = ImportRoles(
        date="date",
        target="sales",
        target_kind="revenue",
        channels={c: ChannelColumns(spend=f"spend_{c}") for c in world.channels},
        controls=world.controls,
        events=world.events,
    )
    params = ImportDataParams(
        content=world.table.to_csv(index=False), dry_run=False, roles=roles, country=None
    )
    run_step(step("import_data"), ws, params)
    validate_data(ws)
    return ws


LIFT_WEEKS = 4


def world_lift_tests(world: World, n_tests: int, se_share: float, seed: int) -> list[dict]:
    """Go-dark lift tests an advertiser could have run in this world: the ``n_tests``
    channels with the largest spend, each switched off for 4 weeks.

    Each test runs in the last year, ending at least 12 weeks before the data do (its
    carry-over then lies in the data), in the 4 weeks of that stretch with the largest spend
    (a test in weeks without spend measures nothing). The true lift is the outcome the
    world's own curves lose over the whole series (``World.go_dark_lift``); the test reports
    it with a normal error of ``se_share`` times the lift and a 90% interval, as the
    project's simulator does (10% by default).
    """
    rng = np.random.default_rng([seed, 7])
    dates = pd.to_datetime(world.table["date"])
    n = len(dates)
    chosen = sorted(world.channels, key=lambda c: -world.true_spend[c])[:n_tests]
    tests = []
    for channel in chosen:
        spend = world.table[f"spend_{channel}"].to_numpy(dtype=float)
        first = max(
            range(n - 52, n - 12 - LIFT_WEEKS + 1),
            key=lambda t: spend[t : t + LIFT_WEEKS].sum(),
        )
        weeks = slice(first, first + LIFT_WEEKS)
        true_lift = world.go_dark_lift(channel, weeks)
        se = se_share * true_lift
        observed = true_lift + float(rng.normal(0, se))
        tests.append(
            {
                "channel": channel,
                "lift": round(observed, 2),
                "ci_lower": round(observed - 1.645 * se, 2),
                "ci_upper": round(observed + 1.645 * se, 2),
                "ci_level": 0.9,
                "start": str(dates[first].date()),
                "end": str((dates[first + LIFT_WEEKS - 1] + pd.Timedelta(days=6)).date()),
                "spend": round(float(spend[weeks].sum()), 2),
            }
        )
    return tests


def steady_state_reading(world: World, test: dict) -> float:
    """PyMC-Marketing's reading of a go-dark test (``add_lift_test_measurements``: the curve's
    rise from 0 to the test's spend per period, at steady state, times the test's periods),
    with the world's own curve, over the test's true lift: the reading's bias alone, no fit.
    """
    dates = list(world.table["date"])
    first = dates.index(test["start"])
    steady = world.responses[test["channel"]](np.full(len(dates), test["spend"] / LIFT_WEEKS))
    true_lift = world.go_dark_lift(test["channel"], slice(first, first + LIFT_WEEKS))
    return float(LIFT_WEEKS * steady[-1] / true_lift)


def write_lift_tests(ws: Workspace, tests: list[dict]) -> None:
    """The tests where a user puts them: the workspace's lift-test file."""
    path = ws.root / layout.LIFT_TESTS.path
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(tests, indent=2))


def fit_ours(
    ws: Workspace,
    world: World,
    seed: int,
    quick: bool,
    variant: str,
    calibrate: bool = False,
    reading: str = "counterfactual",
) -> dict:
    """Our fit_mmm step on the world's workspace; ``reading`` is its ``lift_reading``
    ("steady_state": every lift test read by PyMC-Marketing's ``add_lift_test_measurements``,
    the twin of ``--library-reading counterfactual``)."""
    config = MMMConfig(**VARIANTS[variant])
    # No ridge fallback for any variant: "auto" never falls back (LOO compares posteriors),
    # and the variants must be the same fits for "auto" to reuse theirs.
    params = FitMMMParams(
        config=config,
        seed=seed,
        use_cache=variant == "auto",
        fallback_to_ridge=False,
        calibrate=calibrate,
        lift_reading=reading,
    )
    if quick:
        params = params.model_copy(update={"sampler": QUICK_SAMPLER, "retry": False})
    start = time.perf_counter()
    result = fit_mmm(ws, params)
    seconds = time.perf_counter() - start
    diagnostics = validate_fit(ws, backtest_periods=None, sensitivity_refit=False)
    contributions = decompose_contributions(
        ws, override_reason=None if diagnostics.passed else "accuracy benchmark"
    )
    estimates = {
        c.channel: {
            "mean": c.total_contribution.mean,
            "hdi_90": list(c.total_contribution.hdi_90),
            "share": c.share_of_media.mean,
        }
        for c in contributions.channels
    }
    # The decomposition's stored draws (500 or more, thinned from the posterior), summed over
    # the weeks.
    with xr.open_dataset(ws.root / layout.CONTRIBUTION_DRAWS.path) as stored:
        draws = stored["channel_contribution"]
        totals = draws.sum([d for d in draws.dims if d not in ("channel", "sample")]).load()
    spreads = share_spread({c: totals.sel(channel=c).values for c in estimates})
    for channel, spread in spreads.items():
        estimates[channel].update(spread)
    summary = result.convergence
    return {
        "model": "ours" if variant == "default" else f"ours:{variant}",
        "method": result.method,
        "seconds": seconds,
        "min_ess": summary.get("min_ess_bulk"),
        "divergences": summary.get("divergences"),
        "gates": bool(summary) and passes_gates(summary),
        "validation_passed": diagnostics.passed,
        "remedies": result.remedies_tried,
        "estimates": estimates,
        "saturation_choice": (
            result.saturation_choice.model_dump(mode="json") if result.saturation_choice else None
        ),
    }


def library_default(
    channels: list[str], target: str, controls: list[str], dims: tuple[str, ...] = ()
):
    """PyMC-Marketing's plain default MMM (geometric adstock, logistic saturation, its own
    priors) on the columns our fit models; ``dims=("geo",)`` for a geo panel."""
    from pymc_marketing.mmm import MMM, GeometricAdstock, LogisticSaturation

    return MMM(
        date_column="date",
        channel_columns=list(channels),
        target_column=target,
        adstock=GeometricAdstock(l_max=LIBRARY_L_MAX),
        saturation=LogisticSaturation(),
        control_columns=list(controls) or None,
        yearly_seasonality=MMMConfig().yearly_seasonality,
        **({"dims": dims} if dims else {}),
    )


def fit_library(
    ws: Workspace,
    world: World,
    seed: int,
    quick: bool,
    lift_tests: list[dict] | None = None,
    reading: str = "steady_state",
) -> dict:
    """PyMC-Marketing's plain default on the table our fit models (same X and y); with
    ``lift_tests``, calibrated by the library's own ``add_lift_test_measurements`` on the rows
    our fit gives it (``lift_test_frame``), or, with ``reading="counterfactual"``, by our
    reading of a test through the model's own counterfactual (``mmm/calibration.py``, the
    same variables exist in the library's model): an ablation that separates the reading
    from the rest of the two models."""
    config = MMMConfig()
    data = load_model_data(
        ws, None, config.use_trend, config.use_holidays, config.use_external_factors
    )
    # Event indicators are a component of their own in our model; the library gets them as
    # plain controls (its way of taking a 0/1 event), from the same scaled columns.
    controls = [*data.controls, *getattr(data, "events", [])]
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mmm = library_default(data.channels, data.target, controls)
        sample = {"draws": QUICK_SAMPLER.draws, "tune": QUICK_SAMPLER.tune} if quick else {}
        X = data.X[["date", *data.channels, *controls]]
        if lift_tests:
            mmm.build_model(X, data.y)
            tests = [IncrementalityResult.model_validate(t) for t in lift_tests]
            if reading == "counterfactual":
                calibrate(mmm, tests, data)
            else:
                mmm.add_lift_test_measurements(lift_test_frame(tests, data))
        tree = mmm.fit(
            X,
            data.y,
            random_seed=seed,
            progressbar=False,
            **sample,
        )
    seconds = time.perf_counter() - start
    scale = float(np.max(mmm.model["target_scale"].get_value()))
    posterior = tree["posterior"].to_dataset()
    # Contribution per draw and channel, summed over the window, in the outcome's units.
    totals = (posterior["channel_contribution"] * scale).sum("date").stack(s=("chain", "draw"))
    media = totals.sum("channel")
    estimates = {}
    for channel in data.channels:
        draws = totals.sel(channel=channel).values
        summary = interval(draws)
        estimates[channel] = {
            "mean": summary.mean,
            "hdi_90": list(summary.hdi_90),
            "share": float(np.mean(draws / media.values)),
        }
    spreads = share_spread({c: totals.sel(channel=c).values for c in data.channels})
    for channel, spread in spreads.items():
        estimates[channel].update(spread)
    summary = convergence_summary(tree)
    return {
        "model": "library",
        "method": "bayesian_nuts",
        "seconds": seconds,
        "min_ess": summary["min_ess_bulk"],
        "divergences": summary["divergences"],
        "gates": passes_gates(summary),
        "validation_passed": None,
        "remedies": [],
        "estimates": estimates,
    }


def share_spread(totals: dict[str, np.ndarray]) -> dict[str, dict[str, Any]]:
    """Per channel, from draws of every channel's total (aligned by draw): the share's 90%
    HDI and the share error the posterior itself expects, E|share - posterior mean share|
    (the product's own ``expected_share_error``, which its decomposition reports).

    Averaged over channels, the expected error is what the model says its share MAE should
    be; set beside the realised MAE it tells a model whose errors match its stated
    uncertainty (the data left that much open) from one that is wrong with confidence.
    """
    channels = list(totals)
    media = np.column_stack([totals[c] for c in channels])
    expected = expected_share_error(media)
    kept = media[media.sum(axis=1) > 0]  # as expected_share_error: draws with media
    shares = kept / kept.sum(axis=1, keepdims=True)
    return {
        c: {
            "share_expected_error": float(expected[k]),
            "share_hdi_90": list(interval(shares[:, k]).hdi_90),
        }
        for k, c in enumerate(channels)
    }


def score(world: World, estimates: dict[str, dict]) -> dict[str, float]:
    """Share MAE (points), media-total bias (%), 90% coverage and ROAS error (%) vs truth;
    with share draws, the share error the posterior expects (points) and the share's 90%
    coverage."""
    truth, share = world.true_contribution, world.true_share
    channels = world.channels
    share_error = [abs(estimates[c]["share"] - share[c]) for c in channels]
    spread = {}
    if all("share_expected_error" in estimates[c] for c in channels):
        share_hdi = {c: estimates[c]["share_hdi_90"] for c in channels}
        spread = {
            "share_expected_mae_pts": 100
            * float(np.mean([estimates[c]["share_expected_error"] for c in channels])),
            "share_coverage": float(
                np.mean([share_hdi[c][0] <= share[c] <= share_hdi[c][1] for c in channels])
            ),
        }
    inside = [estimates[c]["hdi_90"][0] <= truth[c] <= estimates[c]["hdi_90"][1] for c in channels]
    media = sum(estimates[c]["mean"] for c in channels)
    # ROAS = contribution / spend with the world's own spend, so its relative error is the
    # channel total's relative error: one figure per channel, averaged.
    roas_error = [abs(estimates[c]["mean"] - truth[c]) / truth[c] for c in channels]
    return {
        "share_mae_pts": 100 * float(np.mean(share_error)),
        "media_bias_pct": 100 * (media / world.true_media_total - 1),
        "coverage": float(np.mean(inside)),
        "n_channels": len(channels),
        "roas_error_pct": 100 * float(np.mean(roas_error)),
        **spread,
    }


def run_one(
    name: str,
    seed: int,
    models: list[str],
    quick: bool,
    variants: list[str],
    lift_tests: int = 0,
    lift_se: float = 0.1,
    calibrated_only: bool = False,
    library_reading: str = "steady_state",
    our_reading: str = "counterfactual",
) -> list[dict]:
    world = make_world(name, seed)
    tests = world_lift_tests(world, lift_tests, lift_se, seed) if lift_tests else []
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        ws = import_world(world, Path(tmp) / "ws")
        if tests:
            write_lift_tests(ws, tests)
            validate_data(ws)  # checks the tests against the prepared panel, as for a user
        runs = [
            (model, variant, calibrated)
            for model in models
            for variant in (variants if model == "ours" else ["library"])
            for calibrated in ([True] if calibrated_only else [False, True] if tests else [False])
        ]
        for model, variant, calibrated in runs:
            try:
                if model == "ours":
                    row = fit_ours(
                        ws, world, seed, quick, variant, calibrate=calibrated, reading=our_reading
                    )
                else:
                    row = fit_library(
                        ws, world, seed, quick, tests if calibrated else None, library_reading
                    )
            except Exception as exc:  # one failed fit must not end a run of hours
                print(f"{name} seed {seed} {model}: FAILED {type(exc).__name__}: {exc}")
                continue
            if calibrated:
                row["model"] += f"+lift{len(tests)}" + (f"@{lift_se:g}" if lift_se != 0.1 else "")
                if model == "library" and library_reading != "steady_state":
                    row["model"] += f" ({library_reading} reading)"
                if model == "ours" and our_reading != "counterfactual":
                    row["model"] += f" ({our_reading} reading)"
                row["lift_tests"] = tests
            row.update(world=name, seed=seed, quick=quick, **score(world, row["estimates"]))
            row["truth"] = world.true_contribution
            rows.append(row)
    return rows


def _draw(spec: dict[str, Any], rng: np.random.Generator, n: int) -> np.ndarray:
    """Draws of one prior in Prior.to_dict() form (the four families the defaults use)."""
    kw = spec["kwargs"]
    draw = {
        "Beta": lambda: rng.beta(kw["alpha"], kw["beta"], n),
        "LogNormal": lambda: rng.lognormal(kw["mu"], kw["sigma"], n),
        "HalfNormal": lambda: np.abs(rng.normal(0, kw["sigma"], n)),
        "Gamma": lambda: rng.gamma(kw["alpha"], 1 / kw["beta"], n),
    }
    return draw[spec["dist"]]()


def flat_prior_mass(world: World, channel: str, draws: int = 4000) -> dict[str, float]:
    """Share of prior curves that are nearly flat over the channel's observed spend.

    A curve whose response varies by less than a third of the true response's coefficient
    of variation over the weeks is close to a constant the intercept can trade with. The
    curves are NumPy twins of PyMC-Marketing's (normalised geometric adstock over l_max 8,
    ``x^s / (x^s + k^s)``, ``tanh(lam x / 2)``) on spend scaled by its maximum, because a
    prior-predictive count over thousands of draws needs no model graph.
    """
    from attribution_analysis.mmm.priors import default_priors

    rng = np.random.default_rng(0)
    spend = world.table[f"spend_{channel}"].to_numpy()
    x = spend / spend.max()
    weekly = world.weekly_contribution[channel]
    limit = float(weekly.std() / weekly.mean()) / 3
    ours = default_priors("hill")
    logistic_lam = {"dist": "Gamma", "kwargs": {"alpha": 3.0, "beta": 1.0}}

    def adstocked(alpha: np.ndarray) -> np.ndarray:
        weights = alpha[:, None] ** np.arange(LIBRARY_L_MAX)
        weights /= weights.sum(1, keepdims=True)
        out = np.zeros((draws, len(x)))
        for lag in range(LIBRARY_L_MAX):
            out[:, lag:] += weights[:, lag : lag + 1] * x[None, : len(x) - lag]
        return out[:, LIBRARY_L_MAX:]

    def hill(xa: np.ndarray, kappa: np.ndarray, slope: np.ndarray) -> np.ndarray:
        return xa ** slope[:, None] / (xa ** slope[:, None] + kappa[:, None] ** slope[:, None])

    def share_flat(response: np.ndarray) -> float:
        return float(np.mean(response.std(1) / response.mean(1) < limit))

    ours_x = adstocked(_draw(ours["adstock_alpha"], rng, draws))
    library_x = adstocked(_draw(LIBRARY_ALPHA["adstock_alpha"], rng, draws))
    lam = _draw(logistic_lam, rng, draws)[:, None]
    return {
        "hill, our priors": share_flat(
            hill(
                ours_x,
                *(_draw(ours[k], rng, draws) for k in ("saturation_kappa", "saturation_slope")),
            )
        ),
        "hill, library priors": share_flat(
            hill(
                library_x,
                *(
                    _draw(LIBRARY_HILL[k], rng, draws)
                    for k in ("saturation_kappa", "saturation_slope")
                ),
            )
        ),
        "logistic, our adstock prior": share_flat(np.tanh(lam * ours_x / 2)),
        "logistic, library default": share_flat(np.tanh(lam * library_x / 2)),
    }


def _choice_note(row: dict) -> str:
    choice = row.get("saturation_choice")
    if not choice:
        return ""
    return (
        f"  kept {choice['chosen']} ({choice['decided_by']}, elpd diff "
        f"{choice['elpd_difference']:+.1f} +- {choice['difference_se']:.1f}, family gap "
        f"{choice['media_total_gap']:.0%})"
    )


def print_family_choice(rows: list[dict]) -> None:
    """Did LOO keep the family that was closer to the truth? Scored on the rows of one run
    where the Hill default, the logistic variant and auto fitted the same world and seed."""
    by_case: dict[tuple[str, int], dict[str, dict]] = {}
    for r in rows:
        by_case.setdefault((r["world"], r["seed"]), {})[r["model"]] = r
    cases = [c for c in by_case.values() if {"ours", "ours:logistic", "ours:auto"} <= set(c)]
    if not cases:
        return
    decided = [c for c in cases if c["ours:auto"]["saturation_choice"]["decided_by"] == "loo"]

    def better(case: dict[str, dict], metric: str) -> str:
        hill, logistic = abs(case["ours"][metric]), abs(case["ours:logistic"][metric])
        return "hill" if hill <= logistic else "logistic"

    def right(group: list[dict[str, dict]], metric: str) -> int:
        kept = [c["ours:auto"]["saturation_choice"]["chosen"] for c in group]
        return sum(k == better(c, metric) for k, c in zip(kept, group, strict=True))

    print(
        f"\nfamily choice (auto): LOO decided on {len(decided)} of {len(cases)} world-seeds; "
        f"where it decided, it kept the family with the smaller share MAE on "
        f"{right(decided, 'share_mae_pts')} and the smaller |media bias| on "
        f"{right(decided, 'media_bias_pct')}; over all world-seeds (undecided keeps Hill): "
        f"{right(cases, 'share_mae_pts')} and {right(cases, 'media_bias_pct')} of {len(cases)}"
    )


def print_table(rows: list[dict]) -> None:
    header = (
        f"{'world':16s} {'seed':>4s} {'model':28s} {'share MAE':>9s} {'media bias':>10s} "
        f"{'cover90':>7s} {'ROAS err':>8s} {'sec':>6s} {'min ESS':>7s} {'gates':>5s}"
    )
    print(header)
    for r in rows:
        print(
            f"{r['world']:16s} {r['seed']:4d} {r['model']:28s} {r['share_mae_pts']:8.1f}p "
            f"{r['media_bias_pct']:+9.0f}% {r['coverage']:7.0%} {r['roas_error_pct']:7.0f}% "
            f"{r['seconds']:6.0f} {r['min_ess'] or 0:7.0f} {'pass' if r['gates'] else 'FAIL':>5s}"
            + _choice_note(r)
        )
    print("\noverall (mean over world x seed; coverage pooled over channels):")
    for model in sorted({r["model"] for r in rows}):
        mine = [r for r in rows if r["model"] == model]
        inside = sum(r["coverage"] * r["n_channels"] for r in mine)
        channels = sum(r["n_channels"] for r in mine)
        worst = max(mine, key=lambda r: abs(r["media_bias_pct"]))
        share_mae = np.mean([r["share_mae_pts"] for r in mine])
        print(
            f"  {model:28s} fits {len(mine):2d}  share MAE {share_mae:.1f}p"
            f"  |media bias| mean {np.mean([abs(r['media_bias_pct']) for r in mine]):.0f}% "
            f"(worst {worst['media_bias_pct']:+.0f}% {worst['world']})"
            f"  cover90 {inside / channels:.0%}"
            f"  ROAS err {np.mean([r['roas_error_pct'] for r in mine]):.0f}%"
            f"  sec {np.mean([r['seconds'] for r in mine]):.0f}"
            f"  gates {sum(r['gates'] for r in mine)}/{len(mine)}"
        )
        spread = [r for r in mine if "share_expected_mae_pts" in r]
        if spread:
            realised = np.mean([r["share_mae_pts"] for r in spread])
            expected = np.mean([r["share_expected_mae_pts"] for r in spread])
            inside = sum(r["share_coverage"] * r["n_channels"] for r in spread)
            print(
                f"  {'':28s} on the {len(spread)} fits with share draws: share MAE"
                f" realised {realised:.1f}p, expected by the posterior {expected:.1f}p"
                f" (ratio {realised / expected:.2f}), shares in their 90% HDI"
                f" {inside / sum(r['n_channels'] for r in spread):.0%}"
            )
    print_family_choice(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--worlds", default=",".join(WORLDS), help="comma-separated names")
    parser.add_argument("--seeds", default="1,2", help="comma-separated seeds")
    parser.add_argument("--models", default="ours,library", help="ours and/or library")
    parser.add_argument(
        "--variant",
        default="default",
        help=f"comma-separated, fitted in this order: {', '.join(sorted(VARIANTS))}",
    )
    parser.add_argument("--quick", action="store_true", help="1,000 draws, no retry")
    parser.add_argument("--out", type=Path, default=None, help="append JSON lines here")
    parser.add_argument("--report-only", action="store_true", help="print --out's table")
    parser.add_argument(
        "--flatness", metavar="WORLD:CHANNEL", help="prior mass of near-flat curves, no fit"
    )
    parser.add_argument(
        "--lift-tests",
        type=int,
        default=0,
        help="also fit every model calibrated with this many go-dark lift tests per world",
    )
    parser.add_argument(
        "--lift-se", type=float, default=0.1, help="a lift test's standard error / its lift"
    )
    parser.add_argument(
        "--calibrated-only",
        action="store_true",
        help="with --lift-tests, skip the uncalibrated fits (the same seed gives the same fit)",
    )
    parser.add_argument(
        "--library-reading",
        choices=["steady_state", "counterfactual"],
        default="steady_state",
        help="how the library reads the lift tests: its own add_lift_test_measurements "
        "(default) or our counterfactual term (an ablation)",
    )
    parser.add_argument(
        "--our-reading",
        choices=["counterfactual", "steady_state"],
        default="counterfactual",
        help="how our model reads the lift tests: the model's own counterfactual (default) or "
        "the library's add_lift_test_measurements (an ablation)",
    )
    parser.add_argument(
        "--lift-reading",
        action="store_true",
        help="steady-state reading / true lift of a test of every channel (seed 1), no fit",
    )
    args = parser.parse_args()
    if args.lift_reading:
        for name in args.worlds.split(","):
            world = make_world(name, 1)
            tests = world_lift_tests(world, len(world.channels), 0.0, 1)
            ratios = [f"{t['channel']} {steady_state_reading(world, t):.2f}" for t in tests]
            print(f"{name}: {', '.join(ratios)}")
        return
    if args.flatness:
        name, channel = args.flatness.split(":")
        for label, share in flat_prior_mass(make_world(name, 1), channel).items():
            print(f"{args.flatness} {label}: {share:.0%} of prior curves near-flat")
        return
    if args.report_only:
        rows = [json.loads(line) for line in args.out.read_text().splitlines() if line]
        print_table(rows)
        return
    variants = args.variant.split(",")
    unknown = sorted(set(variants) - set(VARIANTS))
    if unknown:
        parser.error(f"unknown variant(s) {unknown}; choose from {sorted(VARIANTS)}")
    warnings.simplefilter("ignore")
    # Import every step's code now: the steps import it lazily, and a long run should use one
    # version of the tree from start to end.
    steps = ("import_data", "validate_data", "fit_mmm", "validate_model", "decompose_contributions")
    for name in steps:
        step(name).compute_function()
    rows = []
    for name in args.worlds.split(","):
        for seed in (int(s) for s in args.seeds.split(",")):
            for row in run_one(
                name,
                seed,
                args.models.split(","),
                args.quick,
                variants,
                args.lift_tests,
                args.lift_se,
                args.calibrated_only and args.lift_tests > 0,
                args.library_reading,
                args.our_reading,
            ):
                rows.append(row)
                if args.out:
                    with args.out.open("a") as handle:
                        handle.write(json.dumps(row) + "\n")
                print(
                    f"{name} seed {seed} {row['model']}: share MAE {row['share_mae_pts']:.1f}p, "
                    f"media bias {row['media_bias_pct']:+.0f}%, cover {row['coverage']:.0%}, "
                    f"{row['seconds']:.0f}s",
                    flush=True,
                )
    print_table(rows)


if __name__ == "__main__":
    main()
