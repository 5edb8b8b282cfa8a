"""The provider adapter contract and the pieces every adapter shares.

An adapter translates the internal (OpenAI-shaped) request into one provider's wire format,
and the provider's responses, stream events and errors back. It never does I/O itself: it
builds an UpstreamCall and reads bytes it is given, so it is testable as plain functions.
"""

from __future__ import annotations

import base64
import logging
import struct
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

import msgspec

from perpetuo.providers.listing import ModelPage
from perpetuo.providers.upstream_errors import openai_style_error
from perpetuo.schema.chat import ChatCompletionRequest
from perpetuo.schema.embeddings import EmbeddingRequest
from perpetuo.schema.endpoints import Endpoint
from perpetuo.schema.errors import UpstreamError, UpstreamErrorKind
from perpetuo.schema.operations import OperationRequest
from perpetuo.schema.usage import clamp_counts
from perpetuo.transport.caps import ResponseCaps
from perpetuo.transport.egress import EgressPolicy
from perpetuo.transport.route import ConnectOptions
from perpetuo.transport.sse import SSEDecoder, SSEEvent
from perpetuo.transport.url import URL, Timeouts

if TYPE_CHECKING:
    from perpetuo.config.model import ProviderConfig
    from perpetuo.transport.client import HTTPClient

Json = dict[str, Any]
log = logging.getLogger("perpetuo.upstream")


class EventSource(Protocol):
    """The events of a streamed answer, decoded from its body as the bytes arrive."""

    def __aiter__(self) -> AsyncIterator[SSEEvent]: ...

    def has_pending(self) -> bool:
        """Are decoded events waiting (so the caller can read on without waiting)?"""
        ...


class CredentialSource(Protocol):
    """Upstream credentials that live briefly and are fetched with I/O (OAuth tokens, cloud
    instance roles). The router awaits `ready` before each attempt: it returns at once while
    the cached credentials are fresh, and fetches new ones (one fetch for all waiters) when
    they are missing or about to expire. Adapters then read them without I/O."""

    async def ready(self, client: HTTPClient) -> None: ...


@dataclass(frozen=True, slots=True)
class CloudAccess:
    """What a deployment on a cloud platform needs beyond an API key, resolved once from its
    provider's config: the region (or location), the default endpoint there, the project, and
    the credentials. `problem` says why no call can be made (no credentials found)."""

    region: str
    endpoint: str
    credentials: CredentialSource | None = None
    project: str | None = None
    problem: str | None = None


@dataclass(frozen=True, slots=True)
class Target:
    """One deployment's connection details: provider, upstream model, credentials."""

    provider_name: str
    provider_type: str
    model: str
    base_url: URL
    api_key: str | None = field(default=None, repr=False)
    api_version: str | None = None
    organization: str | None = None
    project: str | None = None
    headers: tuple[tuple[str, str], ...] = ()
    timeouts: Timeouts = field(default_factory=Timeouts)
    verify_tls: bool = True
    # The provider's proxy and TLS files (transport/route.py); None: none of them set.
    connection: ConnectOptions | None = None
    # Set for deployments a tenant configured: every connection is checked by the policy.
    egress: EgressPolicy | None = None
    # Why this deployment cannot be called at all ("no API key configured (VAR is empty)"):
    # attempts fail at once with this message instead of calling upstream.
    key_problem: str | None = None
    caps: ResponseCaps = field(default_factory=ResponseCaps)  # what a response may send
    region: str | None = None  # AWS region or Google Cloud location (Bedrock, Vertex AI)
    input_type: str | None = None  # embeddings' default input_type (Cohere's embed models)
    # Short-lived credentials (see CredentialSource); None for providers with a static key.
    credentials: CredentialSource | None = field(default=None, repr=False, compare=False)


@dataclass(frozen=True, slots=True)
class NativeRequest:
    """A client request written in a provider wire format (an ingress dialect). Deployments
    that speak that format get it as sent, with only the routing fields rewritten (the native
    lane); the others get the translated chat form."""

    format: str  # "anthropic_messages" | "openai_responses"
    body: dict[str, Any]  # the client's JSON object
    headers: tuple[tuple[str, str], ...] = ()  # the format's own headers (anthropic-beta, ...)
    native_only: tuple[str, ...] = ()  # what a translated attempt cannot serve
    # (deployment id, body): what that one deployment gets instead of `body`, e.g. a
    # continuation of a conversation whose state lives on that deployment's provider.
    pinned: tuple[str, dict[str, Any]] | None = None

    def body_for(self, deployment_id: str) -> dict[str, Any]:
        pinned = self.pinned
        return pinned[1] if pinned is not None and pinned[0] == deployment_id else self.body

    def refuse_translation(self, provider: str) -> UpstreamError:
        """Why a deployment of another format cannot serve this request."""
        features = ", ".join(self.native_only)
        return unsupported(
            f"{features} cannot be translated for provider {provider!r}: route this model to "
            f"a deployment that speaks the {self.format} format",
            self.native_only[0].split(" ", 1)[0],
        )


