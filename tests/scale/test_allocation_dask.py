"""The Dask allocation EM against the in-memory engine (the independent implementation):
same rates, log-likelihood, passes and credits on a small multi-partition table; and its
refusals: a partition of another schema, a missing partition, a group split across
partitions, an unreachable scheduler, a written partition that does not conserve mass."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from attribution_analysis.allocation.distributed import (
    fit_em_dask,
    verify_allocation,
)
from attribution_analysis.allocation.em import fit_em
from attribution_analysis.allocation.problem import build_problem
from attribution_analysis.cluster import choose_engine, dask_client
from attribution_analysis.errors import (
    DataValidationError,
    MissingInputError,
    ParameterError,
)

SAME = 1e-9  # the bar: identical to the in-memory engine up to rounding
N_GROUPS, N_ENTITIES, N_PARTITIONS = 200, 20, 3


def _world(seed: int, family: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Groups touching 1-3 entities each (some alone, so EM settles in ~30 passes: each pass
    is a scheduler round trip), true rates spread 10x, totals Gamma around
    sum rate * exposure (CV 22%); every 17th total is 0."""
    rng = np.random.default_rng(seed)
    rate = np.exp(rng.normal(0.0, 0.8, N_ENTITIES))
    rows = []
    totals = []
    for b in range(N_GROUPS):
        members = rng.choice(N_ENTITIES, size=rng.integers(1, 4), replace=False)
        exposure = rng.gamma(2.0, 5.0, size=len(members))
        mean = float(rate[members] @ exposure)
        total = rng.gamma(20.0, mean / 20.0)
        totals.append((f"g{b:04d}", total if b % 17 else 0.0))
        rows += [(f"g{b:04d}", f"e{h:03d}", w) for h, w in zip(members, exposure, strict=True)]
    pairs = pd.DataFrame(rows, columns=["group", "entity", "exposure"])
    return pairs, pd.DataFrame(totals, columns=["group", "total"])


def _write(pairs: pd.DataFrame, folder) -> list[str]:
    """One Parquet file per partition, each group whole in one file."""
    folder.mkdir(parents=True, exist_ok=True)
    part = pairs["group"].astype(str).str.lstrip("g").astype(int) % N_PARTITIONS
    files = []
    for p in range(N_PARTITIONS):
        name = folder / f"part-{p}.parquet"
        pairs[part == p].to_parquet(name, index=False)
        files.append(str(name))
    return files


def _in_memory(pairs: pd.DataFrame, totals: pd.DataFrame, family: str, tol: float):
    problem = build_problem(totals, pairs, entities=sorted(pairs["entity"].unique()))
    return problem, fit_em(problem, family=family, pooling="none", tol=tol)


