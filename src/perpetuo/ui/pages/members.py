"""Members and their roles, and invitations to join the workspace."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response

from perpetuo.control import invites, members, roles
from perpetuo.control.actor import Role
from perpetuo.control.invites import InviteCreate
from perpetuo.control.members import RoleChange
from perpetuo.schema.errors import GatewayError
from perpetuo.ui.context import PageDep, WorkspacePage, show
from perpetuo.ui.forms import Errors, SessionForm, error_of, validate
from perpetuo.ui.render import redirect

router = APIRouter(prefix="/ui/w/{workspace_id}")
ROLE_CHOICES = [(r.label, r.label.capitalize()) for r in sorted(Role, reverse=True)]


async def _page(page: WorkspacePage, status: int = 200, **context: Any) -> Response:
    people = await members.list_members(page.plane, page.actor, page.id, limit=200, cursor=None)
    pending: list[Any] = []
    if page.can("admin"):
        listed = await invites.list_invites(page.plane, page.actor, page.id, limit=50, cursor=None)
        pending = [invites.invite_view(row) for row in listed.rows]
    context.setdefault("form", {})
    custom = await roles.list_roles(page.plane, page.actor, page.id)
    return show(
        page,
        "members.html",
        status,
        active="members",
        members=[members.member_view(row) for row in people.rows],
        invites=pending,
        roles=ROLE_CHOICES + [(r["name"], f"{r['name']} (custom)") for r in custom],
        invite_roles=ROLE_CHOICES,  # invitations give a built-in role
        **context,
    )


@router.get("/members")
async def members_page(page: PageDep) -> Response:
    return await _page(page)


@router.post("/members/{user_id}/role")
async def change_role(page: PageDep, user_id: str, form: SessionForm) -> Response:
    errors: Errors = {}
    where = f"member-{user_id}"
    try:
        if user_id != page.visitor.user_id:
            page.require(Role.ADMIN)
        spec = validate(RoleChange, {"role": form.get("role")}, errors)
        if spec is None:
            return await _page(page, 422, errors={where: "Choose a role."})
        view = await members.change_role(page.plane, page.actor, page.id, user_id, spec)
    except GatewayError as exc:
        return await _page(page, exc.status, errors={where: exc.message})
    return redirect(page.request, page.url("members"), f"{view['email']} is now {view['role']}.")


@router.post("/members/{user_id}/remove")
async def remove(page: PageDep, user_id: str, form: SessionForm) -> Response:
    leaving = user_id == page.visitor.user_id
    try:
        if not leaving:
            page.require(Role.ADMIN)
        await members.remove_member(page.plane, page.actor, page.id, user_id)
    except GatewayError as exc:
        return await _page(page, exc.status, errors={f"member-{user_id}": exc.message})
    if leaving:
        return redirect(page.request, "/ui/workspaces", f"You left {page.name}.")
    return redirect(page.request, page.url("members"), "The member was removed.")


@router.post("/invites")
async def create_invite(page: PageDep, form: SessionForm) -> Response:
    errors: Errors = {}
    try:
        page.require(Role.ADMIN)
        data = {"email": form.get("email"), "role": form.get("role") or "member"}
        spec = validate(InviteCreate, data, errors)
        if spec is None:
            return await _page(page, 422, errors=errors, form=form.values)
        view, token = await invites.create_invite(page.plane, page.actor, page.id, spec)
    except GatewayError as exc:
        return await _page(page, exc.status, errors=error_of(exc, "invite"), form=form.values)
    link = f"{page.request.base_url}ui/invite?token={token}"
    return await _page(page, 201, created_invite=view, invite_token=token, invite_link=link)


@router.post("/invites/{invite_id}/revoke")
async def revoke_invite(page: PageDep, invite_id: str, form: SessionForm) -> Response:
    try:
        page.require(Role.ADMIN)
        await invites.revoke_invite(page.plane, page.actor, page.id, invite_id)
    except GatewayError as exc:
        return await _page(page, exc.status, errors={f"invite-{invite_id}": exc.message})
    return redirect(page.request, page.url("members"), "The invitation was revoked.")
