"""What routing needs to know about one request: streamed or not, and its size in tokens."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from perpetuo.metering.tokens import estimate_prompt_tokens, estimate_text_tokens
from perpetuo.schema.chat import ChatCompletionRequest
from perpetuo.schema.embeddings import EmbeddingRequest


class RouteJob:
    """The prompt-token estimate walks the messages, so it is computed only if something
    (the `cheapest` strategy, a `tpm` cap) asks for it."""

    __slots__ = ("_estimate", "_prompt_tokens", "output_tokens", "stream")

    def __init__(self, stream: bool, output_tokens: int, estimate: Callable[[], int]) -> None:
        self.stream = stream
        self.output_tokens = output_tokens
        self._estimate = estimate
        self._prompt_tokens: int | None = None

    @classmethod
    def for_chat(cls, request: ChatCompletionRequest, default_output_tokens: int) -> RouteJob:
        """Output: the client's own limit, else `routing.default_output_tokens`."""
        output = request.output_token_limit or default_output_tokens
        return cls(request.is_stream, output, partial(estimate_prompt_tokens, request))

    @classmethod
    def for_embeddings(cls, request: EmbeddingRequest) -> RouteJob:
        return cls(False, 0, partial(_embedding_tokens, request))

    @property
    def prompt_tokens(self) -> int:
        if self._prompt_tokens is None:
            self._prompt_tokens = self._estimate()
        return self._prompt_tokens

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.output_tokens


def _embedding_tokens(request: EmbeddingRequest) -> int:
    return sum(
        estimate_text_tokens(i) if isinstance(i, str) else len(i) if isinstance(i, list) else 1
        for i in request.inputs_as_list()
    )
