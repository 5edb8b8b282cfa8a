"""Guardrails on streamed text: release only what can no longer be part of a finding.

Text arrives in small deltas, and a card number or key can be split over several of them.
Each slot (a choice of the stream) keeps back its unsent tail: the last whitespace-free run
(emails, keys and tokens contain no spaces), at least `HOLD` characters (enough for the
longest spaced pattern: a grouped IBAN or card number), and an unterminated PEM block.
What is released is scanned with the held-back context in view, so a finding is never cut.
"""

from __future__ import annotations

from collections.abc import Hashable

from perpetuo.guardrails.engine import GuardrailBlocked, Report, Vault, first_block, scan, transform
from perpetuo.guardrails.policy import Action

HOLD = 64
MIN_RELEASE = 48  # scan once per this much releasable text, not on every small delta
MAX_HOLD = 16384  # a whitespace-free run longer than this is released anyway


class StreamFilter:
    def __init__(self, actions: dict[str, Action], vault: Vault, report: Report) -> None:
        self.actions = actions
        self.vault = vault
        self.report = report
        self._pending: dict[Hashable, str] = {}

    def push(self, slot: Hashable, text: str) -> str:
        """Add `text` to the slot; return what is now safe to send (redacted)."""
        buffer = self._pending.get(slot, "") + text
        cut = _safe_end(buffer)
        if cut < MIN_RELEASE:
            self._pending[slot] = buffer
            return ""
        return self._release(slot, buffer, cut)

    def slots(self) -> list[Hashable]:
        """Slots with text held back."""
        return [slot for slot, text in self._pending.items() if text]

    def flush(self, slot: Hashable) -> str:
        """The slot ended: everything left, redacted."""
        buffer = self._pending.pop(slot, "")
        return self._release(slot, buffer, len(buffer)) if buffer else ""

    def _release(self, slot: Hashable, buffer: str, cut: int) -> str:
        findings = scan(buffer, self.actions) if self.actions and cut > 0 else []
        for finding in findings:
            if finding.start < cut < finding.end:
                cut = finding.start  # never send part of a finding
                break
        released = [f for f in findings if f.end <= cut]
        blocked = first_block(released)
        if blocked is not None:
            self.report.blocked = ("output", blocked.detector)
            raise GuardrailBlocked(blocked.detector, "output")
        self.report.add("output", released)
        self._pending[slot] = buffer[cut:]
        return transform(buffer[:cut], released, self.vault, restorable=False)


def _safe_end(buffer: str) -> int:
    cut = len(buffer) - HOLD
    last_space = max(buffer.rfind(" "), buffer.rfind("\n"), buffer.rfind("\t"))
    cut = min(cut, last_space + 1)  # the trailing word may still grow
    begin = buffer.rfind("-----BEGIN")
    if begin != -1 and "-----END" not in buffer[begin:]:
        cut = min(cut, begin)
    if len(buffer) - cut > MAX_HOLD:
        cut = len(buffer) - HOLD
    return max(cut, 0)
