"""The allocate and attribute_paths steps on partitioned inputs: the engine switch is
stated, both engines give the same answer, and a bad partition leaves nothing written."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from attribution_analysis.allocation.em import fit_em
from attribution_analysis.allocation.problem import build_problem
from attribution_analysis.api import allocate, attribute_paths
from attribution_analysis.contracts.allocation import AllocateParams
from attribution_analysis.contracts.paths import AttributePathsParams
from attribution_analysis.errors import AttributionError
from attribution_analysis.workspace import Workspace
from tests.scale.test_allocation_dask import _world
from tests.scale.test_journeys_dask import _by_week, _pandas_count, _touches

SAME = 1e-9


def _brick_workspace(tmp_path) -> tuple[Workspace, pd.DataFrame, pd.DataFrame]:
    pairs, totals = _world(8, "poisson")
    pairs = pairs.rename(columns={"group": "brick_id", "entity": "hcp_id"})
    totals = totals.rename(columns={"group": "brick_id", "total": "sales"})
    ws = Workspace.create(tmp_path / "ws")
    (ws.root / "raw" / "pairs").mkdir(parents=True)
    totals.to_csv(ws.root / "raw" / "brick_sales.csv", index=False)
    for p, part in pairs.groupby(pairs["brick_id"].str[1:].astype(int) % 3):
        part.to_parquet(ws.root / "raw" / "pairs" / f"part-{p}.parquet", index=False)
    return ws, pairs, totals


def test_allocate_on_parquet_pairs_states_the_engine_and_both_engines_agree(client, tmp_path):
    ws, pairs, totals = _brick_workspace(tmp_path)
    common = {"pairs_parquet": "raw/pairs", "pooling": "none", "bootstrap": 0}
    address = client.scheduler.address
    on_dask = allocate(ws, AllocateParams(**common, dask_min_rows=1, dask_scheduler=address))
    in_memory = allocate(ws, AllocateParams(**common))
    engines = [
        next(f for f in r.findings if f.code == "allocation_engine").message
        for r in (on_dask, in_memory)
    ]
    assert "dask engine" in engines[0] and "memory engine" in engines[1]
    # The independent implementation: em.fit_em on the whole table.
    problem = build_problem(
        totals.rename(columns={"brick_id": "group", "sales": "total"}),
        pairs.rename(columns={"brick_id": "group", "hcp_id": "entity"}),
    )
    truth = fit_em(problem, family="poisson", pooling="none")
    credit = dict(
        zip(
            problem.entity_labels,
            np.bincount(problem.entity, truth.allocated, problem.n_entities),
            strict=True,
        )
    )
    mass = sum(credit.values())
    for report in (on_dask, in_memory):
        got = {e.entity: e.total_allocated for e in report.entities}
        assert got.keys() == credit.keys()
        assert max(abs(got[k] - credit[k]) for k in credit) <= SAME * mass
        assert report.mass_conservation_max_rel_error <= SAME
        assert report.outputs == ["analysis/allocation_summary.json"]


def test_allocate_with_a_broken_partition_writes_nothing(client, tmp_path):
    ws, _, _ = _brick_workspace(tmp_path)
    broken = ws.root / "raw" / "pairs" / "part-1.parquet"
    pd.read_parquet(broken).rename(columns={"exposure": "visits"}).to_parquet(broken)
    params = AllocateParams(
        pairs_parquet="raw/pairs",
        pooling="none",
        dask_min_rows=1,
        dask_scheduler=client.scheduler.address,
    )
    with pytest.raises(AttributionError, match=r"part-1\.parquet"):
        allocate(ws, params)
    assert not (ws.root / "analysis" / "allocation_summary.json").exists()


def test_allocate_on_parquet_pairs_refuses_what_it_cannot_fit(tmp_path):
    ws, _, _ = _brick_workspace(tmp_path)
    with pytest.raises(AttributionError, match="pooling"):
        allocate(ws, AllocateParams(pairs_parquet="raw/pairs"))  # default pooling='channel'


def test_attribute_paths_on_journey_partitions_counts_like_pandas(client, tmp_path):
    touches = _touches(21, n_journeys=300).drop(columns="conversion_value")
    ws = Workspace.create(tmp_path / "ws")
    (ws.root / "raw").mkdir(exist_ok=True)
    _by_week(touches, ws.root / "raw" / "journeys", "parquet")
    expected = _pandas_count(touches.assign(conversion_value=0.0))
    report = attribute_paths(
        ws,
        AttributePathsParams(
            method="markov",
            journeys_partitions="raw/journeys",
            dask_min_rows=1,
            dask_scheduler=client.scheduler.address,
            bootstrap_replicates=0,
        ),
    )
    assert report.input.n_distinct_paths == len(expected)
    assert report.input.n_journeys == len(touches["journey_id"].unique())
    assert report.input.total_conversions == expected["conversions"].sum()
    assert any(f.code == "path_count_engine" and "dask" in f.message for f in report.findings)
