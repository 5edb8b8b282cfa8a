"""The chat-completions request as clients send it (OpenAI wire format), validated once.

Every optional field defaults to UNSET so that re-encoding reproduces what the client sent:
unset fields are omitted, explicit nulls stay null. Unknown top-level parameters are rejected,
as OpenAI does; inside messages they are ignored, because clients routinely send back the
assistant message object they received (with `annotations`, `audio`, ...).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from msgspec import UNSET, Meta, Struct, UnsetType

_PART = {"omit_defaults": True}

NonEmptyStr = Annotated[str, Meta(min_length=1)]


# --- content parts -------------------------------------------------------------------------


class ImageURL(Struct, **_PART):
    url: NonEmptyStr
    detail: Literal["auto", "low", "high"] | UnsetType = UNSET


class InputAudio(Struct, **_PART):
    data: str
    format: str


class FileRef(Struct, **_PART):
    file_data: str | UnsetType = UNSET
    file_id: str | UnsetType = UNSET
    filename: str | UnsetType = UNSET


class TextPart(Struct, tag="text", tag_field="type", **_PART):
    text: str


class ImagePart(Struct, tag="image_url", tag_field="type", **_PART):
    image_url: ImageURL


class AudioPart(Struct, tag="input_audio", tag_field="type", **_PART):
    input_audio: InputAudio


class FilePart(Struct, tag="file", tag_field="type", **_PART):
    file: FileRef


class RefusalPart(Struct, tag="refusal", tag_field="type", **_PART):
    refusal: str


UserPart = TextPart | ImagePart | AudioPart | FilePart
AssistantPart = TextPart | RefusalPart


# --- tool calls ----------------------------------------------------------------------------


class FunctionCall(Struct, **_PART):
    name: str
    arguments: str


class FunctionToolCall(Struct, tag="function", tag_field="type", **_PART):
    id: str
    function: FunctionCall


class CustomCall(Struct, **_PART):
    name: str
    input: str


class CustomToolCall(Struct, tag="custom", tag_field="type", **_PART):
    id: str
    custom: CustomCall


ToolCall = FunctionToolCall | CustomToolCall


# --- messages ------------------------------------------------------------------------------


class SystemMessage(Struct, tag="system", tag_field="role", **_PART):
    content: str | list[TextPart]
    name: str | UnsetType = UNSET


class DeveloperMessage(Struct, tag="developer", tag_field="role", **_PART):
    content: str | list[TextPart]
    name: str | UnsetType = UNSET


class UserMessage(Struct, tag="user", tag_field="role", **_PART):
    content: str | list[UserPart]
    name: str | UnsetType = UNSET


class AssistantAudioRef(Struct, **_PART):
    id: str


class AssistantMessage(Struct, tag="assistant", tag_field="role", **_PART):
    content: str | list[AssistantPart] | UnsetType | None = UNSET
    refusal: str | UnsetType | None = UNSET
    name: str | UnsetType = UNSET
    tool_calls: list[ToolCall] | UnsetType | None = UNSET
    function_call: FunctionCall | UnsetType | None = UNSET
    audio: AssistantAudioRef | UnsetType | None = UNSET
    # Not OpenAI's: the model's reasoning from an earlier turn, as answers carry it. Only the
    # provider that made a block can use it (its signature proves that), so each adapter
    # replays the blocks of its own kind verbatim and leaves the others out. Kinds:
    #   {"type": "thinking", "thinking", "signature"}, {"type": "redacted_thinking", "data"}
    #   (Anthropic); {"type": "reasoning", "id", "encrypted_content", "summary"} (OpenAI).
    reasoning_content: str | UnsetType | None = UNSET
    thinking_blocks: list[dict[str, Any]] | UnsetType | None = UNSET


class ToolMessage(Struct, tag="tool", tag_field="role", **_PART):
    content: str | list[TextPart]
    tool_call_id: str


class FunctionMessage(Struct, tag="function", tag_field="role", **_PART):
    content: str | None
    name: str


Message = (
    SystemMessage
    | DeveloperMessage
    | UserMessage
    | AssistantMessage
    | ToolMessage
    | FunctionMessage
)


# --- tools and formats ---------------------------------------------------------------------


class FunctionDefinition(Struct, **_PART):
    name: Annotated[str, Meta(min_length=1, max_length=64, pattern=r"^[a-zA-Z0-9_-]+$")]
    description: str | UnsetType = UNSET
    parameters: dict[str, Any] | UnsetType = UNSET
    strict: bool | UnsetType | None = UNSET


class FunctionTool(Struct, tag="function", tag_field="type", **_PART):
    function: FunctionDefinition


class CustomTool(Struct, tag="custom", tag_field="type", **_PART):
    custom: dict[str, Any]


Tool = FunctionTool | CustomTool


class JsonSchemaFormat(Struct, **_PART):
    name: Annotated[str, Meta(min_length=1, max_length=64)]
    description: str | UnsetType = UNSET
    schema: dict[str, Any] | UnsetType = UNSET
    strict: bool | UnsetType | None = UNSET


class TextFormat(Struct, tag="text", tag_field="type", **_PART):
    pass


class JsonObjectFormat(Struct, tag="json_object", tag_field="type", **_PART):
    pass


class JsonSchemaResponseFormat(Struct, tag="json_schema", tag_field="type", **_PART):
    json_schema: JsonSchemaFormat


ResponseFormat = TextFormat | JsonObjectFormat | JsonSchemaResponseFormat


class StreamOptions(Struct, **_PART):
    include_usage: bool | UnsetType | None = UNSET
    include_obfuscation: bool | UnsetType | None = UNSET


Probability = Annotated[float, Meta(ge=0.0, le=1.0)]
Penalty = Annotated[float, Meta(ge=-2.0, le=2.0)]
PositiveInt = Annotated[int, Meta(ge=1)]
# No model answers with more; a larger number is a mistake or an attempt to overflow counters.
OutputTokens = Annotated[int, Meta(ge=1, le=100_000_000)]


class ChatCompletionRequest(Struct, forbid_unknown_fields=True, omit_defaults=True):
    model: NonEmptyStr
    messages: Annotated[list[Message], Meta(min_length=1)]
    stream: bool | UnsetType | None = UNSET
    stream_options: StreamOptions | UnsetType | None = UNSET
    temperature: Annotated[float, Meta(ge=0.0, le=2.0)] | UnsetType | None = UNSET
    top_p: Probability | UnsetType | None = UNSET
    n: Annotated[int, Meta(ge=1, le=128)] | UnsetType | None = UNSET
    stop: str | Annotated[list[str], Meta(max_length=4)] | UnsetType | None = UNSET
    max_tokens: OutputTokens | UnsetType | None = UNSET
    max_completion_tokens: OutputTokens | UnsetType | None = UNSET
    presence_penalty: Penalty | UnsetType | None = UNSET
    frequency_penalty: Penalty | UnsetType | None = UNSET
    logit_bias: dict[str, int] | UnsetType | None = UNSET
    logprobs: bool | UnsetType | None = UNSET
    top_logprobs: Annotated[int, Meta(ge=0, le=20)] | UnsetType | None = UNSET
    seed: int | UnsetType | None = UNSET
    user: str | UnsetType = UNSET
    tools: list[Tool] | UnsetType | None = UNSET
    tool_choice: Literal["none", "auto", "required"] | dict[str, Any] | UnsetType | None = UNSET
    parallel_tool_calls: bool | UnsetType | None = UNSET
    functions: list[FunctionDefinition] | UnsetType | None = UNSET
    function_call: Literal["none", "auto"] | dict[str, Any] | UnsetType | None = UNSET
    response_format: ResponseFormat | UnsetType | None = UNSET
    metadata: dict[str, str] | UnsetType | None = UNSET
    store: bool | UnsetType | None = UNSET
    service_tier: str | UnsetType | None = UNSET
    reasoning_effort: str | UnsetType | None = UNSET
    verbosity: str | UnsetType | None = UNSET
    modalities: list[str] | UnsetType | None = UNSET
    audio: dict[str, Any] | UnsetType | None = UNSET
    prediction: dict[str, Any] | UnsetType | None = UNSET
    web_search_options: dict[str, Any] | UnsetType = UNSET
    prompt_cache_key: str | UnsetType = UNSET
    prompt_cache_retention: str | UnsetType | None = UNSET
    safety_identifier: str | UnsetType = UNSET

    @property
    def is_stream(self) -> bool:
        return self.stream is True

    @property
    def wants_stream_usage(self) -> bool:
        opts = self.stream_options
        return isinstance(opts, StreamOptions) and opts.include_usage is True

    @property
    def output_token_limit(self) -> int | None:
        """The client's cap on generated tokens, whichever of the two names it used."""
        for value in (self.max_completion_tokens, self.max_tokens):
            if isinstance(value, int):
                return value
        return None

    def with_output_limit(self, most: int | None) -> ChatCompletionRequest:
        """This request with its max_tokens cut to `most` (itself when within it)."""
        limit = self.output_token_limit
        if most is None or limit is None or limit <= most:
            return self
        changes = {
            name: most
            for name in ("max_tokens", "max_completion_tokens")
            if isinstance(getattr(self, name), int)
        }
        return msgspec.structs.replace(self, **changes)


CHAT_REQUEST_FIELDS = frozenset(ChatCompletionRequest.__struct_fields__)


def is_set(value: object) -> bool:
    """True when the client sent the field with a non-null value."""
    return value is not UNSET and value is not None


def text_of(content: object) -> str:
    """Plain text of a message content (string or parts); non-text parts are skipped."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(part.text for part in content if isinstance(part, TextPart))
    return ""


encode = msgspec.json.Encoder().encode
