"""Decode and validate request bodies once, with OpenAI-style errors naming the parameter."""

from __future__ import annotations

import re
from typing import Any, TypeVar

import msgspec

from perpetuo.schema.chat import CHAT_REQUEST_FIELDS, ChatCompletionRequest
from perpetuo.schema.embeddings import EmbeddingRequest
from perpetuo.schema.errors import ErrorCode, GatewayError, bad_request

T = TypeVar("T")

_chat_decoder = msgspec.json.Decoder(ChatCompletionRequest)
_embedding_decoder = msgspec.json.Decoder(EmbeddingRequest)
_any_decoder = msgspec.json.Decoder()

_LOCATION = re.compile(r" - at `\$(?P<path>[^`]*)`$")
_UNKNOWN_FIELD = re.compile(r"Object contains unknown field `(?P<name>[^`]+)`")
_MISSING_FIELD = re.compile(r"Object missing required field `(?P<name>[^`]+)`")


def decode_chat_request(body: bytes) -> tuple[ChatCompletionRequest, dict[str, Any]]:
    """The validated request, plus any top-level parameters outside OpenAI's schema
    (the pipeline accepts those only for aliases that allow them)."""
    try:
        return _chat_decoder.decode(body), {}
    except msgspec.ValidationError as exc:
        if not _UNKNOWN_FIELD.search(str(exc)) or _param_of(str(exc)):
            raise validation_error(exc) from None
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        raise decode_json_error(exc) from None
    # Unknown top-level fields: split them off, validate the rest. (Validation stops at the
    # first unknown field, so the rest of the body may still be malformed.)
    try:
        data = _any_decoder.decode(body)
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        raise decode_json_error(exc) from None
    if not isinstance(data, dict):
        raise bad_request("The request body must be a JSON object.", code=ErrorCode.INVALID_JSON)
    extras = {k: data.pop(k) for k in list(data) if k not in CHAT_REQUEST_FIELDS}
    try:
        return msgspec.convert(data, ChatCompletionRequest), extras
    except msgspec.ValidationError as exc:
        raise validation_error(exc) from None


def decode_embedding_request(body: bytes) -> EmbeddingRequest:
    try:
        return _embedding_decoder.decode(body)
    except msgspec.ValidationError as exc:
        raise validation_error(exc) from None
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        raise decode_json_error(exc) from None


def decode_json_error(exc: msgspec.DecodeError | UnicodeDecodeError) -> GatewayError:
    # msgspec raises UnicodeDecodeError (not DecodeError) for invalid UTF-8 in strings.
    detail = "invalid UTF-8" if isinstance(exc, UnicodeDecodeError) else str(exc)
    return bad_request(
        "We could not parse the JSON body of your request. The API expects a JSON payload "
        f"({_strip_location(detail)}).",
        code=ErrorCode.INVALID_JSON,
    )


def validation_error(exc: msgspec.ValidationError) -> GatewayError:
    text = str(exc)
    if text.startswith("Expected `object`, got") and not _param_of(text):
        return bad_request("The request body must be a JSON object.", code=ErrorCode.INVALID_JSON)
    param = _param_of(text)
    if match := _UNKNOWN_FIELD.search(text):
        name = match["name"]
        param = f"{param}.{name}" if param else name
        return bad_request(
            f"Unrecognized request argument supplied: {param}",
            param=param,
            code=ErrorCode.UNKNOWN_PARAMETER,
        )
    if match := _MISSING_FIELD.search(text):
        name = match["name"]
        param = f"{param}.{name}" if param else name
        return bad_request(
            f"Missing required parameter: '{param}'.",
            param=param,
            code=ErrorCode.MISSING_PARAMETER,
        )
    detail = _strip_location(text)
    where = f" for '{param}'" if param else ""
    return bad_request(f"Invalid value{where}: {detail}.", param=param or None)


def _param_of(text: str) -> str:
    """msgspec's `$.messages[0].content` as `messages[0].content`."""
    match = _LOCATION.search(text)
    return match["path"].lstrip(".") if match else ""


def _strip_location(text: str) -> str:
    return _LOCATION.sub("", text).rstrip(".")
