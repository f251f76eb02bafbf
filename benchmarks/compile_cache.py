"""What a first fit's compile costs, by the state of the on-disk compile caches.

    python benchmarks/compile_cache.py [--world logistic_short] [--other hill_season]

Each line is a fresh Python process that builds the default model of an independent world
(``benchmarks/worlds.py``, seed 1, imported as ``benchmarks/mmm_accuracy.py`` imports it)
and times, alone, the two compiles a fit makes: the sampler's model
(``nutpie.compile_pymc_model``, the data left as inputs, as ``fit_mmm`` compiles it) and the
contributions' function (``posterior_contributions.contribution_function``, which Numba
compiles on its first call). The processes share one PyTensor/Numba cache folder, empty at
the start, in this order:

1. ``--world`` from empty caches (a first fit on a new machine);
2. ``--world`` again (the same model compiled before: what ``mmm.fit.precompile`` leaves
   for the fit that follows it, had it run in another process);

and, in a second empty folder,

3. ``--other`` from empty caches, then
4. ``--world`` after it (a first fit of a new structure on a machine that fitted another).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path


def _measure(world: str) -> dict[str, float]:
    warnings.simplefilter("ignore")
    import numpy as np
    import nutpie
    from mmm_accuracy import import_world  # benchmarks/, this script's folder
    from worlds import make_world

    from attribution_analysis.contracts.mmm import FitMMMParams
    from attribution_analysis.mmm.fit import prepare
    from attribution_analysis.mmm.intercept import sampled_model
    from attribution_analysis.mmm.posterior_contributions import contribution_function
    from attribution_analysis.mmm.sampling import free_variable_names
    from attribution_analysis.numerics import use_reproducible_numerics
    from attribution_analysis.workspace import Workspace

    use_reproducible_numerics()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "ws"
        import_world(make_world(world, 1), root)
        _, mmm, _ = prepare(Workspace.open(root), FitMMMParams())
    model = mmm.model
    start = time.perf_counter()
    nutpie.compile_pymc_model(
        sampled_model(model), freeze_model=False, var_names=free_variable_names(model)
    )
    sampler = time.perf_counter() - start
    start = time.perf_counter()
    function, _ = contribution_function(model)
    shapes = model.eval_rv_shapes()
    function({v.name: np.full(shapes[v.name], 0.5, dtype=v.dtype) for v in model.free_RVs})
    return {"sampler_model_s": sampler, "contributions_s": time.perf_counter() - start}


def _run(world: str, cache: str) -> dict[str, float]:
    from mmm_fit import _compile_env  # benchmarks/: the caches mmm_fit.py's fits use

    out = subprocess.run(
        [sys.executable, __file__, "--measure", world],
        capture_output=True,
        text=True,
        env=_compile_env(cache),
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--world", default="logistic_short")
    parser.add_argument("--other", default="hill_season")
    parser.add_argument("--measure", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(_measure(args.measure)))
        return
    print(f"{'caches':58s} {'sampler model':>14s} {'contributions':>14s}")
    with tempfile.TemporaryDirectory() as first, tempfile.TemporaryDirectory() as second:
        runs = [
            (f"{args.world}, empty caches", args.world, first),
            (f"{args.world}, after the same model", args.world, first),
            (f"{args.other}, empty caches", args.other, second),
            (f"{args.world}, after {args.other}'s model", args.world, second),
        ]
        for label, world, cache in runs:
            row = _run(world, cache)
            print(
                f"{label:58s} {row['sampler_model_s']:13.1f}s {row['contributions_s']:13.2f}s",
                flush=True,
            )


if __name__ == "__main__":
    main()
