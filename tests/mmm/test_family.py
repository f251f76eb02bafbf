"""saturation='auto': both curve families fitted, PSIS-LOO decides, the kept one is what every
later step rebuilds.

The rule is checked on hand-made LOO figures (each branch, with controls that must not
decide). The real fit reuses the suite's shared Hill fit (same seed and sampler), so only the
logistic family is sampled; its LOO figures are checked against ArviZ's own comparison run
independently on the two stored posteriors.
"""

from __future__ import annotations

import json
import warnings

import pytest
from pydantic import ValidationError

from attribution_analysis.api import decompose_contributions, fit_mmm, validate_model
from attribution_analysis.contracts.mmm import FamilyCandidate, FitMMMParams, MMMConfig
from attribution_analysis.errors import ParameterError
from attribution_analysis.mmm.family import DEFAULT_FAMILY, decide
from attribution_analysis.mmm.loaded import open_fit
from attribution_analysis.workspace import Workspace
from tests.fitted_mmm import FITTED

AUTO = FITTED.model_copy(update={"config": MMMConfig(saturation="auto")})


def candidate(family: str, elpd: float, gates: bool = True) -> FamilyCandidate:
    return FamilyCandidate(
        saturation=family,
        elpd_loo=elpd,
        elpd_se=10.0,
        p_loo=12.0,
        max_pareto_k=0.3,
        stacking_weight=0.5,
        passes_gates=gates,
        media_total_mean=100.0,
        media_total_hdi_90=(80.0, 120.0),
        fit_key="k",
        model_path="p",
    )


@pytest.mark.parametrize(
    ("hill", "logistic", "se", "expected"),
    [
        (-100.0, -90.0, 2.0, ("logistic", "loo")),  # 10 > 4 and > 2 SE
        (-90.0, -100.0, 2.0, ("hill", "loo")),
        (-100.0, -97.0, 0.5, (DEFAULT_FAMILY, "undecided_default")),  # 3 < 4: small
        (-100.0, -90.0, 6.0, (DEFAULT_FAMILY, "undecided_default")),  # 10 < 2 x 6
    ],
)
def test_the_rule_keeps_a_family_only_on_a_clear_loo_margin(hill, logistic, se, expected):
    assert decide([candidate("hill", hill), candidate("logistic", logistic)], se) == expected


def test_a_family_that_fails_the_gates_loses_whatever_its_loo():
    pair = [candidate("hill", -50.0, gates=False), candidate("logistic", -100.0)]
    assert decide(pair, 1.0) == ("logistic", "gates")
    # Both failing: the gates do not decide, LOO does.
    both = [candidate("hill", -50.0, gates=False), candidate("logistic", -100.0, gates=False)]
    assert decide(both, 1.0) == ("hill", "loo")


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        ({"quick": "map"}, "quick='map'"),
        ({"method": "ridge"}, "method='ridge'"),
        (
            {
                "config": {
                    "saturation": "auto",
                    "priors": {"saturation_kappa": {"dist": "Gamma", "kwargs": {"alpha": 2}}},
                }
            },
            "saturation_kappa",
        ),
    ],
)
def test_auto_is_refused_where_it_cannot_compare_posteriors(fitted, change, needle):
    request = {**AUTO.model_dump(mode="json"), **change}
    with pytest.raises(ValidationError, match=needle):
        FitMMMParams.model_validate(request)
    # Parameters built without validation are refused by the step, and nothing is written.
    before = (fitted / "analysis" / "mmm_fit.json").read_bytes()
    update = {k: MMMConfig.model_validate(v) if k == "config" else v for k, v in change.items()}
    unchecked = AUTO.model_copy(update=update)
    with pytest.raises(ValidationError, match=needle):
        fit_mmm(Workspace.open(fitted), unchecked)
    assert (fitted / "analysis" / "mmm_fit.json").read_bytes() == before


