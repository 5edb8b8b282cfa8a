"""The embeddings request (OpenAI wire format)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from msgspec import UNSET, Meta, Struct, UnsetType


class EmbeddingRequest(Struct, forbid_unknown_fields=True, omit_defaults=True):
    model: Annotated[str, Meta(min_length=1)]
    input: str | Annotated[list[Any], Meta(min_length=1, max_length=2048)]
    dimensions: Annotated[int, Meta(ge=1)] | UnsetType = UNSET
    encoding_format: Literal["float", "base64"] | UnsetType = UNSET
    user: str | UnsetType = UNSET
    # Not OpenAI's: what the text is for (search_query, search_document, classification,
    # clustering), which asymmetric models (Cohere, NVIDIA NIM) need. Hosts that do not
    # take it never see it.
    input_type: Annotated[str, Meta(min_length=1, max_length=64)] | UnsetType = UNSET

    def inputs_as_list(self) -> list[Any]:
        return [self.input] if isinstance(self.input, str) else self.input

    @property
    def wants_base64(self) -> bool:
        return self.encoding_format == "base64"
