"""A workspace's alerts: its rules (each with whether it is firing), its channels (never
their secrets) and the recent history. Admins create, change, switch on and off, delete and
test them; everyone else reads. Every action goes through control/alerts (admin.py,
channel_admin.py), which checks the role again and judges what was sent."""

from __future__ import annotations

from collections import Counter
from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response

from perpetuo.control.actor import Role
from perpetuo.control.alerts import admin, channel_admin
from perpetuo.control.alerts.channels import ChannelCreate, ChannelUpdate, channel_view
from perpetuo.control.errors import unavailable
from perpetuo.schema.errors import GatewayError
from perpetuo.ui.alert_forms import (
    channel_data,
    kept,
    kind_reference,
    params_text,
    rule_data,
    under,
)
from perpetuo.ui.context import PageDep, WorkspacePage, show
from perpetuo.ui.forms import Errors, SessionForm, error_of, validate
from perpetuo.ui.render import redirect

router = APIRouter(prefix="/ui/w/{workspace_id}/alerts")
LISTED = 100  # rules and channels shown (the API pages through more)
HISTORY = 50  # recent events shown
# A changed condition starts a rule afresh (its states dropped): sent only when changed.
RESTARTING = ("params", "enabled", "for_minutes")


async def _page(page: WorkspacePage, status: int = 200, **context: Any) -> Response:
    plane, actor = page.plane, page.actor
    listed = await admin.list_rules(plane, actor, page.id, limit=LISTED, cursor=None)
    channels = await channel_admin.list_channels(plane, actor, page.id, limit=LISTED, cursor=None)
    recent = await admin.history(plane, actor, page.id, limit=HISTORY, cursor=None)
    firing = await admin.active(plane.db, page.id)  # access checked by the lists above
    counts = Counter(alert["rule_id"] for alert in firing)
    context.setdefault("form", {})
    views = [channel_view(row) for row in channels.rows]
    return show(
        page,
        "alerts.html",
        status,
        active="alerts",
        rules=[
            {**view, "firing": counts[view["id"]], "params_text": params_text(view["params"])}
            for view in map(admin.rule_view, listed.rows)
        ],
        channels=views,
        channel_names={c["id"]: c["name"] for c in views},
        events=recent["data"],
        firing=firing,
        reference=kind_reference(platform=False),
        encryption_ready=plane.keyring is not None,
        mail_ready=plane.mail.enabled,
        **context,
    )


@router.get("")
async def alerts_page(page: PageDep) -> Response:
    return await _page(page)


# -- rules -------------------------------------------------------------------------------


@router.post("/rules")
async def create_rule(page: PageDep, form: SessionForm) -> Response:
    errors: Errors = {}
    try:
        page.require(Role.ADMIN)
        data = rule_data(form, "rule", errors, create=True)
        problems: Errors = {}
        spec = validate(admin.RuleCreate, data, problems)
        errors |= under("rule", problems)
        if spec is None or errors:
            return await _page(page, 422, errors=errors, form=kept(form))
        view = await admin.create_rule(page.plane, page.actor, page.id, spec)
    except GatewayError as exc:
        return await _page(
            page, exc.status, errors=under("rule", error_of(exc, "form")), form=kept(form)
        )
    return redirect(page.request, page.url("alerts"), f"Alert rule {view['name']} created.")


@router.post("/rules/{rule_id}")
async def update_rule(page: PageDep, rule_id: str, form: SessionForm) -> Response:
    where = f"rule-{rule_id}"
    try:
        page.require(Role.ADMIN)
        errors: Errors = {}
        data = rule_data(form, "edit", errors, create=False)
        current = await admin.get_rule(page.plane, page.actor, page.id, rule_id)
        # As the form shows them: defaults that mean "all" (None) are not written out.
        current["params"] = {k: v for k, v in current["params"].items() if v is not None}
        for name in RESTARTING:
            if data[name] == current[name]:
                del data[name]  # unchanged: the rule keeps its state
        spec = validate(admin.RuleUpdate, data, errors)
        if spec is None or errors:
            message = "; ".join(f"{k.rpartition('.')[2]}: {v}" for k, v in errors.items())
            return await _page(page, 422, errors={where: message})
        view = await admin.update_rule(page.plane, page.actor, page.id, rule_id, spec)
    except GatewayError as exc:
        return await _page(page, exc.status, errors={where: exc.message})
    return redirect(page.request, page.url("alerts"), f"Alert rule {view['name']} saved.")


