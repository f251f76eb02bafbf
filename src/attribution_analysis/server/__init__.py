"""``attribution-mcp``: the MCP server over the pipeline steps (stdio by default)."""

from __future__ import annotations

import argparse
import ipaddress
import os
import sys

from mcp.server.transport_security import DEFAULT_MAX_REQUEST_BODY_SIZE

from attribution_analysis.server import prefetch, preload
from attribution_analysis.server.app import AttributionServer, build_server
from attribution_analysis.server.config import (
    DEFAULT_MAX_ARGUMENT_BYTES,
    DEFAULT_MAX_DRAWS,
    DEFAULT_MAX_INPUT_BYTES,
    ServerConfig,
)
from attribution_analysis.workspace import Workspace

__all__ = ["AttributionServer", "ServerConfig", "build_server", "main"]

HOST = "127.0.0.1"  # the default: local clients only
TOKEN_ENV = "ATTRIBUTION_MCP_TOKEN"
MIN_TOKEN_CHARS = 16
DEFAULT_SESSION_IDLE_SECONDS = 1800.0


def _at_least_one(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number >= 1, got {text!r}")
    return value


def _port(text: str) -> int:
    value = _at_least_one(text)
    if value > 65535:
        raise argparse.ArgumentTypeError(f"must be a port number from 1 to 65535, got {text!r}")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not (0 < value < float("inf")):
        raise argparse.ArgumentTypeError(f"must be a number of seconds > 0, got {text!r}")
    return value


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to anything


def token_problem(token: str) -> str | None:
    """Why ``token`` cannot serve as the bearer token, or None."""
    if len(token) < MIN_TOKEN_CHARS:
        return (
            f"the token must have at least {MIN_TOKEN_CHARS} characters (make one with "
            "python -c 'import secrets; print(secrets.token_urlsafe(32))')"
        )
    if not all(33 <= ord(c) <= 126 for c in token):
        return "the token must be visible ASCII characters, without spaces or control characters"
    return None


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="attribution-mcp", description="MCP server for attribution-analysis."
    )
    parser.add_argument("--workspace-root", default="./workspace", help="folder of workspaces")
    parser.add_argument("--transport", default="stdio", choices=["stdio", "streamable-http"])
    parser.add_argument(
        "--host",
        default=HOST,
        help="streamable-http address (default 127.0.0.1); any address but loopback "
        f"requires a token (--auth-token or {TOKEN_ENV})",
    )
    parser.add_argument("--port", type=_port, default=8765, help="streamable-http port")
    parser.add_argument(
        "--auth-token",
        default=None,
        help="bearer token streamable-http requests must carry (Authorization: Bearer "
        f"TOKEN); prefer the {TOKEN_ENV} environment variable, since a command line is "
        "visible to other local users",
    )
    parser.add_argument(
        "--session-idle-seconds",
        type=_seconds,
        default=DEFAULT_SESSION_IDLE_SECONDS,
        help="streamable-http sessions idle this long are closed and freed",
    )
    parser.add_argument(
        "--no-preload",
        action="store_true",
        help="do not import the inline steps' libraries at start (saves about 400 MB of "
        "memory; each step's first call then pays its imports, seconds)",
    )
    parser.add_argument(
        "--no-compile-ahead",
        action="store_true",
        help="do not compile a default fit's model after import_data or validate_data (saves "
        "a core for 40-50 s when no fit follows; a first fit then compiles it, tens of seconds)",
    )
    _add_limits(parser)
    return parser


def _add_limits(parser: argparse.ArgumentParser) -> None:
    """The resource limits: draws, chains, rows, bytes and jobs."""
    parser.add_argument(
        "--max-draws",
        type=_at_least_one,
        default=DEFAULT_MAX_DRAWS,
        help="per chain, retry included",
    )
    parser.add_argument("--max-chains", type=_at_least_one, default=4)
    parser.add_argument(
        "--max-rows", type=_at_least_one, default=2_000_000, help="rows per raw CSV"
    )
    parser.add_argument(
        "--max-input-bytes",
        type=_at_least_one,
        default=DEFAULT_MAX_INPUT_BYTES,
        help="bytes per raw CSV (512 MiB by default)",
    )
    parser.add_argument(
        "--max-argument-bytes",
        type=_at_least_one,
        default=DEFAULT_MAX_ARGUMENT_BYTES,
        help="bytes of one tool call's arguments, as JSON (1 MiB by default)",
    )
    parser.add_argument("--max-jobs", type=_at_least_one, default=2, help="background jobs at once")


def _checked_token(parser: argparse.ArgumentParser, args: argparse.Namespace) -> str | None:
    """The bearer token (flag, else environment), refused when weak or when it is missing on
    an address beyond this machine."""
    token = args.auth_token if args.auth_token is not None else os.environ.get(TOKEN_ENV)
    if args.auth_token is None and not token:
        token = None  # an empty environment variable is no token
    if token is not None and (problem := token_problem(token)):
        parser.error(f"--auth-token / {TOKEN_ENV}: {problem}.")
    http = args.transport == "streamable-http"
    if http and token is None and not is_loopback(args.host):
        parser.error(
            f"--host {args.host} serves beyond this machine, and nothing would authenticate "
            f"its callers: set a bearer token with --auth-token or {TOKEN_ENV}, or bind "
            "127.0.0.1."
        )
    if not http and token is not None:
        print("attribution-mcp: the token is ignored on stdio.", file=sys.stderr)
    return token


def _config(parser: argparse.ArgumentParser, args: argparse.Namespace) -> ServerConfig:
    try:
        return ServerConfig.at(
            args.workspace_root,
            max_draws=args.max_draws,
            max_chains=args.max_chains,
            max_rows=args.max_rows,
            max_jobs=args.max_jobs,
            max_input_bytes=args.max_input_bytes,
            max_argument_bytes=args.max_argument_bytes,
        )
    except (ValueError, OSError) as exc:
        parser.error(str(exc))


def _serve(server: AttributionServer, args: argparse.Namespace, http: bool) -> None:
    try:
        if not http:
            server.mcp.run("stdio")
        else:
            server.mcp.run(
                "streamable-http",
                host=args.host,
                port=args.port,
                session_idle_timeout=args.session_idle_seconds,
                # The SDK's 4 MiB cap on a request body, raised with --max-argument-bytes.
                max_request_body_size=max(
                    DEFAULT_MAX_REQUEST_BODY_SIZE, args.max_argument_bytes + 64 * 1024
                ),
            )
    finally:
        prefetch.stop()
        server.jobs.shutdown()


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    # Everything is checked before the disk or the network is touched.
    token = _checked_token(parser, args)
    http = args.transport == "streamable-http"
    config = _config(parser, args)
    server = build_server(config, auth_token=token if http else None)
    server.jobs.compile_ahead = not args.no_compile_ahead
    if not args.no_preload:
        preload.start()
        prefetch.start(Workspace(config.root.resolve()).internal_dir() / prefetch.STORE)
    _serve(server, args, http)
    return 0


if __name__ == "__main__":
    sys.exit(main())
