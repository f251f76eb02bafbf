"""The model gate: steps that use the fit refuse one that has not passed ``validate_model``.

``decompose_contributions`` and ``optimize_budget`` call :func:`require_valid_model` before
any work; a failing model is used only with an ``override_reason``, recorded in every output.
"""

from __future__ import annotations

import json
from typing import Any

from attribution_analysis import layout
from attribution_analysis.contracts.common import Finding
from attribution_analysis.errors import ModelRejectedError, arg, step_ref
from attribution_analysis.mmm import store
from attribution_analysis.workspace import Workspace


def require_valid_model(ws: Workspace, override_reason: str | None) -> dict[str, Any]:
    """The diagnostics must exist, belong to the current fit and pass, unless the user
    overrides (recorded): ``{"failed_criteria": [...], "override_reason": ...}``."""
    path = ws.require(
        layout.DIAGNOSTICS.path,
        f"the model has not been validated ({layout.DIAGNOSTICS.path} is missing).",
        fix=f"run {step_ref('validate_model')} first.",
    )
    diagnostics = json.loads(path.read_text())
    manifest, manifest_digest = store.read_manifest_and_digest(ws)
    recorded = dict(diagnostics["metadata"]["input_hashes"])
    # Diagnostics record the digest of the fit's manifest (open_fit). Diagnostics written
    # before they did cannot be tied to a fit, so they are refused too: a refit on the same
    # data (another seed, priors or a quick fit) would otherwise pass as validated.
    fit_digest = recorded.pop(layout.FIT.path, None)
    if recorded != manifest["metadata"]["input_hashes"] or fit_digest != manifest_digest:
        raise ModelRejectedError(
            "the diagnostics belong to an earlier fit.",
            fix=f"run {step_ref('validate_model')} on the current fit.",
        )
    failed = [c["name"] for c in diagnostics["criteria"] if not c["passed"]]
    if failed and not override_reason:
        raise ModelRejectedError(
            f"the model failed its acceptance criteria ({', '.join(failed)}); results from it "
            "would not be defensible.",
            fix="refit (more draws, tighter priors, lift-test calibration) or, knowingly, pass "
            f"{arg('override_reason')} with the reason (it is recorded in every output).",
        )
    return {"failed_criteria": failed, "override_reason": override_reason if failed else None}


def override_findings(gate: dict[str, Any]) -> list[Finding]:
    """The warning an output of an overridden gate carries (none when the model passed)."""
    if not gate["override_reason"]:
        return []
    return [
        Finding(
            code="override",
            severity="warning",
            message=f"the model failed {gate['failed_criteria']} and was used anyway: "
            f"{gate['override_reason']}",
        )
    ]


def channel_verdicts(ws: Workspace) -> dict[str, str]:
    """validate_model's identification verdict per channel (call after
    :func:`require_valid_model`, which ties the diagnostics to the current fit); empty for
    diagnostics without verdicts (ridge fits, older files)."""
    diagnostics = json.loads(ws.resolve(layout.DIAGNOSTICS.path).read_text())
    return {row["channel"]: row["verdict"] for row in diagnostics.get("identification", [])}
