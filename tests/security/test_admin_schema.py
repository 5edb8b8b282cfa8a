"""The admin API answers as its OpenAPI schema says, whoever calls it.

Schemathesis reads /openapi.json from a gateway process (on PostgreSQL, which refuses values
SQLite would store) and sends generated requests, valid and invalid, over HTTP as four
callers: a platform administrator; a viewer of a workspace (the wrong role for its writes and
for everything platform-wide); a workspace API key (a data-plane credential, which the admin
API must refuse); and nobody. Every answer must be a documented status with the documented
content type and body, never a 5xx; a 405 must say in `Allow` what the path does take.
A fixed seed and derandomized generation make every run send the same requests.
"""

from __future__ import annotations

import base64
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import schemathesis
from schemathesis.config import SchemathesisConfig
from schemathesis.engine import Status, events

from perpetuo.auth.credential_crypto import new_key_spec
from tests.support.gateway import GatewayProcess
from tests.support.services import PostgresServer

PASSWORD = "Correct-horse-42"
CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
)
# Ends the caller's own session, after which every other request would be a 401.
LOGOUT = "POST /api/auth/logout"
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE")


@dataclass
class FuzzRun:
    failures: list[str] = field(default_factory=list)
    statuses: dict[str, set[int]] = field(default_factory=lambda: defaultdict(set))


def fuzz(
    url: str,
    *,
    examples: int,
    headers: dict[str, str] | None = None,
    parameters: dict[str, str] | None = None,
    operations: list[dict[str, Any]] | None = None,
    mode: str = "all",
) -> FuzzRun:
    """One schemathesis run of the fuzzing phase over every operation; `mode` "all" sends
    valid and invalid data, "positive" only valid (to get past validation to the checks of
    who may do what)."""
    config = SchemathesisConfig.from_dict(
        {
            "seed": 20261204,
            "suppress-health-check": ["all"],
            "headers": headers or {},
            "parameters": parameters or {},
            "auth": {"auto-signup": False},  # a caller without credentials stays without
            "checks": {"enabled": False, **{name: {"enabled": True} for name in CHECKS}},
            "generation": {
                "mode": mode,
                "max-examples": examples,
                "deterministic": True,
                "database": "none",
            },
            "phases": {
                "examples": {"enabled": False},
                "coverage": {"enabled": False},
                "stateful": {"enabled": False},
                # Values learnt from answers (fresh ids) would change the requests run to run.
                "fuzzing": {
                    "extra-data-sources": {"responses": False},
                    "error-feedback": {"enabled": False},
                },
            },
            "operations": operations or [],
        }
    )
    schema = schemathesis.openapi.from_url(f"{url}/openapi.json", config=config)
    schema.config.update(base_url=url)
    run = FuzzRun()
    for event in schemathesis.engine.from_schema(schema).execute():
        if isinstance(event, events.ScenarioFinished):
            run.failures.extend(_failures(event))
            for interaction in event.recorder.interactions.values():
                if interaction.response is not None:
                    run.statuses[event.recorder.label].add(interaction.response.status_code)
        elif isinstance(event, events.NonFatalError | events.FatalError):
            run.failures.append(f"schemathesis could not run: {event!r}"[:1000])
    return run


def _failures(event: events.ScenarioFinished) -> Iterator[str]:
    for case_id, nodes in event.recorder.checks.items():
        for node in nodes:
            if node.status != Status.FAILURE or node.failure_info is None:
                continue
            failure = node.failure_info.failure
            seen = event.recorder.interactions.get(case_id)
            answer = ""
            if seen is not None and seen.response is not None:
                request, response = seen.request, seen.response
                answer = (
                    f"\n    {request.method} {request.uri} body={(request.body or b'')[:300]!r}"
                    f"\n    -> {response.status_code} {response.content[:300]!r}"
                )
            yield f"{event.recorder.label}: {failure.title}: {failure.message[:300]}{answer}"


def _report(run: FuzzRun) -> str:
    unique = sorted(set(run.failures))
    return f"{len(unique)} distinct failures:\n" + "\n".join(unique[:40])


