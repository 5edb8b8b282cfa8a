"""Alert rules, channels and history: /api/workspaces/{workspace_id}/alert-... for a workspace,
/api/admin/alert-... for the platform (platform administrators only)."""

# No `from __future__ import annotations` here: the handlers are made per scope, and FastAPI
# must see their real annotations (the scope dependency differs), not names to look up.
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response

from perpetuo.api.admin.deps import ActorDep, PlaneDep
from perpetuo.api.admin.envelope import CursorParam, LimitParam, one, page
from perpetuo.api.admin.responses import PLATFORM, WORKSPACE, WORKSPACE_ROLE, errors
from perpetuo.control.alerts import admin as rules
from perpetuo.control.alerts import channel_admin as channels
from perpetuo.control.alerts.channels import ChannelCreate, ChannelUpdate, channel_view
from perpetuo.control.errors import unavailable

router = APIRouter(tags=["Alerts"])
WS = "/api/workspaces/{workspace_id}"
PLATFORM_BASE = "/api/admin"
# Channels hold secrets: storing one needs the server's encryption key (503 without it), an
# e-mail channel needs mail (403 without it), a URL must pass the egress policy (422).
WITH_SECRET = {**errors(503)}


def _service(request: Request) -> Any:
    service = request.app.state.gateway.alerts
    if service is None:
        raise unavailable("Alerting is not running on this server.", "alerts_not_running")
    return service


def _workspace_scope(workspace_id: str) -> str | None:
    return workspace_id


def _platform_scope() -> str | None:
    return None


