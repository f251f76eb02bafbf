#!/usr/bin/env python
"""The ``list_budget_plans`` step from the command line (``--help`` lists its options).

Generated from the step table, like ``attribution list_budget_plans`` and the MCP tool of the same
name: one option per parameter; prints the JSON answer {"status": "ok", ...}, or
{"status": "error", "error": {...}} with exit code 2.
"""

from __future__ import annotations

import sys

from attribution_analysis.frontends.commands import run_script


def main(argv: list[str] | None = None) -> int:
    return run_script("list_budget_plans", argv)


if __name__ == "__main__":
    sys.exit(main())
