"""Requests to the endpoints other than chat (images, audio, rerank, text completions,
moderations), in the one form the pipeline, the router and the adapters share.

The client's body is kept as sent (`body`, and `form` for uploads) so that an OpenAI-format
deployment gets every parameter, new ones included, with only `model` swapped; adapters of
other formats read the parameters they can map and refuse the rest.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from perpetuo.schema.endpoints import Endpoint
from perpetuo.schema.forms import Form

IMAGES_GENERATIONS = "images.generations"
IMAGES_EDITS = "images.edits"
AUDIO_TRANSCRIPTIONS = "audio.transcriptions"
AUDIO_TRANSLATIONS = "audio.translations"
AUDIO_SPEECH = "audio.speech"
RERANK = "rerank"
COMPLETIONS = "completions"
MODERATIONS = "moderations"

# Each operation and the capability (schema/endpoints.py) a deployment needs to serve it.
OPERATION_ENDPOINTS: dict[str, Endpoint] = {
    IMAGES_GENERATIONS: Endpoint.IMAGES,
    IMAGES_EDITS: Endpoint.IMAGES,
    AUDIO_TRANSCRIPTIONS: Endpoint.TRANSCRIPTIONS,
    AUDIO_TRANSLATIONS: Endpoint.TRANSCRIPTIONS,
    AUDIO_SPEECH: Endpoint.SPEECH,
    RERANK: Endpoint.RERANK,
    COMPLETIONS: Endpoint.COMPLETIONS,
    MODERATIONS: Endpoint.MODERATIONS,
}


@dataclass(frozen=True, slots=True)
class OperationRequest:
    operation: str  # one of the names above; also the request log's `endpoint`
    model: str  # the alias the client named
    body: dict[str, Any]  # the JSON body as sent; for uploads, the form's text fields
    form: Form | None = None  # uploads: every field and file, in the client's order
    stream: bool = False  # the answer is streamed (text completions with `stream: true`)

    @property
    def endpoint(self) -> Endpoint:
        return OPERATION_ENDPOINTS[self.operation]

    @property
    def path(self) -> str:
        """The OpenAI API path of the operation, below the version (`images/edits`)."""
        return self.operation.replace(".", "/")

    def param(self, name: str, default: Any = None) -> Any:
        return self.body.get(name, default)
