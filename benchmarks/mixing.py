"""What mixes slowly, and two changes of variables that might help: a probe, not the product.

    python benchmarks/mixing.py --world logistic_short --seed 1 [--draws 2000]

On an independent world (``benchmarks/worlds.py``, imported as ``mmm_accuracy.py`` imports
it), the project's default model is sampled three ways with the same nutpie settings
(2 chains, 1,000 warm-up, ``--draws`` kept, target acceptance 0.97, low-rank mass matrix):

- ``default``: as ``fit_mmm`` built it before the level parametrisation became its default
  (``intercept_sampled_as='intercept'``: the coefficient sampled, the ROI prior a potential);
- ``roi``: Meridian's parametrisation, each channel's return on spend sampled
  (log ROI ~ Normal(0.2, 0.9), the ROI prior itself) and the coefficient derived from it;
  the model's own prior on the coefficient is dropped, so this is a different model;
- ``level``: the intercept replaced by ``level - mean media contribution``, ``level``
  sampled under the intercept's own prior (the model's ``intercept``, Normal(0, 2) on the
  scaled target by default). The map (intercept, coefficients) -> (level, coefficients) is
  a shift with unit Jacobian, so the likelihood is the same and only the prior moved: from
  the intercept to the mean fitted level, both wide against a target scaled to about 1.
  Whether the media total moves with it is what the last column shows.

Printed per way: seconds of sampling, divergences, bulk ESS per draw of each channel's
coefficient (the worst first), and the posterior mean and 90% interval of the media total
against the world's truth.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from mmm_accuracy import import_world
from worlds import make_world


def _media_total(model, idata) -> np.ndarray:
    """Per-draw media total over the window, original units."""
    import pymc as pm

    with model:
        values = pm.compute_deterministics(
            idata.posterior, var_names=["channel_contribution"], progressbar=False
        )["channel_contribution"]
    scale = float(np.asarray(model["target_scale"].values.eval()))
    return (values.sum(["date", "channel"]) * scale).values.ravel()


def sample(label: str, model, draws: int, seed: int, truth: float) -> None:
    import arviz_stats as azs
    import pymc as pm

    start = time.perf_counter()
    idata = pm.sample(
        model=model,
        nuts_sampler="nutpie",
        draws=draws,
        tune=1000,
        chains=2,
        target_accept=0.97,
        random_seed=seed,
        progressbar=False,
        nuts_sampler_kwargs={"low_rank_modified_mass_matrix": True},
    )
    seconds = time.perf_counter() - start
    post = idata.posterior
    n = post.sizes["chain"] * post.sizes["draw"]
    beta = post["saturation_beta"]
    per_draw = {
        str(c): float(azs.ess(beta.sel(channel=c).values, method="bulk")) / n
        for c in beta["channel"].values
    }
    order = sorted(per_draw, key=per_draw.get)
    media = _media_total(model, idata)
    low, high = np.quantile(media, [0.05, 0.95])
    print(
        f"{label:8s} {seconds:6.1f} s  div {int(idata.sample_stats['diverging'].sum()):3d}  "
        f"ESS/draw {', '.join(f'{c} {per_draw[c]:.3f}' for c in order)}  "
        f"media {media.mean() / truth - 1:+.1%} [{low / truth - 1:+.1%}, {high / truth - 1:+.1%}]",
        flush=True,
    )


def roi_model(ws, data_model):
    """``default`` without its ROI potential, the coefficient derived from a sampled ROI."""
    import pymc as pm
    import pytensor.tensor as pt
    import pytensor.xtensor as ptx
    from pytensor.graph.replace import graph_replace

    data, mmm = data_model
    model = mmm.model
    channels = list(model.coords["channel"])
    beta = model["saturation_beta"]
    contribution = model["channel_contribution"]
    dims = list(model.named_vars_to_dims["channel_contribution"])
    ones = ptx.as_xtensor(pt.ones(len(channels)), dims=("channel",))
    per_unit = graph_replace(contribution, {beta: ones}, strict=False).values.sum(
        axis=dims.index("date")
    )
    spend = data.X[channels].to_numpy(dtype=float).sum(axis=0)
    with model:
        log_roi = pm.Normal("log_roi", 0.2, 0.9, shape=len(channels))
        derived = pt.exp(log_roi) * spend / (model["target_scale"].values * per_unit)
    return pm.do(model, {"saturation_beta": ptx.as_xtensor(derived, dims=("channel",))})


def level_model(mmm):
    """``default`` with the intercept derived from a sampled mean level."""
    import pymc as pm
    import pytensor.xtensor as ptx

    model = mmm.model
    contribution = model["channel_contribution"]
    dims = list(model.named_vars_to_dims["channel_contribution"])
    if "geo" in dims:
        raise SystemExit("the probe handles national models only")
    media_mean = contribution.values.sum(axis=dims.index("channel")).mean()
    prior = mmm.model_config["intercept"]
    if prior.distribution != "Normal" or prior.parameters.get("mu", 0) != 0:
        raise SystemExit(f"the probe expects a Normal(0, s) intercept prior, not {prior}")
    with model:
        # The intercept's prior, moved to the level. (Kept on the derived intercept as a
        # potential, the sampler loses the coefficients' gradients in this PyMC release.)
        level = pm.Normal("level", 0.0, prior.parameters["sigma"])
    return pm.do(model, {"intercept_contribution": ptx.as_xtensor(level - media_mean, dims=())})


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--world", default="logistic_short")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--draws", type=int, default=2000)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    from attribution_analysis.contracts.mmm import FitMMMParams, MMMConfig
    from attribution_analysis.mmm.fit import prepare

    world = make_world(args.world, args.seed)
    truth = float(sum(world.true_contribution.values()))
    ws = import_world(world, Path(tempfile.mkdtemp()) / "ws")
    print(f"{args.world} seed {args.seed}: {args.draws} draws x 2 chains each")
    # The model as PyMC-Marketing parametrises it (the earlier default): fit_mmm's default
    # now samples the level itself (MMMConfig.intercept_sampled_as), which this probe found.
    plain = MMMConfig(intercept_sampled_as="intercept")
    data, mmm, _ = prepare(ws, FitMMMParams(config=plain))
    sample("default", mmm.model, args.draws, args.seed, truth)
    no_roi = plain.model_copy(update={"roi_prior": None})
    data, mmm, _ = prepare(ws, FitMMMParams(config=no_roi))
    sample("roi", roi_model(ws, (data, mmm)), args.draws, args.seed, truth)
    data, mmm, _ = prepare(ws, FitMMMParams(config=plain))
    sample("level", level_model(mmm), args.draws, args.seed, truth)


if __name__ == "__main__":
    main()