@dataclass(slots=True)
class UpstreamCall:
    """An HTTP request ready to send. The body is bytes, or the pieces of an upload."""

    url: URL
    headers: list[tuple[str, str]]
    body: bytes | tuple[bytes | memoryview, ...]
    method: str = "POST"


@dataclass(slots=True)
class OperationAnswer:
    """A non-chat answer in the client's format: a JSON object, or for the few operations
    that answer otherwise (transcripts as text, srt, vtt) the bytes as they came."""

    data: Json | None = None
    text: bytes | None = None
    content_type: str = "application/json"


class ProviderAdapter:
    """Base for adapters; subclasses override what their provider supports."""

    type: ClassVar[str] = ""
    default_api_base: ClassVar[str | None] = None
    requires_key: bool = True  # calls without an API key cannot succeed
    supports_embeddings: ClassVar[bool] = False
    reports_cost: bool = False  # answers' usage says what the provider charged (`cost`, USD)
    # What this adapter can serve (schema/endpoints.py); a deployment serves the part of it
    # its model is for (endpoints_for).
    endpoints: frozenset[str] = frozenset({Endpoint.CHAT})

    def endpoints_for(self, model_endpoints: frozenset[str] | None) -> frozenset[str]:
        """What a deployment serves, given what its model is for (None: not known, so
        everything this adapter offers)."""
        if model_endpoints is None:
            return self.endpoints
        return model_endpoints & self.endpoints

    def chat_request(
        self, request: ChatCompletionRequest, target: Target, extras: Json
    ) -> UpstreamCall:
        raise NotImplementedError

    def chat_response(self, body: bytes, target: Target) -> Json:
        """An OpenAI `chat.completion` object from a successful upstream body."""
        raise NotImplementedError

    def chat_stream(self, events: AsyncIterator[SSEEvent], target: Target) -> AsyncIterator[Json]:
        """OpenAI `chat.completion.chunk` objects; usage, when known, in a final chunk
        with empty choices. Errors inside the stream raise UpstreamError."""
        raise NotImplementedError

    def embeddings_request(self, request: EmbeddingRequest, target: Target) -> UpstreamCall:
        raise unsupported(f"provider type {self.type!r} does not offer embeddings")

    def embeddings_response(self, body: bytes, target: Target, request: EmbeddingRequest) -> Json:
        raise unsupported(f"provider type {self.type!r} does not offer embeddings")

    def operation_request(self, request: OperationRequest, target: Target) -> UpstreamCall:
        """The upstream call for a non-chat operation (images, audio, rerank, ...)."""
        raise unsupported(
            f"provider type {self.type!r} does not offer {request.operation.replace('.', ' ')}"
        )

    def operation_response(
        self, request: OperationRequest, body: bytes, content_type: str, target: Target
    ) -> OperationAnswer:
        """The client's answer from a successful upstream body (not called for streams)."""
        raise unsupported(f"provider type {self.type!r} does not offer {request.operation}")

    def error(self, status: int, headers: Mapping[str, str], body: bytes) -> UpstreamError:
        """Classify a non-2xx upstream answer."""
        return openai_style_error(status, headers, body)

    def validate_target(self, target: Target) -> None:
        """Raise ValueError naming what a deployment of this type is missing."""

    def probe_request(self, target: Target) -> UpstreamCall:
        """A cheap authenticated request (listing models) to check reachability and the key."""
        raise unsupported(f"provider type {self.type!r} offers no probe")

    def models_request(self, target: Target, cursor: str | None = None) -> UpstreamCall:
        """The provider's model list (one page of it; `cursor` from the page before)."""
        raise unsupported(f"provider type {self.type!r} offers no model list")

    def models_page(self, body: bytes, target: Target) -> ModelPage:
        raise unsupported(f"provider type {self.type!r} offers no model list")

    def stream_events(self, chunks: AsyncIterator[bytes], target: Target) -> EventSource:
        """The events of a streamed answer's body: SSE, unless the provider frames its
        streams otherwise (Bedrock's binary event stream)."""
        return SSEDecoder(chunks, target.caps.max_event_bytes)

    def cloud_access(
        self, provider: ProviderConfig, egress: EgressPolicy | None
    ) -> CloudAccess | None:
        """Region, endpoint and credentials for providers on a cloud platform; None for the
        others. `egress` is set for a tenant's provider: it may not use the gateway's own
        environment or instance credentials, and its credential endpoints are checked by the
        policy. ValueError names what is wrong in the config."""
        return None

    # -- the native lane: a client dialect that is this provider's own wire format ---------

    def speaks(self, native_format: str) -> bool:
        """Can requests in `native_format` be forwarded to this provider as they are?"""
        return False

    def native_call(
        self, native: NativeRequest, body: Json, target: Target, max_output: int | None
    ) -> UpstreamCall:
        """The client's `body` with the upstream model (and a too-large output limit) swapped."""
        raise NotImplementedError

    def native_response(self, native_format: str, body: bytes, target: Target) -> Json:
        """The chat-form view of a native answer (metering, guardrails, the cache)."""
        raise NotImplementedError

    def native_stream(
        self, native_format: str, events: AsyncIterator[SSEEvent], target: Target
    ) -> AsyncIterator[Json]:
        """Chat chunks for the events of a native stream (the events reach the client as
        they are; these are for metering, guardrails and the cache)."""
        raise NotImplementedError


