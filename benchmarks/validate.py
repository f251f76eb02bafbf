"""Time the validate_data step on growing simulated workspaces.

    python benchmarks/validate.py

Prints rows read, seconds and rows per second for each size. There is no library baseline
for this step (it is glue), so the figures are absolute; the README quotes them.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from attribution_analysis.api import simulate_workspace, validate_data
from attribution_analysis.contracts.simulation import SimulationParams
from attribution_analysis.workspace import Workspace

SIZES = [
    ("national, 156 weeks, 5 channels", dict(kind="mmm", weeks=156, channels=5)),
    ("campaigns, 156 weeks, 8 channels", dict(kind="mta", weeks=156, channels=8)),
    (
        "campaigns x 20 geos, 208 weeks, 8 channels",
        dict(kind="mta", weeks=208, channels=8, geos=20),
    ),
]


def main() -> None:
    print(f"{'workspace':45s} {'rows':>9s} {'seconds':>8s} {'rows/s':>10s}")
    for label, kwargs in SIZES:
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            simulate_workspace(root, SimulationParams(seed=1, **kwargs))
            rows = sum(sum(1 for _ in p.open()) - 1 for p in (root / "raw").glob("*.csv"))
            start = time.perf_counter()
            validate_data(Workspace.open(root))
            seconds = time.perf_counter() - start
        print(f"{label:45s} {rows:9d} {seconds:8.2f} {rows / seconds:10.0f}")


if __name__ == "__main__":
    main()