def test_auto_fits_both_families_and_every_later_step_rebuilds_the_kept_one(fitted):
    import arviz_stats as azs
    import pymc as pm

    ws = Workspace.open(fitted)
    hill_path = json.loads((fitted / "analysis" / "mmm_fit.json").read_text())["result"][
        "model_path"
    ]
    answer = fit_mmm(ws, AUTO)
    choice = answer.saturation_choice
    assert choice is not None
    by_family = {c.saturation: c for c in choice.candidates}
    assert set(by_family) == {"hill", "logistic"}
    # The shared Hill fit was reused (same data, seed and sampler), not sampled again.
    assert by_family["hill"].model_path == hill_path
    assert (fitted / by_family["logistic"].model_path).exists()

    # The manifest records the kept family: every later step rebuilds that model.
    manifest = json.loads((fitted / "analysis" / "mmm_fit.json").read_text())
    assert manifest["params"]["config"]["saturation"] == choice.chosen
    assert manifest["result"]["saturation_choice"]["chosen"] == choice.chosen
    fit = open_fit(ws)
    kind = type(fit.mmm.saturation).__name__
    assert kind == {"hill": "HillSaturation", "logistic": "LogisticSaturation"}[choice.chosen]
    assert fit.tree["posterior"].equals(
        open_fit(ws).tree["posterior"]
    )  # the stored draws, read back
    assert manifest["result"]["model_path"] == by_family[choice.chosen].model_path
    validate_model(ws, backtest_periods=None, sensitivity_refit=False)
    contributions = decompose_contributions(ws, override_reason="test of the kept family")
    media = sum(c.total_contribution.mean for c in contributions.channels)
    assert media == pytest.approx(by_family[choice.chosen].media_total_mean, rel=0.05)

    # LOO figures against ArviZ's comparison, recomputed from the two stored posteriors.
    trees = {}
    for family, c in by_family.items():
        params = FITTED.model_copy(update={"config": MMMConfig(saturation=family)})
        from attribution_analysis.mmm.fit import prepare
        from attribution_analysis.mmm.store import load_tree

        _, mmm, _ = prepare(ws, params)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            trees[family] = pm.stats.compute_log_likelihood(
                load_tree(ws, c.model_path),
                model=mmm.model,
                var_names=[mmm.output_var],
                extend_inferencedata=True,
                progressbar=False,
            )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        table = azs.compare(trees, round_to="none")
    for family, c in by_family.items():
        assert c.elpd_loo == pytest.approx(table.loc[family, "elpd"], abs=1e-6)
    assert choice.elpd_difference == pytest.approx(
        by_family[choice.chosen].elpd_loo
        - by_family[{"hill": "logistic", "logistic": "hill"}[choice.chosen]].elpd_loo
    )
    assert decide(choice.candidates, choice.difference_se) == (choice.chosen, choice.decided_by)
    codes = {f.code for f in answer.findings}
    assert "saturation_family_chosen" in codes

    # Asked again: both fits come from the store, nothing is sampled, nothing rewritten.
    manifest_bytes = (fitted / "analysis" / "mmm_fit.json").read_bytes()
    again = fit_mmm(ws, AUTO)
    assert again.cached and again.sampling_seconds is None
    assert again.saturation_choice == choice
    assert (fitted / "analysis" / "mmm_fit.json").read_bytes() == manifest_bytes


@pytest.mark.parametrize("family", ["hill", "logistic"])
def test_the_vague_prior_refit_builds_for_either_family(fitted, family):
    """validate_model's sensitivity refit swaps in vague priors: for a logistic fit (which
    auto may keep) they must be the logistic curve's, not the Hill curve's."""
    from attribution_analysis.mmm.build import build_mmm
    from attribution_analysis.mmm.fit import prepare
    from attribution_analysis.mmm.sensitivity import VAGUE_PRIORS, VAGUE_SHAPE_PRIORS

    params = FITTED.model_copy(update={"config": MMMConfig(saturation=family)})
    data, _, _ = prepare(Workspace.open(fitted), params)
    vague = {**VAGUE_PRIORS, **VAGUE_SHAPE_PRIORS[family]}
    mmm = build_mmm(data, params.config.model_copy(update={"priors": vague}))
    assert set(VAGUE_SHAPE_PRIORS[family]) <= set(mmm.model.named_vars)
    # The other family's shape priors are refused by name: the check can fail.
    other = VAGUE_SHAPE_PRIORS["logistic" if family == "hill" else "hill"]
    with pytest.raises(ParameterError, match="unknown prior name"):
        build_mmm(data, params.config.model_copy(update={"priors": {**vague, **other}}))


def test_a_plain_fit_reuses_the_same_sampling_stored_without_the_ridge_fallback(fitted):
    """auto's fits (and the shared fit) are stored with fallback_to_ridge=false; a default
    request (fallback on) is answered by the same posterior when it passes the gates (the
    fallback would not have acted), and is sampled again otherwise."""
    from attribution_analysis.mmm.convergence import passes_gates

    manifest = json.loads((fitted / "analysis" / "mmm_fit.json").read_text())
    stored = manifest["result"]
    plain = fit_mmm(Workspace.open(fitted), FitMMMParams())
    if passes_gates(stored["convergence"]):
        assert plain.cached and plain.model_path == stored["model_path"]
        assert plain.fit_key != stored["fit_key"]  # its own key, the shared posterior
        assert open_fit(Workspace.open(fitted)).params.fallback_to_ridge
    else:  # the default request would have fallen back to the ridge model
        assert not plain.cached and plain.model_path != stored["model_path"]
