"""One light Dask cluster for the scale tests: threads in this process (no worker processes
to start on a 2-core machine), closed at the end of the session."""

from __future__ import annotations

import pytest

pytest.importorskip("dask", reason="the [scale] extra (dask, distributed) is not installed")
pytest.importorskip("distributed", reason="the [scale] extra (distributed) is not installed")
pytest.importorskip("pyarrow", reason="the [scale] extra (pyarrow) is not installed")


@pytest.fixture(scope="session")
def client():
    from attribution_analysis.cluster import dask_client

    with dask_client(None, n_workers=1, threads_per_worker=2, processes=False) as connected:
        yield connected
