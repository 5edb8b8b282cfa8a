"""A mock of Vertex AI, per the public reference, with its own Google OAuth token endpoint.

- `POST /token`: the service-account flow. The JWT assertion (jwt-bearer grant) must be
  signed RS256 by the test service account's key, checked with its public key, for the
  `cloud-platform` scope, for Google's token audience and a lifetime of at most an hour;
  the answer is an access token that expires after `token_lifetime` seconds. Also the
  refresh_token grant of gcloud user credentials.
- `GET /computeMetadata/v1/instance/service-accounts/default/token`: the GCE metadata server
  (`Metadata-Flavor: Google` required).
- `POST /{v1|v1beta1}/projects/{project}/locations/{location}/publishers/{publisher}/models/
  {model}:{method}`: only with a token this mock issued and that has not expired, for the
  mock's project and location. Gemini (`publishers/google`: generateContent,
  streamGenerateContent) answers as the Gemini mock does (its request checks included, plus
  Vertex's: every content has a role); Claude (`publishers/anthropic`: rawPredict,
  streamRawPredict) needs `anthropic_version: vertex-2023-10-16` and no `model`, and is
  checked and answered as the Anthropic mock does; `predict` serves text embeddings.
Errors are Google's shape, but Claude's own, which keep Anthropic's.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from typing import Any
from urllib.parse import parse_qs

import jwt
from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.mocks import anthropic_mock
from tests.mocks.gemini_mock import GeminiMock, google_error
from tests.mocks.openai_mock import fake_vector

PROJECT = "perpetuo-test-project"
LOCATION = "us-central1"
SCOPE = "https://www.googleapis.com/auth/cloud-platform"
CLIENT_EMAIL = "gateway@perpetuo-test-project.iam.gserviceaccount.com"
KEY_ID = "mock-key-id-0001"
REFRESH_TOKEN = "mock-gcloud-refresh-token"
ANTHROPIC_VERSION = "vertex-2023-10-16"
GOOGLE_TOKEN_AUDIENCE = "https://oauth2.googleapis.com/token"  # whatever token_uri says

_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
PRIVATE_KEY_PEM = _KEY.private_bytes(
    serialization.Encoding.PEM,
    serialization.PrivateFormat.PKCS8,
    serialization.NoEncryption(),
).decode()
PUBLIC_KEY = _KEY.public_key()
# A key Google never issued for the account: its assertions fail the signature check.
FORGED_KEY_PEM = (
    rsa.generate_private_key(public_exponent=65537, key_size=2048)
    .private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    .decode()
)


def service_account(token_uri: str, **changes: Any) -> dict[str, Any]:
    """A service-account key file's fields, as Google issues them."""
    return {
        "type": "service_account",
        "project_id": PROJECT,
        "private_key_id": KEY_ID,
        "private_key": PRIVATE_KEY_PEM,
        "client_email": CLIENT_EMAIL,
        "client_id": "100000000000000000001",
        "auth_uri": "https://accounts.google.com/o/oauth2/auth",
        "token_uri": token_uri,
        **changes,
    }


def oauth_error(status: int, error: str, description: str) -> web.Response:
    return web.json_response({"error": error, "error_description": description}, status=status)


