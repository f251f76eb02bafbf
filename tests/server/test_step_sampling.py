"""Which calls sample is the step's knowledge (``StepSpec.sampling``); the server only
compares what a step says it will sample with its limits."""

from __future__ import annotations

import pytest

from attribution_analysis.errors import ParameterError
from attribution_analysis.server import ServerConfig
from attribution_analysis.steps import STEPS, step


@pytest.mark.parametrize(
    ("name", "given", "expected"),
    [
        ("fit_mmm", {"sampler": {"draws": 700, "chains": 3}}, (700, 3)),
        ("fit_mmm", {"sampler": {"draws": 700}, "quick": "map"}, None),
        ("fit_mmm", {"sampler": {"draws": 700}, "method": "ridge"}, None),
        ("allocate", {"method": "bayes", "draws": 300, "chains": 4}, (300, 4)),
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
    assert samplers == {"fit_mmm", "allocate"}


def test_limits_apply_to_what_is_sampled_only(tmp_path):
    config = ServerConfig.at(tmp_path, max_draws=500, max_chains=2)
    config.check_limits(None, tmp_path)  # a call that samples nothing is never refused
    config.check_limits((500, 2), tmp_path)
    with pytest.raises(ParameterError, match="600 draws per chain exceeds"):
        config.check_limits((600, 2), tmp_path)
    with pytest.raises(ParameterError, match="3 chains exceeds"):
        config.check_limits((100, 3), tmp_path)
