"""Metadata stamped on every output JSON: when, with what, from which inputs."""

from __future__ import annotations

import functools
import platform
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from attribution_analysis import __version__
from attribution_analysis.contracts.common import DataRange, Metadata

# Distribution names whose versions matter for reproducing a result. Read from package
# metadata, so recording them never imports (and never pays for) the libraries themselves.
TRACKED_LIBRARIES = (
    "pymc-marketing",
    "pymc",
    "pytensor",
    "nutpie",
    "numba",
    "arviz",
    "arviz-stats",
    "numpy",
    "pandas",
    "scipy",
    "statsmodels",
    "pydantic",
    "holidays",
    "mcp",
)


def library_versions() -> dict[str, str]:
    return dict(_installed_versions())


# Read once per process (about 0.05 s of metadata lookups per call otherwise): the versions
# that matter are those of the code this process runs, which a later install cannot change.
@functools.cache
def _installed_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in TRACKED_LIBRARIES:
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def build_metadata(
    *,
    step: str,
    input_hashes: dict[str, str],
    data_range: DataRange | None = None,
    seed: int | None = None,
    sampler: dict[str, Any] | None = None,
    run_id: str | None = None,
    extra: dict[str, Any] | None = None,
) -> Metadata:
    return Metadata(
        timestamp=utc_now(),
        step=step,
        run_id=run_id,
        package="attribution-analysis",
        package_version=__version__,
        library_versions=library_versions(),
        seed=seed,
        sampler=sampler or {},
        data_range=data_range,
        input_hashes=input_hashes,
        extra=extra or {},
    )
