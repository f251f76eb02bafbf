"""attribution-analysis: Bayesian MMM plus EM / Bayesian allocation of channel totals.

The package is organised as steps (pure-ish functions over a :class:`Workspace`) with thin
adapters on top: the ``attribution`` CLI, the ``scripts/`` CLIs and the MCP server.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("attribution-analysis")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
