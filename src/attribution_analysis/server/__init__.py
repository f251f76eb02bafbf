"""``attribution-mcp``: the MCP server over the pipeline steps (stdio by default)."""

from __future__ import annotations

import argparse
import sys

from attribution_analysis.server.app import AttributionServer, build_server
from attribution_analysis.server.config import DEFAULT_MAX_DRAWS, ServerConfig

__all__ = ["AttributionServer", "ServerConfig", "build_server", "main"]

HOST = "127.0.0.1"  # HTTP is for local clients only; nothing here authenticates callers


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="attribution-mcp", description="MCP server for attribution-analysis."
    )
    parser.add_argument("--workspace-root", default="./workspace", help="folder of workspaces")
    parser.add_argument("--transport", default="stdio", choices=["stdio", "streamable-http"])
    parser.add_argument("--port", type=int, default=8765, help="streamable-http port")
    parser.add_argument(
        "--max-draws", type=int, default=DEFAULT_MAX_DRAWS, help="per chain, retry included"
    )
    parser.add_argument("--max-chains", type=int, default=4)
    parser.add_argument("--max-rows", type=int, default=2_000_000, help="rows per raw CSV")
    parser.add_argument("--max-jobs", type=int, default=2, help="background jobs at once")
    args = parser.parse_args(argv)
    config = ServerConfig.at(
        args.workspace_root,
        max_draws=args.max_draws,
        max_chains=args.max_chains,
        max_rows=args.max_rows,
        max_jobs=args.max_jobs,
    )
    server = build_server(config)
    try:
        if args.transport == "stdio":
            server.mcp.run("stdio")
        else:
            server.mcp.run("streamable-http", host=HOST, port=args.port)
    finally:
        server.jobs.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
