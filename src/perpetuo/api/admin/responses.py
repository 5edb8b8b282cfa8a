"""The error answers the admin API documents: which statuses a route may give, and their body.

Every error has OpenAI's shape, `{"error": {"message", "type", "param", "code"}}`. Routers
declare the statuses their routes share (`responses=WORKSPACE` and so on) and a route adds
its own (`responses=errors(409)`), so the OpenAPI schema lists what the code really answers.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class ErrorDetail(BaseModel):
    model_config = ConfigDict(extra="forbid")

    message: str = Field(description="What went wrong, for people")
    type: str = Field(description="The kind of error, e.g. invalid_request_error")
    param: str | None = Field(description="The parameter or field at fault, when there is one")
    code: str | None = Field(description="A stable machine-readable code, e.g. not_found")


class ErrorBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    error: ErrorDetail


DESCRIPTIONS = {
    400: "The request is not what the route takes (e.g. a webhook's signature does not match)",
    401: "Not signed in: no credential, or a wrong or ended one (token, password)",
    403: "Not allowed: the role, or the server's policy or set-up (e.g. no mail)",
    404: "No such resource, or a workspace the caller has no role in",
    409: "Conflicts with the current state (a duplicate, the last owner, ...)",
    410: "The invitation or mailed link was used, revoked or has expired",
    422: "Invalid request: the body, a parameter or the cursor (`param` names it)",
    429: "Too many attempts (`Retry-After` says when to try again)",
    502: "The upstream provider refused the call or could not be reached",
    503: "The server is not configured for this (e.g. no credential encryption key)",
}


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` entries for these error statuses."""
    return {code: {"model": ErrorBody, "description": DESCRIPTIONS[code]} for code in statuses}


def json_errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The same for a route whose success is not JSON: FastAPI would document its errors in
    the route's media type. (ErrorBody is in the schema's components through `errors`.)"""
    content = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}
    return {code: {"description": DESCRIPTIONS[code], "content": content} for code in statuses}


# What routes have in common, by who may call them. 422 is on every route that takes a body
# or a parameter (either can be malformed); FastAPI's own 422 schema is not what we answer.
SIGNED_IN = errors(401, 422)  # any signed-in caller (or the master key)
PLATFORM = errors(401, 403, 422)  # platform administrators only
# Any role in the workspace (no role: 404, as if none); a custom role may lack even what a
# viewer can do (control/permissions.py), hence the 403.
WORKSPACE = errors(401, 403, 404, 422)
WORKSPACE_ROLE = errors(401, 403, 404, 422)  # a role above viewer in the workspace
