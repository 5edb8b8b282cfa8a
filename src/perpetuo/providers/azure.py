"""Azure OpenAI: OpenAI's wire format behind deployment URLs, `api-version` and `api-key`.

With `api_version: v1` the newer unversioned API is used (`/openai/v1/...`, model in the body).
"""

from __future__ import annotations

from perpetuo.providers.base import Target, json_headers
from perpetuo.providers.openai import OpenAIAdapter
from perpetuo.providers.presets import OpenAIQuirks
from perpetuo.schema.endpoints import ALL_ENDPOINTS, Endpoint
from perpetuo.schema.operations import IMAGES_EDITS, OperationRequest
from perpetuo.transport.url import URL

DEFAULT_API_VERSION = "2024-10-21"
# The Responses API is not on the older dated versions: this one is used for it when the
# provider's api_version is older (Azure documents it as the first to serve /responses).
RESPONSES_API_VERSION = "2025-04-01-preview"
IMAGE_EDITS_API_VERSION = "2025-04-01-preview"  # the first to serve images/edits (gpt-image-1)
# Azure OpenAI offers no moderations endpoint (Azure AI Content Safety is another service).
AZURE_ENDPOINTS = ALL_ENDPOINTS - {Endpoint.RERANK, Endpoint.MODERATIONS}


class AzureOpenAIAdapter(OpenAIAdapter):
    def __init__(self) -> None:
        super().__init__(
            "azure",
            OpenAIQuirks(responses_api=True, endpoints=AZURE_ENDPOINTS, chat_models_complete=False),
        )

    def validate_target(self, target: Target) -> None:
        if not target.base_url.origin.host:
            raise ValueError("api_base is required (https://<resource>.openai.azure.com)")

    def auth_headers(self, target: Target) -> list[tuple[str, str]]:
        headers = json_headers()
        if target.api_key:
            headers.append(("api-key", target.api_key))
        headers.extend(target.headers)
        return headers

    def _url(self, target: Target, operation: str, at_least: str = "") -> URL:
        version = target.api_version or DEFAULT_API_VERSION
        if version == "v1":
            return target.base_url.join(f"openai/v1/{operation}")
        version = max(version, at_least)  # dated versions order as strings
        return target.base_url.join(
            f"openai/deployments/{target.model}/{operation}", f"api-version={version}"
        )

    def operation_url(self, target: Target, request: OperationRequest) -> URL:
        edits = request.operation == IMAGES_EDITS
        return self._url(target, request.path, IMAGE_EDITS_API_VERSION if edits else "")

    def models_url(self, target: Target) -> URL:
        version = target.api_version or DEFAULT_API_VERSION
        if version == "v1":
            return target.base_url.join("openai/v1/models")
        return target.base_url.join("openai/models", f"api-version={version}")

    def chat_url(self, target: Target) -> URL:
        return self._url(target, "chat/completions")

    def embeddings_url(self, target: Target) -> URL:
        return self._url(target, "embeddings")

    def responses_url(self, target: Target) -> URL:
        version = target.api_version or DEFAULT_API_VERSION
        if version == "v1":
            return target.base_url.join("openai/v1/responses")
        # The deployment is named in the body's `model`, not in the path, for /responses.
        version = max(version, RESPONSES_API_VERSION)
        return target.base_url.join("openai/responses", f"api-version={version}")
