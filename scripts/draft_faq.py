#!/usr/bin/env python
"""Draft the stakeholder FAQ: hard questions per audience, answered from templates with this
analysis's own numbers (no generated text), as reports/faq_<audience>.md and .html.

Usage:
    python scripts/draft_faq.py --workspace DIR
        [--audience cmo|data_science|finance|marketing|legal|all]
        [--financial-services] [--fee-basis gross|net_of_fees|not_stated]

--financial-services adds SEC Marketing Rule disclaimers, gross vs net-of-fees wording and an
audit-trail summary (input hashes, run ids from the run registry). Prints one JSON object:
{"status": "ok", "files": [{"audience", "markdown", "html", "questions"}], "sources",
"missing", ...} or {"status": "error", "error": {...}}. Exit codes: 0 ok, 2 bad input.
"""

from __future__ import annotations

import argparse
import sys

from attribution_analysis.adapters import run_json
from attribution_analysis.contracts.report import DraftFaqParams
from attribution_analysis.report import draft_faq
from attribution_analysis.workspace import Workspace

AUDIENCES = ["cmo", "data_science", "finance", "marketing", "legal", "all"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workspace", required=True, help="workspace folder (holds analysis/)")
    parser.add_argument("--audience", default="all", choices=AUDIENCES)
    parser.add_argument("--financial-services", action="store_true", help="add SEC notices")
    parser.add_argument(
        "--fee-basis", default="not_stated", choices=["gross", "net_of_fees", "not_stated"]
    )
    args = parser.parse_args(argv)

    def action() -> dict:
        params = DraftFaqParams(
            audience=args.audience,
            financial_services=args.financial_services,
            fee_basis=args.fee_basis,
        )
        return draft_faq(Workspace.open(args.workspace), params).model_dump(mode="json")

    return run_json(action)


if __name__ == "__main__":
    sys.exit(main())
