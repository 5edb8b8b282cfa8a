"""Scanning text with a policy's detectors, and transforming it by their actions.

`scan` returns non-overlapping findings (the higher-priority detector wins an overlap);
`transform` replaces redacted spans with typed placeholders from the request's `Vault`, so
the same value always gets the same placeholder within a request and, when the policy says
so, the response can carry the original values back (reversible masking).
"""

from __future__ import annotations

import bisect
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from perpetuo.guardrails.detector import Detector
from perpetuo.guardrails.pii import PII_DETECTORS
from perpetuo.guardrails.policy import Action
from perpetuo.guardrails.secrets import SECRET_DETECTORS

DETECTORS: dict[str, Detector] = {d.name: d for d in (*SECRET_DETECTORS, *PII_DETECTORS)}


@dataclass(frozen=True, slots=True)
class Finding:
    detector: str
    start: int
    end: int
    action: Action
    score: float | None = None  # prompt_injection only

    def public(self) -> dict[str, Any]:
        """What may be shown or logged: never the matched value."""
        view: dict[str, Any] = {
            "type": self.detector,
            "start": self.start,
            "end": self.end,
            "action": self.action,
        }
        if self.score is not None:
            view["score"] = self.score
        return view


class GuardrailBlocked(Exception):
    def __init__(self, detector: str, direction: str) -> None:
        super().__init__(f"{direction} blocked by {detector}")
        self.detector = detector
        self.direction = direction


def scan(text: str, actions: dict[str, Action]) -> list[Finding]:
    candidates: list[tuple[int, int, int, str]] = []
    for name in actions:
        detector = DETECTORS.get(name)
        if detector is None:
            continue  # prompt_injection is scored on whole messages, not spans
        for start, end in detector.find(text):
            candidates.append((detector.priority, start, end, name))
    if not candidates:
        return []
    candidates.sort(key=lambda c: (-c[0], c[1] - c[2]))
    starts: list[int] = []  # accepted spans, kept sorted by start (they never overlap)
    taken: list[Finding] = []
    for _, start, end, name in candidates:
        at = bisect.bisect_left(starts, start)
        if at < len(starts) and taken[at].start < end:
            continue  # overlaps the next accepted span
        if at > 0 and taken[at - 1].end > start:
            continue  # overlaps the previous one
        starts.insert(at, start)
        taken.insert(at, Finding(name, start, end, actions[name]))
    return taken


_PLACEHOLDER = re.compile(r"<([A-Z_]+)_(\d+)>")


@dataclass(slots=True)
class Vault:
    """One request's placeholders. Only values redacted from the input are restorable:
    a value the model produced and the policy redacts stays redacted."""

    _by_value: dict[tuple[str, str], str] = field(default_factory=dict)
    _numbers: Counter[str] = field(default_factory=Counter)
    _restorable: dict[str, str] = field(default_factory=dict)

    def placeholder(self, label: str, value: str, restorable: bool) -> str:
        known = self._by_value.get((label, value))
        if known is None:
            self._numbers[label] += 1
            known = f"<{label}_{self._numbers[label]}>"
            self._by_value[(label, value)] = known
        if restorable:
            self._restorable[known] = value
        return known

    @property
    def restorable(self) -> bool:
        return bool(self._restorable)

    def restore(self, text: str) -> str:
        if not self._restorable or "<" not in text:
            return text
        return _PLACEHOLDER.sub(lambda m: self._restorable.get(m.group(), m.group()), text)


def transform(text: str, findings: list[Finding], vault: Vault, restorable: bool) -> str:
    """`text` with every `redact` finding replaced by its placeholder."""
    if not any(f.action == "redact" for f in findings):
        return text
    pieces: list[str] = []
    cursor = 0
    for finding in findings:
        if finding.action != "redact":
            continue
        pieces.append(text[cursor : finding.start])
        label = DETECTORS[finding.detector].label
        pieces.append(vault.placeholder(label, text[finding.start : finding.end], restorable))
        cursor = finding.end
    pieces.append(text[cursor:])
    return "".join(pieces)


def first_block(findings: list[Finding]) -> Finding | None:
    return next((f for f in findings if f.action == "block"), None)


@dataclass(slots=True)
class Report:
    """Counts per direction, detector and action: what the request log and metrics keep."""

    counts: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    blocked: tuple[str, str] | None = None  # (direction, detector)
    files: list[dict[str, Any]] = field(default_factory=list)  # each attachment read, no text

    def add(self, direction: str, findings: list[Finding]) -> None:
        for finding in findings:
            self.counts[(direction, finding.detector, finding.action)] += 1

    def as_detail(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for (direction, detector, action), count in sorted(self.counts.items()):
            out.setdefault(direction, []).append(
                {"type": detector, "action": action, "count": count}
            )
        if self.blocked is not None:
            out["blocked"] = {"direction": self.blocked[0], "type": self.blocked[1]}
        if self.files:
            out["files"] = self.files
        return out
