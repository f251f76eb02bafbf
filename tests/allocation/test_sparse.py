"""Threaded sparse products equal the single-call ones."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from attribution_analysis.allocation import sparse


def test_blocked_products_equal_the_plain_ones(monkeypatch):
    monkeypatch.setattr(sparse, "PARALLEL_MIN_NONZEROS", 0)
    rng = np.random.default_rng(0)
    matrix = sp.random(500, 80, density=0.05, random_state=1, format="csr")
    blocked = sparse.BlockedMatrix(matrix, threads=3)
    assert len(blocked.blocks) == 3
    x, r = rng.random(80), rng.random(500)
    assert np.allclose(blocked.matvec(x), matrix @ x, rtol=1e-14)
    assert np.allclose(blocked.rmatvec(r), matrix.T @ r, rtol=1e-14)


def test_small_matrices_stay_on_one_thread():
    matrix = sp.random(50, 10, density=0.2, random_state=2, format="csr")
    assert sparse.BlockedMatrix(matrix, threads=4).blocks == []
