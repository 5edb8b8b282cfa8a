"""Prompt-injection and jailbreak scoring.

The default scorer is a fast heuristic: weighted phrase patterns typical of injections
("ignore previous instructions", requests for the system prompt, role-play that removes
restrictions, chat-template tokens smuggled into user text), combined as a noisy-OR so that
several weak signals add up. Anything implementing `InjectionClassifier` can replace it
(a local model, or a guard model called through the gateway's own routing).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Protocol

DEFAULT_THRESHOLD = 0.5


class InjectionClassifier(Protocol):
    name: str

    async def score(self, text: str) -> float:
        """Probability-like score in [0, 1] that `text` tries to subvert the instructions."""
        ...


_I = re.IGNORECASE
# Each signal: a pattern, its weight, and words one of which the (lower-cased) text must
# contain for the pattern to be worth running (a substring test is ~50x cheaper).
_RAW: tuple[tuple[str, float, tuple[str, ...]], ...] = (
    (
        r"\b(?:ignore|disregard|forget|override|skip)\b.{0,30}\b(?:previous|prior|above|"
        r"earlier|preceding|all|your|the|system)\b.{0,20}\b(?:instructions?|prompts?|"
        r"rules|directions|guidelines|context)\b",
        0.85,
        ("ignore", "disregard", "forget", "override", "skip"),
    ),
    (
        r"\b(?:reveal|print|show|repeat|output|display|leak|tell me)\b.{0,30}\b(?:system|"
        r"initial|hidden|secret|original)\s+(?:prompt|instructions?|message)",
        0.75,
        ("prompt", "instruction", "message"),
    ),
    (
        r"\b(?:DAN|do anything now|developer mode|jailbreak(?:ed)?|god mode)\b",
        0.6,
        ("dan", "anything now", "developer mode", "jailbreak", "god mode"),
    ),
    (
        r"\b(?:pretend|imagine|act as|you are now|from now on you are|roleplay as)\b.{0,60}"
        r"\b(?:no|without|free of|unrestricted|uncensored|unfiltered)\b.{0,20}"
        r"(?:restrictions?|filters?|rules|limits|guidelines|censorship)?",
        0.6,
        ("pretend", "imagine", "act as", "you are now", "from now on", "roleplay"),
    ),
    (
        r"\b(?:bypass|disable|turn off|circumvent|evade)\b.{0,30}\b(?:safety|content|"
        r"moderation|guard ?rails?|filters?|restrictions?)\b",
        0.7,
        ("bypass", "disable", "turn off", "circumvent", "evade"),
    ),
    (
        r"(?:<\|im_start\|>|<\|system\|>|\[/?INST\]|</?system>|<<SYS>>)",
        0.6,
        ("<|", "inst]", "system>", "<<sys>>"),
    ),
    (r"(?:^|\n)\s*(?:system|assistant)\s*:\s*\S", 0.3, ("system", "assistant")),
    (r"\bnew (?:instructions|rules|task)\s*:", 0.4, ("new ",)),
    (
        r"\b(?:you must|you will) (?:now )?(?:obey|comply with) (?:me|my|these)\b",
        0.4,
        ("obey", "comply"),
    ),
)
_SIGNALS = tuple((re.compile(p, _I), weight, words) for p, weight, words in _RAW)


@dataclass(frozen=True, slots=True)
class HeuristicScorer:
    """The built-in scorer: microseconds per KB, no model."""

    name: str = "heuristic"

    def score_now(self, text: str) -> float:
        lowered = text.lower()
        miss = 1.0
        for pattern, weight, words in _SIGNALS:
            if any(word in lowered for word in words) and pattern.search(text):
                miss *= 1.0 - weight
        return round(1.0 - miss, 4)

    async def score(self, text: str) -> float:
        return self.score_now(text)


HEURISTIC = HeuristicScorer()