@router.post("/rules/{rule_id}/enabled")
async def switch_rule(page: PageDep, rule_id: str, form: SessionForm) -> Response:
    on = form.get("enabled") == "on"
    try:
        page.require(Role.ADMIN)
        spec = admin.RuleUpdate(enabled=on)
        view = await admin.update_rule(page.plane, page.actor, page.id, rule_id, spec)
    except GatewayError as exc:
        return await _page(page, exc.status, errors={f"rule-{rule_id}": exc.message})
    state = "on" if on else "off"
    return redirect(page.request, page.url("alerts"), f"Alert rule {view['name']} is {state}.")


@router.post("/rules/{rule_id}/delete")
async def delete_rule(page: PageDep, rule_id: str, form: SessionForm) -> Response:
    try:
        page.require(Role.ADMIN)
        await admin.delete_rule(page.plane, page.actor, page.id, rule_id)
    except GatewayError as exc:
        return await _page(page, exc.status, errors={f"rule-{rule_id}": exc.message})
    return redirect(page.request, page.url("alerts"), "Alert rule deleted.")


# -- channels ----------------------------------------------------------------------------


@router.post("/channels")
async def create_channel(page: PageDep, form: SessionForm) -> Response:
    try:
        page.require(Role.ADMIN)
        problems: Errors = {}
        spec = validate(ChannelCreate, channel_data(form, "channel"), problems)
        if spec is None:
            return await _page(page, 422, errors=under("channel", problems), form=kept(form))
        view = await channel_admin.create_channel(page.plane, page.actor, page.id, spec)
    except GatewayError as exc:
        errors = under("channel", error_of(exc, "form"))
        return await _page(page, exc.status, errors=errors, form=kept(form))
    if "signing_secret" in view:
        # Shown this once, on this answer only (never in a redirect's cookie).
        return await _page(page, 201, created=view)
    return redirect(page.request, page.url("alerts"), f"Alert channel {view['name']} created.")


@router.post("/channels/{channel_id}")
async def update_channel(page: PageDep, channel_id: str, form: SessionForm) -> Response:
    where = f"channel-{channel_id}"
    try:
        page.require(Role.ADMIN)
        current = await channel_admin.get_channel(page.plane, page.actor, page.id, channel_id)
        data: dict[str, Any] = {
            "name": form.get("edit.name"),
            "enabled": form.checked("edit.enabled"),
        }
        if form.optional("edit.url"):
            data["url"] = form.get("edit.url")  # blank: the URL stays
        if current["kind"] == "email":
            data["to"] = form.lines("edit.to") or []  # blank: the owners and admins
        problems: Errors = {}
        spec = validate(ChannelUpdate, data, problems)
        if spec is None:
            message = "; ".join(f"{k}: {v}" for k, v in problems.items())
            return await _page(page, 422, errors={where: message})
        view = await channel_admin.update_channel(page.plane, page.actor, page.id, channel_id, spec)
    except GatewayError as exc:
        return await _page(page, exc.status, errors={where: exc.message})
    return redirect(page.request, page.url("alerts"), f"Alert channel {view['name']} saved.")


@router.post("/channels/{channel_id}/enabled")
async def switch_channel(page: PageDep, channel_id: str, form: SessionForm) -> Response:
    on = form.get("enabled") == "on"
    try:
        page.require(Role.ADMIN)
        spec = ChannelUpdate(enabled=on)
        view = await channel_admin.update_channel(page.plane, page.actor, page.id, channel_id, spec)
    except GatewayError as exc:
        return await _page(page, exc.status, errors={f"channel-{channel_id}": exc.message})
    state = "on" if on else "off"
    return redirect(page.request, page.url("alerts"), f"Alert channel {view['name']} is {state}.")


@router.post("/channels/{channel_id}/test")
async def test_channel(page: PageDep, channel_id: str, form: SessionForm) -> Response:
    try:
        page.require(Role.ADMIN)
        service = page.gateway.alerts
        if service is None:
            raise unavailable("Alerting is not running on this server.", "alerts_not_running")
        result = await channel_admin.send_test(page.plane, service, page.actor, page.id, channel_id)
    except GatewayError as exc:
        return await _page(page, exc.status, errors={f"channel-{channel_id}": exc.message})
    return await _page(page, tested={"id": channel_id, **result})


@router.post("/channels/{channel_id}/delete")
async def delete_channel(page: PageDep, channel_id: str, form: SessionForm) -> Response:
    try:
        page.require(Role.ADMIN)
        await channel_admin.delete_channel(page.plane, page.actor, page.id, channel_id)
    except GatewayError as exc:
        return await _page(page, exc.status, errors={f"channel-{channel_id}": exc.message})
    return redirect(page.request, page.url("alerts"), "Alert channel deleted.")
