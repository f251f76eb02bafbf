#!/usr/bin/env python
"""Write the HTML executive summary of a workspace: reports/mmm_executive_summary.html, one
self-contained offline file (inline styles and SVG charts, no scripts, no CDN), plus PNG and
SVG copies of its charts under reports/figures/.

Usage:
    python scripts/make_report.py --workspace DIR [--title TEXT] [--top-campaigns 5]
        [--trace-parameters 12] [--no-figures] [--financial-services]
        [--fee-basis gross|net_of_fees|not_stated]

Reads whatever outputs exist under analysis/ (contributions, diagnostics, fit, lift tests,
allocation, budget optimization, path attribution); a section whose input is missing says
which step writes it. Beside the report, reports/mmm_executive_summary.sources.json lists
every value printed with the output file and JSON path it was read from. Prints one JSON
object: {"status": "ok", "report", "sources", "report_bytes", "figures", "charts",
"sections": [{"name", "status", "inputs", "message"}], ...} or
{"status": "error", "error": {...}}. Exit codes: 0 ok, 2 bad input (nothing written).
"""

from __future__ import annotations

import argparse
import sys

from attribution_analysis.adapters import run_json
from attribution_analysis.contracts.report import GenerateReportParams
from attribution_analysis.report import generate_report
from attribution_analysis.workspace import Workspace


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workspace", required=True, help="workspace folder (holds analysis/)")
    parser.add_argument("--title", default=None, help="report title")
    parser.add_argument("--top-campaigns", type=int, default=5, help="campaigns per channel")
    parser.add_argument("--trace-parameters", type=int, default=12, help="trace plots drawn")
    parser.add_argument("--no-figures", action="store_true", help="skip reports/figures/")
    parser.add_argument("--financial-services", action="store_true", help="add SEC notices")
    parser.add_argument(
        "--fee-basis", default="not_stated", choices=["gross", "net_of_fees", "not_stated"]
    )
    args = parser.parse_args(argv)

    def action() -> dict:
        params = GenerateReportParams(
            title=args.title,
            top_campaigns=args.top_campaigns,
            trace_parameters=args.trace_parameters,
            figures=not args.no_figures,
            financial_services=args.financial_services,
            fee_basis=args.fee_basis,
        )
        result = generate_report(Workspace.open(args.workspace), params)
        return result.model_dump(mode="json")

    return run_json(action)


if __name__ == "__main__":
    sys.exit(main())