def _routes(
    base: str,
    scope_of: Callable[..., str | None],
    common: dict[int | str, Any],
    write: dict[int | str, Any],
) -> None:
    """The same routes for both scopes; `scope_of` gives the workspace id (None: platform)."""
    Scope = Annotated[str | None, Depends(scope_of)]

    async def list_rules(
        actor: ActorDep,
        plane: PlaneDep,
        scope: Scope,
        limit: LimitParam = 50,
        cursor: CursorParam = None,
    ) -> dict[str, Any]:
        result = await rules.list_rules(plane, actor, scope, limit=limit, cursor=cursor)
        return page(result, rules.rule_view)

    async def create_rule(
        body: rules.RuleCreate, actor: ActorDep, plane: PlaneDep, scope: Scope
    ) -> dict[str, Any]:
        return one(await rules.create_rule(plane, actor, scope, body))

    async def get_rule(
        rule_id: str, actor: ActorDep, plane: PlaneDep, scope: Scope
    ) -> dict[str, Any]:
        return one(await rules.get_rule(plane, actor, scope, rule_id))

    async def update_rule(
        rule_id: str,
        body: rules.RuleUpdate,
        actor: ActorDep,
        plane: PlaneDep,
        scope: Scope,
    ) -> dict[str, Any]:
        return one(await rules.update_rule(plane, actor, scope, rule_id, body))

    async def delete_rule(rule_id: str, actor: ActorDep, plane: PlaneDep, scope: Scope) -> Response:
        await rules.delete_rule(plane, actor, scope, rule_id)
        return Response(status_code=204)

    async def list_channels(
        actor: ActorDep,
        plane: PlaneDep,
        scope: Scope,
        limit: LimitParam = 50,
        cursor: CursorParam = None,
    ) -> dict[str, Any]:
        result = await channels.list_channels(plane, actor, scope, limit=limit, cursor=cursor)
        return page(result, channel_view)

    async def create_channel(
        body: ChannelCreate, actor: ActorDep, plane: PlaneDep, scope: Scope
    ) -> dict[str, Any]:
        return one(await channels.create_channel(plane, actor, scope, body))

    async def get_channel(
        channel_id: str, actor: ActorDep, plane: PlaneDep, scope: Scope
    ) -> dict[str, Any]:
        return one(await channels.get_channel(plane, actor, scope, channel_id))

    async def update_channel(
        channel_id: str,
        body: ChannelUpdate,
        actor: ActorDep,
        plane: PlaneDep,
        scope: Scope,
    ) -> dict[str, Any]:
        return one(await channels.update_channel(plane, actor, scope, channel_id, body))

    async def delete_channel(
        channel_id: str, actor: ActorDep, plane: PlaneDep, scope: Scope
    ) -> Response:
        await channels.delete_channel(plane, actor, scope, channel_id)
        return Response(status_code=204)

    async def test_channel(
        channel_id: str,
        actor: ActorDep,
        plane: PlaneDep,
        request: Request,
        scope: Scope,
    ) -> dict[str, Any]:
        service = _service(request)
        return one(await channels.send_test(plane, service, actor, scope, channel_id))

    async def history(
        actor: ActorDep,
        plane: PlaneDep,
        scope: Scope,
        limit: LimitParam = 50,
        cursor: CursorParam = None,
    ) -> dict[str, Any]:
        return await rules.history(plane, actor, scope, limit=limit, cursor=cursor)

    add = router.add_api_route
    # A rule or channel id that is not there (or is another scope's) answers 404.
    one_read, one_write = {**common, **errors(404)}, {**write, **errors(404)}
    who = "of the platform" if scope_of is _platform_scope else "in this workspace"
    add(
        f"{base}/alert-rules",
        list_rules,
        methods=["GET"],
        summary=f"List alert rules {who}",
        responses=common,
    )
    add(
        f"{base}/alert-rules",
        create_rule,
        methods=["POST"],
        status_code=201,
        summary=f"Create an alert rule {who}",
        responses=write,
    )
    add(
        f"{base}/alert-rules/{{rule_id}}",
        get_rule,
        methods=["GET"],
        summary="Get an alert rule",
        responses=one_read,
    )
    add(
        f"{base}/alert-rules/{{rule_id}}",
        update_rule,
        methods=["PATCH"],
        summary="Change an alert rule (a changed condition is judged afresh)",
        responses=one_write,
    )
    add(
        f"{base}/alert-rules/{{rule_id}}",
        delete_rule,
        methods=["DELETE"],
        status_code=204,
        summary="Delete an alert rule",
        responses=one_write,
    )
    add(
        f"{base}/alert-channels",
        list_channels,
        methods=["GET"],
        summary=f"List alert channels {who} (secrets never shown)",
        responses=common,
    )
    add(
        f"{base}/alert-channels",
        create_channel,
        methods=["POST"],
        status_code=201,
        summary="Create an alert channel (a webhook's signing secret is shown this once)",
        responses={**write, **WITH_SECRET},
    )
    add(
        f"{base}/alert-channels/{{channel_id}}",
        get_channel,
        methods=["GET"],
        summary="Get an alert channel",
        responses=one_read,
    )
    add(
        f"{base}/alert-channels/{{channel_id}}",
        update_channel,
        methods=["PATCH"],
        summary="Change an alert channel",
        responses={**one_write, **WITH_SECRET},
    )
    add(
        f"{base}/alert-channels/{{channel_id}}",
        delete_channel,
        methods=["DELETE"],
        status_code=204,
        summary="Delete an alert channel",
        responses=one_write,
    )
    add(
        f"{base}/alert-channels/{{channel_id}}/test",
        test_channel,
        methods=["POST"],
        summary="Send a test alert through this channel now",
        description="Records an `alert.test` event and makes its first delivery attempt at "
        "once; `ok` says whether the receiver accepted it (a failure is retried like any "
        "delivery and shows in the history).",
        responses={**one_write, **WITH_SECRET},
    )
    add(
        f"{base}/alerts",
        history,
        methods=["GET"],
        summary=f"Alert history {who}: events sent, newest first, with each delivery's outcome",
        responses=common,
    )


_routes(WS, _workspace_scope, WORKSPACE, WORKSPACE_ROLE)
_routes(PLATFORM_BASE, _platform_scope, PLATFORM, PLATFORM)