class VertexMock(GeminiMock):
    def __init__(self) -> None:
        super().__init__()
        self.token_lifetime = 3600
        self.tokens: dict[str, float] = {}  # issued token -> when it expires
        self.token_requests = 0
        self.refuse_tokens = False  # every exchange answers invalid_grant (a revoked key)
        self.token_delay = 0.0  # seconds the token endpoint takes to answer

    def reset(self) -> None:
        super().reset()
        self.token_lifetime = 3600
        self.token_requests = 0
        self.refuse_tokens = False
        self.token_delay = 0.0

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/token", self.token)
        app.router.add_get(
            "/computeMetadata/v1/instance/service-accounts/default/token", self.metadata
        )
        app.router.add_get(
            "/{version:v1|v1beta1}/projects/{project}/locations/{location}/models", self.models
        )
        app.router.add_post(
            "/{version:v1|v1beta1}/projects/{project}/locations/{location}/publishers/"
            "{publisher}/models/{model_method}",
            self.predict,
        )

    # -- tokens ----------------------------------------------------------------------------

    def issue(self) -> web.Response:
        token = f"ya29.mock-{len(self.tokens) + 1:04d}"
        self.tokens[token] = time.time() + self.token_lifetime
        return web.json_response(
            {"access_token": token, "expires_in": self.token_lifetime, "token_type": "Bearer"}
        )

    async def token(self, request: web.Request) -> web.Response:
        self.token_requests += 1
        await asyncio.sleep(self.token_delay)
        if self.refuse_tokens:
            return oauth_error(400, "invalid_grant", "Token has been expired or revoked.")
        form = {k: v[0] for k, v in parse_qs((await request.read()).decode()).items()}
        if form.get("grant_type") == "refresh_token":
            if form.get("refresh_token") != REFRESH_TOKEN:
                return oauth_error(400, "invalid_grant", "Bad Request")
            return self.issue()
        if form.get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer":
            return oauth_error(400, "unsupported_grant_type", "Invalid grant_type")
        try:
            header = jwt.get_unverified_header(form.get("assertion", ""))
            claims = jwt.decode(
                form.get("assertion", ""),
                PUBLIC_KEY,
                algorithms=["RS256"],
                audience=GOOGLE_TOKEN_AUDIENCE,
                options={"require": ["iss", "aud", "iat", "exp"]},
            )
        except jwt.InvalidTokenError as exc:
            return oauth_error(400, "invalid_grant", f"Invalid JWT: {exc}")
        if header.get("kid") != KEY_ID or claims["iss"] != CLIENT_EMAIL:
            return oauth_error(400, "invalid_grant", "Invalid JWT Signature.")
        if SCOPE not in str(claims.get("scope", "")).split():
            return oauth_error(400, "invalid_scope", "Invalid OAuth scope")
        if claims["exp"] - claims["iat"] > 3600:
            return oauth_error(400, "invalid_grant", "Invalid JWT: expiry too far")
        return self.issue()

    async def metadata(self, request: web.Request) -> web.Response:
        self.token_requests += 1
        if request.headers.get("metadata-flavor") != "Google":
            return web.Response(status=403, text="Missing Metadata-Flavor:Google header.")
        return self.issue()

    def _check_bearer(self, request: web.Request) -> web.Response | None:
        token = request.headers.get("authorization", "").removeprefix("Bearer ")
        expires = self.tokens.get(token)
        if expires is None or expires <= time.time():
            return google_error(
                401,
                "UNAUTHENTICATED",
                "Request had invalid authentication credentials. Expected OAuth 2 access "
                "token, login cookie or other valid authentication credential.",
            )
        return None

    # -- models ----------------------------------------------------------------------------

    async def models(self, request: web.Request) -> web.Response:
        """projects.locations.models.list: the project's own models (none here)."""
        await self.record(request)
        if (denied := self._check_bearer(request)) is not None:
            return denied
        if request.match_info["project"] != PROJECT:
            return google_error(403, "PERMISSION_DENIED", "Permission denied on the project")
        return web.json_response({"models": []})

    async def predict(self, request: web.Request) -> web.StreamResponse:
        recorded = await self.record(request)
        if (denied := self._check_bearer(request)) is not None:
            return denied
        info = request.match_info
        if info["project"] != PROJECT:
            return google_error(
                403,
                "PERMISSION_DENIED",
                f"Permission 'aiplatform.endpoints.predict' denied on project {info['project']}",
            )
        if info["location"] != LOCATION:
            return google_error(404, "NOT_FOUND", f"Location {info['location']} is not found.")
        fault = self.take_fault()
        if (faulted := await self.apply_fault(request, fault)) is not None:
            return faulted
        model, _, method = info["model_method"].partition(":")
        publisher, body = info["publisher"], recorded.body
        if publisher == "anthropic" and method in ("rawPredict", "streamRawPredict"):
            return await self.claude(request, body, model, method == "streamRawPredict", fault)
        if publisher == "google" and method == "predict":
            return self.embed_instances(body)
        if publisher == "google" and method in ("generateContent", "streamGenerateContent"):
            contents = body.get("contents") if isinstance(body, dict) else None
            if isinstance(contents, list) and any("role" not in c for c in contents):
                return google_error(
                    400, "INVALID_ARGUMENT", "Please use a valid role: user, model."
                )
            return await self.generate(request, body, model, method, fault)
        return google_error(
            404,
            "NOT_FOUND",
            f"Publisher Model `projects/{PROJECT}/locations/{LOCATION}/publishers/{publisher}/"
            f"models/{model}` was not found or your project does not have access to it.",
        )

    async def claude(
        self, request: web.Request, body: Any, model: str, stream: bool, fault: Any
    ) -> web.StreamResponse:
        version = body.get("anthropic_version") if isinstance(body, dict) else None
        # The documented vertex-2023-10-16, or a dated version (Anthropic's SDK sends its own).
        if version != ANTHROPIC_VERSION and not re.fullmatch(r"\d{4}-\d{2}-\d{2}", str(version)):
            return anthropic_mock.anthropic_error(
                400, "invalid_request_error", "anthropic_version: vertex-2023-10-16 is required"
            )
        if "model" in body:
            return anthropic_mock.anthropic_error(
                400, "invalid_request_error", "model: Extra inputs are not permitted"
            )
        messages_body = {k: v for k, v in body.items() if k != "anthropic_version"}
        try:
            anthropic_mock.validate({**messages_body, "model": model})
        except anthropic_mock.Invalid as exc:
            return anthropic_mock.anthropic_error(400, "invalid_request_error", str(exc))
        conv = anthropic_mock.conversation(messages_body)
        if "trigger context overflow" in conv.last_user_text:
            return anthropic_mock.anthropic_error(
                400, "invalid_request_error", "prompt is too long: 210000 tokens > 200000 maximum"
            )
        if "trigger overloaded" in conv.last_user_text:
            return anthropic_mock.anthropic_error(529, "overloaded_error", "Overloaded")
        if "trigger quota" in conv.last_user_text:  # Vertex's own quota, in Google's shape
            return google_error(
                429, "RESOURCE_EXHAUSTED", "Quota exceeded for aiplatform.googleapis.com."
            )
        out, blocks, reason, stop_sequence = anthropic_mock.answer(
            conv, anthropic_mock.thinking_on(messages_body)
        )
        message = {
            "id": f"msg_vrtx_{len(self.requests)}",
            "type": "message",
            "role": "assistant",
            "model": model.split("@")[0],
            "content": blocks,
            "stop_reason": reason,
            "stop_sequence": stop_sequence,
            "usage": anthropic_mock.usage(out, conv),
        }
        if not stream:
            return web.json_response(message)
        fail = "trigger stream error" in conv.last_user_text
        return await self.stream_events(request, anthropic_mock.stream(message, out, fail), fault)

    def embed_instances(self, body: Any) -> web.Response:
        instances = body.get("instances") if isinstance(body, dict) else None
        if not isinstance(instances, list) or not instances:
            return google_error(400, "INVALID_ARGUMENT", "instances: at least one is required")
        dims = ((body.get("parameters") or {}).get("outputDimensionality")) or 8
        predictions = [
            {
                "embeddings": {
                    "values": fake_vector(str(item.get("content", "")), dims),
                    "statistics": {
                        "token_count": len(str(item.get("content", "")).split()),
                        "truncated": False,
                    },
                }
            }
            for item in instances
        ]
        return web.json_response(
            {"predictions": predictions, "metadata": {"billableCharacterCount": 7}}
        )