@dataclass
class Callers:
    url: str
    schema: dict[str, Any]
    admin: str  # access token of the platform administrator (the first account)
    viewer: str  # access token of someone who is only a viewer, of `viewer_ws`
    api_key: str  # a workspace API key: good for /v1, not for the admin API
    admin_ws: str
    doomed_ws: str  # what the administrator's DELETE of a workspace may take
    viewer_ws: str

    def bearer(self, token: str) -> dict[str, str]:
        return {"authorization": f"Bearer {token}"}

    def secured(self) -> set[str]:
        """Operations that need a caller (declare the bearer scheme)."""
        return {
            f"{method.upper()} {path}"
            for path, item in self.schema["paths"].items()
            for method, operation in item.items()
            if operation.get("security")
        }


@pytest.fixture(scope="module")
def callers(
    postgres: PostgresServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Callers]:
    env = {
        "PERPETUO_DATABASE_URL": postgres.create_database("admin_schema"),
        "PERPETUO_ENCRYPTION_KEYS": new_key_spec("k1"),  # credentials can be stored
    }
    with GatewayProcess({}, tmp_path_factory.mktemp("schema"), env=env) as gateway:
        http = httpx.Client(base_url=gateway.url, timeout=30)
        # The first account to sign up administers the platform.
        admin = _signup(http, {"email": "root@example.com", "password": PASSWORD})
        as_admin = {"authorization": f"Bearer {admin}"}
        ws = [
            _created(http.post("/api/workspaces", headers=as_admin, json={"name": n}))
            for n in "abc"
        ]
        invite = _created(
            http.post(
                f"/api/workspaces/{ws[2]}/invites",
                headers=as_admin,
                json={"email": "viewer@example.com", "role": "viewer"},
            ),
            "token",
        )
        viewer = _signup(
            http, {"email": "viewer@example.com", "password": PASSWORD, "invite_token": invite}
        )
        key = _created(
            http.post(f"/api/workspaces/{ws[2]}/keys", headers=as_admin, json={"name": "k"}), "key"
        )
        schema = http.get("/openapi.json").json()
        yield Callers(gateway.url, schema, admin, viewer, key, ws[0], ws[1], ws[2])
        http.close()


def _signup(http: httpx.Client, body: dict[str, str]) -> str:
    return _created(http.post("/api/auth/signup", json=body), "access_token")


def _created(response: httpx.Response, name: str = "id") -> str:
    assert response.status_code == 201, response.text
    return response.json()["data"][name]


def test_platform_admin_gets_only_documented_answers(callers: Callers) -> None:
    run = fuzz(
        callers.url,
        examples=5,
        headers=callers.bearer(callers.admin),
        parameters={"path.workspace_id": callers.admin_ws},
        operations=[
            {"include-name": LOGOUT, "enabled": False},
            {
                "include-name": "DELETE /api/workspaces/{workspace_id}",
                "parameters": {"path.workspace_id": callers.doomed_ws},
            },
        ],
    )
    assert not run.failures, _report(run)
    # The run went deep enough to succeed, and to be refused, in the workspace it was given.
    assert 201 in run.statuses["POST /api/workspaces/{workspace_id}/keys"], run.statuses
    assert 422 in run.statuses["POST /api/workspaces/{workspace_id}/keys"], run.statuses


def test_viewer_is_refused_as_documented(callers: Callers) -> None:
    run = fuzz(
        callers.url,
        examples=4,
        mode="positive",
        headers=callers.bearer(callers.viewer),
        parameters={"path.workspace_id": callers.viewer_ws},
        operations=[{"include-name": LOGOUT, "enabled": False}],
    )
    assert not run.failures, _report(run)
    platform = [label for label in run.statuses if label.split()[1].startswith("/api/admin/")]
    assert platform, run.statuses
    for label in platform:  # never allowed, always refused with the documented 403
        assert 403 in run.statuses[label], (label, run.statuses[label])
        assert not any(200 <= s < 300 for s in run.statuses[label]), (label, run.statuses[label])
    assert 403 in run.statuses["POST /api/workspaces/{workspace_id}/keys"], run.statuses
    # Single sign-on is admins' (domains the platform's): the role is judged before the body
    # or any id, so a viewer learns nothing else from these routes.
    sso = [label for label in run.statuses if "}/sso/" in label.split()[1]]
    assert sso, run.statuses
    for label in sso:
        assert run.statuses[label] == {403}, (label, run.statuses[label])


