"""Request sizes for routing: estimated only when asked for."""

from __future__ import annotations

import msgspec

from perpetuo.routing.job import RouteJob
from perpetuo.schema.chat import ChatCompletionRequest
from perpetuo.schema.embeddings import EmbeddingRequest


def chat(**fields: object) -> ChatCompletionRequest:
    body = {"model": "m", "messages": [{"role": "user", "content": "x" * 400}], **fields}
    return msgspec.convert(body, ChatCompletionRequest)


def test_chat_sizes_use_the_client_limit_or_the_default():
    job = RouteJob(False, chat(), 512)
    assert job._prompt_tokens is None  # nothing estimated until asked
    assert job.prompt_tokens == 3 + 4 + 100 and job.output_tokens == 512
    assert RouteJob(True, chat(max_completion_tokens=64), 512).total_tokens == 107 + 64
    assert RouteJob(False, chat(max_tokens=32), 512).output_tokens == 32


def test_embedding_sizes_count_inputs_and_no_output():
    request = msgspec.convert({"model": "e", "input": ["abcdefgh", [1, 2, 3]]}, EmbeddingRequest)
    job = RouteJob(False, request)
    assert (job.prompt_tokens, job.output_tokens) == (2 + 3, 0)
    assert RouteJob.of_size(False, 10, 20).total_tokens == 30
