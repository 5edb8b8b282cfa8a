"""What routing needs to know about one request: which endpoint, streamed or not, and its
size in tokens.

The sizes are estimated only if something asks (the `cheapest` strategy, a `tpm` cap):
estimating walks the messages, which the usual request never needs.
"""

from __future__ import annotations

from perpetuo.metering.tokens import estimate_prompt_tokens, estimate_text_tokens
from perpetuo.schema.chat import ChatCompletionRequest
from perpetuo.schema.embeddings import EmbeddingRequest
from perpetuo.schema.endpoints import Endpoint


class RouteJob:
    __slots__ = (
        "_default_output",
        "_output_tokens",
        "_prompt_tokens",
        "_request",
        "endpoint",
        "stream",
    )

    def __init__(
        self,
        stream: bool,
        request: ChatCompletionRequest | EmbeddingRequest | None = None,
        default_output_tokens: int = 0,
        endpoint: str = Endpoint.CHAT,
    ) -> None:
        """`default_output_tokens`: assumed when a chat request sets no output limit.
        `endpoint`: only deployments that serve it are tried (schema/endpoints.py)."""
        self.stream = stream
        self.endpoint = endpoint
        self._request = request
        self._default_output = default_output_tokens
        self._prompt_tokens: int | None = None
        self._output_tokens: int | None = None

    @classmethod
    def of_size(
        cls, stream: bool, prompt_tokens: int, output_tokens: int, endpoint: str = Endpoint.CHAT
    ) -> RouteJob:
        job = cls(stream, endpoint=endpoint)
        job._prompt_tokens, job._output_tokens = prompt_tokens, output_tokens
        return job

    @property
    def prompt_tokens(self) -> int:
        if self._prompt_tokens is None:
            request = self._request
            if isinstance(request, ChatCompletionRequest):
                self._prompt_tokens = estimate_prompt_tokens(request)
            elif isinstance(request, EmbeddingRequest):
                self._prompt_tokens = _embedding_tokens(request)
            else:
                self._prompt_tokens = 0
        return self._prompt_tokens

    @property
    def output_tokens(self) -> int:
        if self._output_tokens is None:
            request = self._request
            self._output_tokens = (
                request.output_token_limit or self._default_output
                if isinstance(request, ChatCompletionRequest)
                else 0
            )
        return self._output_tokens

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.output_tokens


def _embedding_tokens(request: EmbeddingRequest) -> int:
    return sum(
        estimate_text_tokens(i) if isinstance(i, str) else len(i) if isinstance(i, list) else 1
        for i in request.inputs_as_list()
    )
