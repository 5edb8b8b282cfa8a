"""Decode and check the bodies of the endpoints beside chat (images, audio, rerank, text
completions, moderations) once, with OpenAI-style errors naming the parameter.

Only what the gateway itself needs is checked (the model, the input to price and route, the
shapes translating adapters read); everything else stays in the body as the client sent it,
for the provider to judge.
"""

from __future__ import annotations

from typing import Any

import msgspec

from perpetuo.api.ingress import decode_json_error
from perpetuo.api.multipart import parse_form
from perpetuo.schema.errors import ErrorCode, bad_request
from perpetuo.schema.forms import Form
from perpetuo.schema.operations import (
    AUDIO_SPEECH,
    AUDIO_TRANSCRIPTIONS,
    AUDIO_TRANSLATIONS,
    COMPLETIONS,
    IMAGES_EDITS,
    IMAGES_GENERATIONS,
    MODERATIONS,
    RERANK,
    OperationRequest,
)

Json = dict[str, Any]
MAX_IMAGES = 10  # OpenAI's limit for `n`
MAX_DOCUMENTS = 10_000  # more than any reranker takes in one request


def decode_json_request(operation: str, body: bytes) -> OperationRequest:
    try:
        data = msgspec.json.decode(body)
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        raise decode_json_error(exc) from None
    if not isinstance(data, dict):
        raise bad_request("The request body must be a JSON object.", code=ErrorCode.INVALID_JSON)
    model = _text(data, "model")
    CHECKS[operation](data)
    stream = operation == COMPLETIONS and _flag(data, "stream")
    return OperationRequest(operation, model, data, stream=stream)


def decode_form_request(operation: str, body: bytes, content_type: str | None) -> OperationRequest:
    form = parse_form(body, content_type)
    fields = form.texts()
    model = _text(fields, "model")
    if operation == IMAGES_EDITS:
        _text(fields, "prompt")
        if not form.files("image", "image[]"):
            raise _missing("image")
        _count(fields, "n", MAX_IMAGES)
        _choice(fields, "response_format", ("url", "b64_json"))
    else:
        _one_file(form, "file")
    if fields.get("stream") == "true":
        what = operation.replace(".", " ")
        raise _unsupported("stream", f"Streamed {what} are not supported yet.")
    return OperationRequest(operation, model, dict(fields), form)


# -- per operation -------------------------------------------------------------------------


def _images(data: Json) -> None:
    _text(data, "prompt")
    _count(data, "n", MAX_IMAGES)
    _choice(data, "response_format", ("url", "b64_json"))
    if data.get("stream") is True:
        raise _unsupported("stream", "Streamed image generation is not supported yet.")


def _speech(data: Json) -> None:
    _text(data, "input")
    _choice(data, "stream_format", ("audio", "sse"))  # SSE events pass through like bytes


def _rerank(data: Json) -> None:
    _text(data, "query")
    documents = data.get("documents")
    if not isinstance(documents, list) or not documents:
        raise bad_request("`documents` must be a non-empty array.", param="documents")
    if len(documents) > MAX_DOCUMENTS:
        raise bad_request(f"`documents` has more than {MAX_DOCUMENTS} items.", param="documents")
    for index, document in enumerate(documents):
        text = document.get("text") if isinstance(document, dict) else document
        if not isinstance(text, str):
            raise bad_request(
                f"`documents[{index}]` must be a string or an object with a `text` string.",
                param=f"documents[{index}]",
            )
    _count(data, "top_n", None)
    if "return_documents" in data and not isinstance(data["return_documents"], bool | None):
        raise bad_request("`return_documents` must be a boolean.", param="return_documents")


def _completions(data: Json) -> None:
    prompt = data.get("prompt")
    if prompt is None:
        raise _missing("prompt")
    if not _prompt_shape(prompt):
        raise bad_request(
            "`prompt` must be a string, an array of strings, an array of token ids, or an "
            "array of token-id arrays.",
            param="prompt",
        )
    _count(data, "max_tokens", None)
    _count(data, "n", 128)
    if "stream" in data and not isinstance(data["stream"], bool | None):
        raise bad_request("`stream` must be a boolean.", param="stream")


def _moderations(data: Json) -> None:
    given = data.get("input")
    if given is None:
        raise _missing("input")
    if not isinstance(given, str | list) or given == []:
        raise bad_request("`input` must be a string or a non-empty array.", param="input")


CHECKS = {
    IMAGES_GENERATIONS: _images,
    AUDIO_SPEECH: _speech,
    RERANK: _rerank,
    COMPLETIONS: _completions,
    MODERATIONS: _moderations,
    # uploads are checked in decode_form_request
    IMAGES_EDITS: lambda data: None,
    AUDIO_TRANSCRIPTIONS: lambda data: None,
    AUDIO_TRANSLATIONS: lambda data: None,
}


# -- field checks --------------------------------------------------------------------------


def _text(data: Any, name: str) -> str:
    value = data.get(name)
    if value is None:
        raise _missing(name)
    if not isinstance(value, str) or not value:
        raise bad_request(f"`{name}` must be a non-empty string.", param=name)
    return value


def _count(data: Any, name: str, most: int | None) -> None:
    value = data.get(name)
    if value is None:
        return
    if isinstance(value, str) and value.isdigit():
        value = int(value)  # form fields are text
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise bad_request(f"`{name}` must be a positive integer.", param=name)
    if most is not None and value > most:
        raise bad_request(f"`{name}` must be at most {most}.", param=name)


def _choice(data: Any, name: str, allowed: tuple[str, ...]) -> None:
    value = data.get(name)
    if value is not None and value not in allowed:
        raise bad_request(
            f"Invalid value for '{name}': {value!r} (use one of {', '.join(allowed)}).",
            param=name,
        )


def _flag(data: Json, name: str) -> bool:
    return data.get(name) is True


def _one_file(form: Form, name: str) -> None:
    files = form.files(name)
    if not files:
        raise _missing(name)
    if len(files) > 1:
        raise bad_request(f"Send one `{name}`.", param=name)
    if not files[0].size:
        raise bad_request(f"`{name}` is empty.", param=name)


def _prompt_shape(prompt: Any) -> bool:
    if isinstance(prompt, str):
        return True
    if not isinstance(prompt, list) or not prompt:
        return False
    if all(isinstance(p, str) for p in prompt):
        return True
    if all(_token(p) for p in prompt):
        return True
    return all(isinstance(p, list) and p and all(_token(t) for t in p) for p in prompt)


def _token(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _missing(name: str) -> Exception:
    return bad_request(
        f"Missing required parameter: '{name}'.", param=name, code=ErrorCode.MISSING_PARAMETER
    )


def _unsupported(name: str, message: str) -> Exception:
    return bad_request(message, param=name, code=ErrorCode.UNSUPPORTED_PARAMETER)