# -- wiring ---------------------------------------------------------------------------------------

MOCK_NAME = "vertex"
MOCK_CLASS = VertexMock
ENV: dict[str, str] = {}


def config_fragment(mock: VertexMock) -> dict[str, Any]:
    base = {"type": "vertex", "api_base": mock.url, "location": LOCATION}
    key = json.dumps(service_account(f"{mock.url}/token"))
    # Its own token endpoint address, so its token is cached apart from vertex-main's.
    refreshing = json.dumps(service_account(f"{mock.url}/token?for=refresh"))
    forged = json.dumps(service_account(f"{mock.url}/token", private_key=FORGED_KEY_PEM))
    return {
        "providers": {
            "vertex-main": {**base, "service_account_json": key},
            "vertex-refresh": {**base, "service_account_json": refreshing},
            "vertex-forged": {**base, "service_account_json": forged},
        },
        "models": {
            "vertex-gemini": {
                "deployments": [{"provider": "vertex-main", "model": "gemini-2.5-flash"}]
            },
            "vertex-claude": {
                "deployments": [{"provider": "vertex-main", "model": "claude-3-5-haiku@20241022"}],
                "extra_params": ["thinking"],
            },
            "vertex-refresh": {
                "deployments": [{"provider": "vertex-refresh", "model": "gemini-2.5-flash"}]
            },
            "vertex-forged": {
                "deployments": [{"provider": "vertex-forged", "model": "gemini-2.5-flash"}]
            },
            "vertex-embed": {
                "deployments": [{"provider": "vertex-main", "model": "text-embedding-005"}]
            },
        },
    }
