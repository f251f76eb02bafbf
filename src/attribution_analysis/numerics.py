"""Reproducible numerics for every PyTensor graph the package compiles (MMM, Bayes allocation).

PyTensor 3 compiles graphs with Numba, in fastmath mode by default, and caches each op's
compiled function on disk. With fastmath on, LLVM may reassociate floating-point sums
differently when a function is compiled fresh (inlined into its caller) than when it is loaded
from the cache, so the same data, model and seed gave different NUTS draws depending on the
state of the compile cache: NUTS trajectories amplify a last-bit difference into a different
chain. Measured on a 104-week x 3-channel fit (300 draws): cold and warm caches gave two
different posteriors, each reproducible; with fastmath off, cold, warm and in-process reuse
gave the same draws bit for bit, and sampling was no slower (28-33 s against 32-38 s at the
default 6,000 draws). ``tests/mmm/test_reproducibility.py`` pins this down.

One BLAS thread, too. The model's linear algebra works on matrices of a few hundred rows
(periods x channels) where a BLAS thread pool gains nothing, while OpenBLAS threads spin-wait
for work: with more busy processes than cores (a server running jobs, nutpie's chains, a CI
box) they burn the cores the fit needs. Measured on a 156-week x 3-channel quick MAP fit on a
2-core machine under load: 155 s with OpenBLAS's default pool (36 s of it inside SciPy's
L-BFGS-B routine, which calls BLAS), 47 s with one thread.

LLVM's optimisation level 2 instead of Numba's default 3, unless the user set ``NUMBA_OPT``.
The model's first compile is mostly Numba and LLVM; at level 2 it took 29.6-33.3 s against
33.7-34.7 s at level 3 (an independent world's 156 weeks x 4 channels, empty caches, four
runs each, alternated: 1-4 s less, within the run-to-run noise of a fit through the
server), sampling took as long, and the posterior was the same to the last digit: without
fastmath LLVM may not reorder floating-point arithmetic at any level, so the level changes
how fast the code is, not what it computes. ``tests/mmm/test_reproducibility.py`` fits with
level 3 beside the default and asserts the same draws.
"""

from __future__ import annotations

import os

FASTMATH = False
BLAS_THREADS = 1
LLVM_OPT_LEVEL = 2
_limits: list[object] = []  # the threadpoolctl limiter, kept alive for the process


def use_reproducible_numerics() -> None:
    """Turn Numba fastmath off for graphs compiled from here on, compile at
    ``LLVM_OPT_LEVEL`` unless ``NUMBA_OPT`` says otherwise, and limit BLAS to
    ``BLAS_THREADS`` threads (process-wide, idempotent).

    Call before compiling anything; functions compiled earlier in the process keep their
    mode. Cached fastmath and non-fastmath functions are stored under different keys.
    """
    import pytensor

    if pytensor.config.numba__fastmath != FASTMATH:
        pytensor.config.numba__fastmath = FASTMATH
    if "NUMBA_OPT" not in os.environ:
        # Read by Numba each time it builds LLVM's passes; it re-reads its environment only
        # when a NUMBA_ variable changes, which would restore the user's own choice.
        from numba.core import config

        if config.OPT != LLVM_OPT_LEVEL:
            config.OPT = config._OptLevel(LLVM_OPT_LEVEL)
    if not _limits:
        # NumPy and SciPy each bring their own OpenBLAS; a limit reaches only the libraries
        # loaded when it is set.
        import scipy.linalg  # noqa: F401
        from threadpoolctl import threadpool_limits

        _limits.append(threadpool_limits(limits=BLAS_THREADS, user_api="blas"))


def numerics_metadata() -> dict[str, object]:
    """What output metadata records about the compiled numerics."""
    from numba.core import config

    return {
        "numba_fastmath": FASTMATH,
        "blas_threads": BLAS_THREADS,
        # The level this process compiles at (0-3, or "max"); a function loaded from Numba's
        # cache keeps the level it was compiled at (the draws are the same either way).
        "llvm_opt_level": config.OPT._raw_value,
    }