# --- shared helpers ------------------------------------------------------------------------

_json_decode = msgspec.json.decode
encode_json = msgspec.json.Encoder().encode


def decode_json(body: bytes | str, what: str = "response") -> Any:
    try:
        return _json_decode(body)
    except (msgspec.DecodeError, UnicodeDecodeError):  # msgspec: invalid UTF-8 is the latter
        raise UpstreamError(
            UpstreamErrorKind.BAD_RESPONSE, f"upstream sent an unreadable {what}"
        ) from None


def decode_object(body: bytes | str, what: str = "response") -> Json:
    value = decode_json(body, what)
    if not isinstance(value, dict):
        raise UpstreamError(UpstreamErrorKind.BAD_RESPONSE, f"upstream {what} is not a JSON object")
    return value


def with_model(body: Json, model: str, limit_field: str, max_output: int | None) -> bytes:
    """A native body for one deployment: its upstream model, and the output limit cut to
    what the model can produce (the rest exactly as the client sent it)."""
    changes: Json = {"model": model}
    limit = body.get(limit_field)
    if max_output is not None and isinstance(limit, int) and limit > max_output:
        changes[limit_field] = max_output
    return encode_json({**body, **changes})


def unsupported(message: str, param: str | None = None) -> UpstreamError:
    return UpstreamError(UpstreamErrorKind.UNSUPPORTED, message, status=400, param=param)


def now() -> int:
    return int(time.time())


def json_headers(*pairs: tuple[str, str]) -> list[tuple[str, str]]:
    return [("content-type", "application/json"), ("accept-encoding", "gzip"), *pairs]


def checked_usage(usage: Any, target: Target) -> Any:
    """An upstream's usage object with its numbers clamped in place (schema/usage.py); one
    out of range is logged as an upstream anomaly, once a minute per deployment."""
    if isinstance(usage, dict) and (bad := clamp_counts(usage)) is not None:
        _anomaly(target, f"usage {bad} out of range, clamped")
    return usage


_ANOMALY_INTERVAL = 60.0
_last_anomaly: dict[str, float] = {}


def _anomaly(target: Target, what: str) -> None:
    deployment = f"{target.provider_name}/{target.model}"
    now = time.monotonic()
    if now - _last_anomaly.get(deployment, -_ANOMALY_INTERVAL) < _ANOMALY_INTERVAL:
        return
    if len(_last_anomaly) > 10_000:  # tenants' deployments come and go: stay bounded
        _last_anomaly.clear()
    _last_anomaly[deployment] = now
    log.warning("upstream anomaly from deployment %s: %s", deployment, what)


def data_url_parts(url: str) -> tuple[str, str] | None:
    """(media type, base64 data) of a `data:` URL, or None for other URLs."""
    if not url.startswith("data:"):
        return None
    header, _, data = url[5:].partition(",")
    media_type, _, encoding = header.partition(";")
    if encoding != "base64" or not data:
        return None
    return media_type or "application/octet-stream", data


def floats_to_base64(vector: list[float]) -> str:
    """OpenAI's base64 embedding encoding: little-endian float32."""
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode("ascii")
