"""What the stdio tests share: the server as a subprocess, and reading a tool's answer."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from mcp.client.stdio import StdioServerParameters


def server_params(root: Path) -> StdioServerParameters:
    """The MCP server over ``root`` as a stdio subprocess of this interpreter."""
    return StdioServerParameters(
        command=sys.executable,
        args=["-m", "attribution_analysis.server", "--workspace-root", str(root)],
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )


def text(result) -> str:
    return "\n".join(getattr(block, "text", "") for block in result.content)


def payload(result) -> dict:
    """A successful tool call's structured answer (the text on failure, as the message)."""
    assert not result.is_error, text(result)
    data = result.structured_content
    return data if isinstance(data, dict) else json.loads(text(result))


async def validate_quickly(call, workspace: str) -> dict:
    """validate_model without the backtest and the vague-prior refit (a plumbing check)."""
    return payload(
        await call(
            "validate_model",
            {
                "workspace": workspace,
                "backtest_periods": 0,
                "sensitivity_refit": False,
                "wait_seconds": 600,
            },
        )
    )