@pytest.mark.parametrize("caller", ["anonymous", "api_key"])
def test_callers_without_an_admin_credential_get_documented_401s(
    callers: Callers, caller: str
) -> None:
    headers = callers.bearer(callers.api_key) if caller == "api_key" else {}
    run = fuzz(
        callers.url,
        examples=2,
        mode="positive",
        headers=headers,
        parameters={"path.workspace_id": callers.viewer_ws},
    )
    assert not run.failures, _report(run)
    for label in callers.secured():
        assert run.statuses[label] == {401}, (label, run.statuses[label])


def test_undeclared_methods_answer_405_with_the_allowed_ones(callers: Callers) -> None:
    with httpx.Client(base_url=callers.url, headers=callers.bearer(callers.admin)) as http:
        for template, item in callers.schema["paths"].items():
            declared = {method.upper() for method in item}
            path = template.replace("{workspace_id}", callers.admin_ws)
            path = path.replace("{alias}", "gpt").replace("{", "").replace("}", "")
            for method in sorted(set(METHODS) - declared):
                response = http.request(method, path)
                assert response.status_code == 405, (method, path, response.text)
                allowed = {m.strip() for m in response.headers["allow"].split(",")}
                assert allowed == declared, (method, path, allowed)
                assert response.json()["error"]["code"] == "method_not_allowed"


def _cursor(raw: str) -> str:
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


# Requests that are really invalid: each gets the one documented answer for a bad request,
# 422 in OpenAI's shape, where it used to get an undocumented 400 or a 500.
INVALID = [
    pytest.param("POST", "/api/workspaces", {"content": b"\xff\xfe{"}, None, id="body-not-utf8"),
    pytest.param(
        "POST", "/api/workspaces", {"json": {"name": "a\x00b"}}, None, id="nul-in-body"
    ),  # PostgreSQL refuses NUL characters
    pytest.param(
        "GET", "/api/admin/users", {"params": {"email": "a\x00b"}}, None, id="nul-in-query"
    ),
    pytest.param(
        "GET",
        "/api/workspaces/{ws}/keys",
        {"params": {"cursor": "not a cursor"}},
        "cursor",
        id="cursor-not-base64",
    ),
    pytest.param(
        "GET",
        "/api/workspaces/{ws}/audit",
        {"params": {"cursor": _cursor("2026-01-01|x")}},
        "cursor",
        id="cursor-id-not-a-number",
    ),
    pytest.param(
        "GET",
        "/api/workspaces/{ws}/audit",
        {"params": {"cursor": _cursor("2026-01-01|99999999999999999999")}},
        "cursor",
        id="cursor-id-past-bigint",
    ),
    pytest.param(
        "POST",
        "/api/workspaces/{ws}/keys",
        {"json": {"name": "k", "expires_at": "2020-01-01T00:00:00Z"}},
        "expires_at",
        id="key-already-expired",
    ),
]


@pytest.mark.parametrize(("method", "path", "request_args", "param"), INVALID)
def test_invalid_requests_get_the_documented_422(
    callers: Callers, method: str, path: str, request_args: dict[str, Any], param: str | None
) -> None:
    url = callers.url + path.replace("{ws}", callers.admin_ws)
    headers = {**callers.bearer(callers.admin), "content-type": "application/json"}
    response = httpx.request(method, url, headers=headers, **request_args)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["type"] == "invalid_request_error" and error["param"] == param, error
    documented = callers.schema["paths"][path.replace("{ws}", "{workspace_id}")][method.lower()]
    assert "422" in documented["responses"]


def test_purging_a_long_alias_from_the_cache_is_audited(callers: Callers) -> None:
    # Aliases may be 200 characters; the audit trail's target id column holds 64.
    alias = "a" * 200
    response = httpx.delete(
        f"{callers.url}/api/workspaces/{callers.admin_ws}/cache",
        params={"alias": alias},
        headers=callers.bearer(callers.admin),
    )
    assert response.status_code == 200, response.text
    audit = httpx.get(
        f"{callers.url}/api/workspaces/{callers.admin_ws}/audit",
        params={"action": "cache.purge"},
        headers=callers.bearer(callers.admin),
    ).json()["data"]
    assert any(entry["after"]["alias"] == alias for entry in audit), audit