# A tight tolerance makes equality meaningful (both runs pass through the same iterates);
# the Gamma fit crawls along a flat ridge, so it stops at the step's default instead. One
# case reads the files on every pass (out of core), the other caches them on the worker.
@pytest.mark.parametrize(
    ("family", "tol", "cache"), [("poisson", 1e-10, False), ("gamma", 1e-8, True)]
)
def test_dask_em_equals_the_in_memory_engine_and_conserves_mass_per_partition(
    client, tmp_path, family, tol, cache
):
    pairs, totals = _world(7, family)
    if cache:  # integer group ids, rows group by group: the engine's fast coding path
        pairs["group"] = pairs["group"].str[1:].astype(np.int64)
        totals["group"] = totals["group"].str[1:].astype(np.int64)
    files = _write(pairs, tmp_path / "pairs")
    problem, memory = _in_memory(pairs, totals, family, tol)
    fit = fit_em_dask(
        tmp_path / "pairs",
        totals,
        client,
        family=family,
        tol=tol,
        output=tmp_path / "out",
        cache=cache,
    )
    assert list(fit.entity_labels) == list(problem.entity_labels)
    # Rates heading to a zero maximum (1e-13 here; EM approaches them sublinearly and the
    # stopping rule weighs rates by exposure) agree on the rates' scale, not relatively.
    np.testing.assert_allclose(fit.rate, memory.rate, rtol=SAME, atol=SAME * np.max(memory.rate))
    assert fit.loglik == pytest.approx(memory.loglik, rel=SAME)
    # The same iterates up to the last cycles: near the optimum SQUAREM's safeguard compares
    # objectives that differ by rounding (summed in another order), so it may accept or
    # refuse one extrapolation differently and stop a pass or a cycle apart.
    assert fit.converged and memory.converged
    assert abs(fit.iterations - memory.iterations) <= max(4, memory.iterations // 5)
    shared = min(len(fit.trace), len(memory.trace)) // 2
    np.testing.assert_allclose(fit.trace[:shared], memory.trace[:shared], rtol=SAME)
    credit = np.bincount(problem.entity, memory.allocated, problem.n_entities)
    # Credits to 1e-9 of the mass allocated: the Gamma fit ends on a flat ridge (182 passes
    # here), where rounding in another summation order moves single credits by ~2e-9.
    mass = float(credit.sum())
    np.testing.assert_allclose(fit.entity_credit, credit, rtol=0, atol=SAME * mass)
    # Every partition conserves its groups' totals, and the written rows equal the split.
    assert len(fit.partition_mass_error) == len(files) and fit.mass_error <= SAME
    written = pd.read_parquet(tmp_path / "out").astype({"group": str})
    written = written.sort_values(["group", "entity"])
    expected = pd.DataFrame(
        {
            "group": problem.group_labels[problem.group].astype(str),
            "entity": problem.entity_labels[problem.entity],
            "allocated": memory.allocated,
        }
    ).sort_values(["group", "entity"])
    np.testing.assert_allclose(
        written["allocated"], expected["allocated"], rtol=0, atol=SAME * mass
    )
    # Negative control of the per-partition mass check: the written output passes it; with
    # one credit of one partition changed by 1%, that partition (and only it) is named.
    series = totals.set_index("group")["total"]
    assert verify_allocation(tmp_path / "out", series) == []
    victim = sorted((tmp_path / "out").glob("*.parquet"))[1]
    frame = pd.read_parquet(victim)
    frame.loc[frame.index[5], "allocated"] *= 1.01
    frame.to_parquet(victim, index=False)
    assert [name for name, _ in verify_allocation(tmp_path / "out", series)] == [str(victim)]


def test_a_partition_with_another_schema_is_named(client, tmp_path):
    pairs, totals = _world(1, "poisson")
    files = _write(pairs, tmp_path / "pairs")
    odd = pd.read_parquet(files[1]).rename(columns={"exposure": "visits"})
    odd.to_parquet(files[1], index=False)
    with pytest.raises(DataValidationError) as caught:
        fit_em_dask(tmp_path / "pairs", totals, client)
    assert caught.value.file == files[1] and caught.value.column == "exposure"
    # Same name, another type: also named.
    _write(pairs, tmp_path / "pairs")
    typed = pd.read_parquet(files[2]).astype({"exposure": str})
    typed.to_parquet(files[2], index=False)
    with pytest.raises(
        DataValidationError, match=r"column 'exposure' is (large_)?string"
    ) as caught:
        fit_em_dask(tmp_path / "pairs", totals, client)
    assert caught.value.file == files[2]


def test_a_missing_partition_is_named(client, tmp_path):
    pairs, totals = _world(2, "poisson")
    files = _write(pairs, tmp_path / "pairs")
    gone = files.pop(2)
    (tmp_path / "pairs" / "part-2.parquet").unlink()
    with pytest.raises(MissingInputError) as caught:
        fit_em_dask([*files, gone], totals, client, output=tmp_path / "out")
    assert caught.value.file == gone and "missing" in str(caught.value)
    assert not (tmp_path / "out").exists()


def test_a_partition_that_vanishes_mid_run_is_named_and_nothing_is_written(client, tmp_path):
    """The partition disappears after the checks (at the first EM pass): the error names it
    and neither the output nor its staging folder is left behind."""
    pairs, totals = _world(4, "poisson")
    files = _write(pairs, tmp_path / "pairs")

    def remove(passes: int) -> None:
        if passes == 1:
            (tmp_path / "pairs" / "part-1.parquet").unlink()

    with pytest.raises(MissingInputError) as caught:
        fit_em_dask(files, totals, client, output=tmp_path / "out", on_pass=remove)
    assert caught.value.file == files[1]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pairs"]


def test_a_group_split_across_partitions_is_refused(client, tmp_path):
    pairs, totals = _world(5, "poisson")
    files = _write(pairs, tmp_path / "pairs")
    first = pd.read_parquet(files[0])
    moved = first[first["group"] == first["group"].iloc[0]].iloc[:1]
    pd.concat([pd.read_parquet(files[1]), moved]).to_parquet(files[1], index=False)
    with pytest.raises(DataValidationError, match="must sit in one partition") as caught:
        fit_em_dask(files, totals, client)
    assert caught.value.file in files[:2]


def test_a_scheduler_that_dies_mid_run_is_a_clear_error_and_nothing_is_written(tmp_path):
    """The cluster goes away after the second EM pass (its own cluster, not the shared one)."""
    from distributed import Client, LocalCluster

    pairs, totals = _world(9, "poisson")
    files = _write(pairs, tmp_path / "pairs")
    cluster = LocalCluster(
        n_workers=1, threads_per_worker=1, processes=False, dashboard_address=":0"
    )
    client = Client(cluster)

    def die(passes: int) -> None:
        if passes == 2:
            cluster.close()

    try:
        with pytest.raises(ParameterError, match="failed during an EM pass") as caught:
            fit_em_dask(
                files, totals, client, output=tmp_path / "out", on_pass=die, scheduler="tcp://x:1"
            )
    finally:
        client.close()
        cluster.close()
    assert "tcp://x:1" in str(caught.value) and "nothing was written" in str(caught.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pairs"]


def test_an_unreachable_scheduler_names_the_address_and_how_to_start_one():
    address = "tcp://127.0.0.1:1"  # port 1: nothing listens there
    with pytest.raises(ParameterError) as caught, dask_client(address):
        pass
    assert address in str(caught.value) and "`dask scheduler`" in str(caught.value)


def test_the_engine_switch_states_its_reason():
    small, large = choose_engine(10, 100), choose_engine(100, 100)
    assert (small.engine, large.engine) == ("memory", "dask")
    assert "100 rows" in large.reason and "threshold" in small.reason


def test_row_counts_come_from_the_footers(tmp_path):
    from attribution_analysis.cluster import parquet_partitions

    pairs, _ = _world(6, "poisson")
    files = _write(pairs, tmp_path / "pairs")
    layout = parquet_partitions(tmp_path / "pairs", {"group": ("string",)})
    assert layout.total_rows == len(pairs) == sum(pq.read_metadata(f).num_rows for f in files)
