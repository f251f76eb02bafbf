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
"""

from __future__ import annotations

FASTMATH = False
BLAS_THREADS = 1
_limits: list[object] = []  # the threadpoolctl limiter, kept alive for the process


def use_reproducible_numerics() -> None:
    """Turn Numba fastmath off for graphs compiled from here on and limit BLAS to
    ``BLAS_THREADS`` threads (process-wide, idempotent).

    Call before compiling anything; functions compiled earlier in the process keep their
    mode. Cached fastmath and non-fastmath functions are stored under different keys.
    """
    import pytensor

    if pytensor.config.numba__fastmath != FASTMATH:
        pytensor.config.numba__fastmath = FASTMATH
    if not _limits:
        # NumPy and SciPy each bring their own OpenBLAS; a limit reaches only the libraries
        # loaded when it is set.
        import scipy.linalg  # noqa: F401
        from threadpoolctl import threadpool_limits

        _limits.append(threadpool_limits(limits=BLAS_THREADS, user_api="blas"))


def numerics_metadata() -> dict[str, object]:
    """What output metadata records about the compiled numerics."""
    return {"numba_fastmath": FASTMATH, "blas_threads": BLAS_THREADS}
