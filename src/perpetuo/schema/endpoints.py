"""What a model alias is for: the endpoints (kinds of work) a deployment can serve, and the
model kinds ("modes") that name a set of them.

An endpoint here is a capability, coarser than a URL: `images` covers generations and edits,
`transcriptions` covers transcriptions and translations. The Responses and Messages APIs
are dialects of `chat`.
"""

from __future__ import annotations

from enum import StrEnum


class Endpoint(StrEnum):
    CHAT = "chat"
    COMPLETIONS = "completions"  # legacy text completions (/v1/completions)
    EMBEDDINGS = "embeddings"
    IMAGES = "images"
    TRANSCRIPTIONS = "transcriptions"  # speech to text, and translation to English
    SPEECH = "speech"  # text to speech
    RERANK = "rerank"
    MODERATIONS = "moderations"


ALL_ENDPOINTS: frozenset[str] = frozenset(Endpoint)

# A model's kind, as the pricing catalog's `mode` names it, and the endpoints it serves.
# A chat model also serves text completions on hosts that offer them for every model (vLLM);
# adapters drop what their provider does not offer (see ProviderAdapter.endpoints_for).
MODES: dict[str, frozenset[str]] = {
    "chat": frozenset({Endpoint.CHAT, Endpoint.COMPLETIONS}),
    "completion": frozenset({Endpoint.COMPLETIONS}),
    "embedding": frozenset({Endpoint.EMBEDDINGS}),
    "image": frozenset({Endpoint.IMAGES}),
    "chat_image": frozenset({Endpoint.CHAT, Endpoint.IMAGES}),  # Gemini's image models
    "transcription": frozenset({Endpoint.TRANSCRIPTIONS}),
    "speech": frozenset({Endpoint.SPEECH}),
    "rerank": frozenset({Endpoint.RERANK}),
    "moderation": frozenset({Endpoint.MODERATIONS}),
}
