"""The two sparse products of an EM pass, split over threads by blocks of groups.

scipy's compiled CSR/CSC kernels release the GIL, so contiguous row blocks of the exposure
matrix can be multiplied concurrently: ``W @ x`` concatenates the blocks' results and
``W.T @ r`` adds their partial sums (in a fixed order, so results do not depend on timing).
The blocks are views on the one CSR matrix (no copy of the long table). Below
``PARALLEL_MIN_NONZEROS`` a single call is faster than dispatching to threads.
"""

from __future__ import annotations

import itertools
import os
from concurrent.futures import ThreadPoolExecutor
from functools import cache

import numpy as np
import scipy.sparse as sp

PARALLEL_MIN_NONZEROS = 2_000_000
MAX_THREADS = 8


@cache
def _executor(threads: int) -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=threads, thread_name_prefix="allocation")


def default_threads() -> int:
    return max(1, min(os.cpu_count() or 1, MAX_THREADS))


class BlockedMatrix:
    """``W @ x`` and ``W.T @ r`` for a CSR matrix, by row blocks on a thread pool."""

    def __init__(self, matrix: sp.csr_matrix, threads: int | None = None) -> None:
        self.matrix = matrix
        threads = default_threads() if threads is None else threads
        if matrix.nnz < PARALLEL_MIN_NONZEROS or threads <= 1:
            self.blocks: list[tuple[int, int, sp.csr_matrix]] = []
            return
        # Cut at row boundaries so that every block holds about the same nonzeros.
        targets = np.linspace(0, matrix.nnz, threads + 1)[1:-1]
        cuts = np.unique(np.r_[0, np.searchsorted(matrix.indptr, targets), matrix.shape[0]])
        self.blocks = []
        for start, stop in itertools.pairwise(cuts):
            lo, hi = matrix.indptr[start], matrix.indptr[stop]
            block = sp.csr_matrix(
                (
                    matrix.data[lo:hi],
                    matrix.indices[lo:hi],
                    matrix.indptr[start : stop + 1] - lo,
                ),
                shape=(stop - start, matrix.shape[1]),
                copy=False,
            )
            self.blocks.append((int(start), int(stop), block))
        self.pool = _executor(len(self.blocks))

    def matvec(self, x: np.ndarray) -> np.ndarray:
        if not self.blocks:
            return self.matrix @ x
        parts = self.pool.map(lambda item: item[2] @ x, self.blocks)
        return np.concatenate(list(parts))

    def rmatvec(self, r: np.ndarray) -> np.ndarray:
        if not self.blocks:
            return self.matrix.T @ r
        parts = list(self.pool.map(lambda item: item[2].T @ r[item[0] : item[1]], self.blocks))
        total = parts[0].copy()
        for part in parts[1:]:
            total += part
        return total
