"""Evaluating a text against a policy outside a request: `POST /api/guardrails/test`."""

from __future__ import annotations

from typing import Any, Literal

from perpetuo.guardrails.engine import Finding, Vault, first_block, scan, transform
from perpetuo.guardrails.injection import HEURISTIC
from perpetuo.guardrails.policy import INJECTION, ResolvedPolicy


def evaluate(
    text: str, policy: ResolvedPolicy | None, direction: Literal["input", "output"]
) -> dict[str, Any]:
    """Findings (type, span, action; never the values) and the text as it would be sent on."""
    actions = {} if policy is None else (policy.input if direction == "input" else policy.output)
    findings = scan(text, actions)
    if INJECTION in actions and policy is not None:
        score = HEURISTIC.score_now(text)
        if score >= policy.injection_threshold:
            findings.append(Finding(INJECTION, 0, len(text), actions[INJECTION], score))
    spans = [f for f in findings if f.detector != INJECTION]
    blocked = first_block(findings)
    return {
        "findings": [f.public() for f in findings],
        "text": transform(text, spans, Vault(), restorable=False),
        "blocked": blocked is not None,
        "blocked_by": blocked.detector if blocked is not None else None,
        "policy": {"detectors": actions, "fingerprint": policy.fingerprint if policy else None},
    }
