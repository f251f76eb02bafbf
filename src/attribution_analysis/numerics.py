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
"""

from __future__ import annotations

FASTMATH = False


def use_reproducible_numerics() -> None:
    """Turn Numba fastmath off for graphs compiled from here on (process-wide, idempotent).

    Call before compiling anything; functions compiled earlier in the process keep their
    mode. Cached fastmath and non-fastmath functions are stored under different keys.
    """
    import pytensor

    if pytensor.config.numba__fastmath != FASTMATH:
        pytensor.config.numba__fastmath = FASTMATH


def numerics_metadata() -> dict[str, object]:
    """What output metadata records about the compiled numerics."""
    return {"numba_fastmath": FASTMATH}
