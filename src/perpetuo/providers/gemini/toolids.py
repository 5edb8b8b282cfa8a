"""Tool call ids for Gemini function calls.

The Gemini API gives function calls no id, and Gemini 3 models sign them: a replayed
history whose calls lost their `thoughtSignature` is rejected with a 400. OpenAI clients echo
back only the call id, so the gateway, which keeps no state between requests, carries the
signature inside the id (`call_<hash>~ts~<signature>`) and restores it on the way back.
"""

from __future__ import annotations

import hashlib

SIGNATURE_MARK = "~ts~"  # never in base64 (standard or URL-safe) nor in our own ids


def make_call_id(seed: str, candidate: int, position: int, name: str, signature: object) -> str:
    """Stable for one response: the same call gets the same id, streamed or not."""
    digest = hashlib.sha256(f"{seed}:{candidate}:{position}:{name}".encode()).hexdigest()
    call_id = f"call_{digest[:24]}"
    if isinstance(signature, str) and signature:
        call_id = f"{call_id}{SIGNATURE_MARK}{signature}"
    return call_id


def signature_of(call_id: str) -> str | None:
    """The thought signature carried by a call id, if any."""
    _, mark, signature = call_id.partition(SIGNATURE_MARK)
    return signature if mark and signature else None
