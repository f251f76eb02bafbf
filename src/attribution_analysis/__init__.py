"""attribution-analysis: Bayesian MMM plus EM / Bayesian allocation of channel totals.

Every step is declared once in :mod:`attribution_analysis.steps` (name, parameters, answer,
files, compute function) and run by one runner (:mod:`attribution_analysis.runner`); the
``attribution`` CLI, the ``scripts/`` and the MCP server are generated from that table.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("attribution-analysis")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
