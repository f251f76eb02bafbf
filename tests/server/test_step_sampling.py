"""Which calls sample is the step's knowledge (``StepSpec.sampling``); the server only
compares what a step says it will sample with its limits."""

from __future__ import annotations

import pytest

from attribution_analysis.contracts.mmm import SamplerSettings
from attribution_analysis.errors import ParameterError
from attribution_analysis.server import ServerConfig
from attribution_analysis.steps import STEPS, Sampling, step


@pytest.mark.parametrize(
    ("name", "given", "expected"),
    [
        ("fit_mmm", {"sampler": {"draws": 700, "chains": 3}}, (700, 3, 1400)),
        ("fit_mmm", {"sampler": {"draws": 700, "chains": 3}, "retry": False}, (700, 3, None)),
        ("fit_mmm", {"sampler": {"draws": 700}, "quick": "map"}, None),
        ("fit_mmm", {"sampler": {"draws": 700}, "method": "ridge"}, None),
        ("allocate", {"method": "bayes", "draws": 300, "chains": 4}, (300, 4, None)),
        ("allocate", {"method": "em", "draws": 300, "chains": 4}, None),
        # Posterior draws thinned from the stored fit: nothing is sampled.
        ("optimize_budget", {"total_budget": 1000.0, "draws": 900}, None),
    ],
)
def test_each_step_says_what_a_call_samples(name, given, expected):
    spec = step(name)
    assert spec.sampling(spec.params.model_validate(given)) == expected


def test_steps_that_never_sample_say_so():
    samplers = {s.name for s in STEPS if s.samples is not None}
    assert samplers == {"fit_mmm", "fit_many", "allocate"}


def test_limits_apply_to_what_is_sampled_only(tmp_path):
    config = ServerConfig.at(tmp_path, max_draws=500, max_chains=2)
    config.check_limits(None, tmp_path)  # a call that samples nothing is never refused
    config.check_limits(Sampling(500, 2), tmp_path)
    with pytest.raises(ParameterError, match="600 draws per chain exceeds"):
        config.check_limits(Sampling(600, 2), tmp_path)
    with pytest.raises(ParameterError, match="3 chains exceeds"):
        config.check_limits(Sampling(100, 3), tmp_path)


def test_the_retry_of_a_failing_fit_counts_against_the_draws_limit(tmp_path):
    # A fit that fails its gates samples again with twice the draws (SamplerSettings.
    # for_retry): 300 asked, 600 possible, over a limit of 500.
    config = ServerConfig.at(tmp_path, max_draws=500)
    spec = step("fit_mmm")
    asked = spec.params.model_validate({"sampler": {"draws": 300}})
    with pytest.raises(ParameterError, match=r"retry .* would sample 600") as caught:
        config.check_limits(spec.sampling(asked), tmp_path)
    assert "at most 250 draws" in caught.value.fix and "retry=false" in caught.value.fix
    no_retry = asked.model_copy(update={"retry": False})
    config.check_limits(spec.sampling(no_retry), tmp_path)
    config.check_limits(
        spec.sampling(asked.model_copy(update={"sampler": SamplerSettings(draws=250)})), tmp_path
    )
