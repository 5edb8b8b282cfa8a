"""Teams: the hierarchy workspace → team → user → key, with each team's members, keys,
limits and spend this period; admins create, rename, limit and delete teams and move people
in and out of them."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response

from perpetuo.control import members, teams
from perpetuo.control.actor import Role
from perpetuo.control.team_overview import team_overview
from perpetuo.schema.errors import GatewayError
from perpetuo.ui.budget import PERIOD_CHOICES
from perpetuo.ui.context import PageDep, WorkspacePage, show
from perpetuo.ui.forms import Errors, FormData, SessionForm, error_of, validate
from perpetuo.ui.pages.limits import RATE_FIELDS
from perpetuo.ui.render import redirect

router = APIRouter(prefix="/ui/w/{workspace_id}/teams")


def limits_of(form: FormData, errors: Errors) -> dict[str, Any]:
    """The limits fields of a team form (`limits.<name>`); blank fields set no limit."""
    values: dict[str, Any] = {n: form.integer(f"limits.{n}", errors) for n, _ in RATE_FIELDS}
    values["budget_usd"] = form.number("limits.budget_usd", errors)
    values["budget_soft_usd"] = form.number("limits.budget_soft_usd", errors)
    values["budget_period"] = form.optional("limits.budget_period")
    return {name: value for name, value in values.items() if value is not None}


async def _list(page: WorkspacePage, status: int = 200, **context: Any) -> Response:
    overview = await team_overview(page.plane, page.actor, page.id)
    context.setdefault("form", {})
    return show(
        page,
        "teams.html",
        status,
        active="teams",
        teams=overview,
        rate_fields=RATE_FIELDS,
        periods=PERIOD_CHOICES,
        **context,
    )


async def _detail(page: WorkspacePage, team_id: str, status: int = 200, **context: Any) -> Response:
    team = await teams.get_team(page.plane, page.actor, page.id, team_id)
    people = await members.list_members(page.plane, page.actor, page.id, limit=200, cursor=None)
    in_team = {m["user_id"] for m in team["members"]}
    others = [(row.id, row.name or row.email) for row in people.rows if row.id not in in_team]
    return show(
        page,
        "team.html",
        status,
        active="teams",
        team=team,
        candidates=others,
        rate_fields=RATE_FIELDS,
        periods=PERIOD_CHOICES,
        **context,
    )


@router.get("")
async def teams_page(page: PageDep) -> Response:
    return await _list(page)


@router.post("")
async def create(page: PageDep, form: SessionForm) -> Response:
    errors: Errors = {}
    try:
        page.require(Role.ADMIN)
        data = {
            "name": form.get("name"),
            "description": form.get("description"),
            "limits": limits_of(form, errors) or None,
        }
        spec = None if errors else validate(teams.TeamCreate, data, errors)
        if spec is None:
            return await _list(page, 422, errors=errors, form=form.values)
        view = await teams.create_team(page.plane, page.actor, page.id, spec)
    except GatewayError as exc:
        return await _list(page, exc.status, errors=error_of(exc, "team"), form=form.values)
    return redirect(page.request, page.url(f"teams/{view['id']}"), f"Team {view['name']} created.")


@router.get("/{team_id}")
async def team_page(page: PageDep, team_id: str) -> Response:
    return await _detail(page, team_id)


@router.post("/{team_id}")
async def update(page: PageDep, team_id: str, form: SessionForm) -> Response:
    errors: Errors = {}
    try:
        page.require(Role.ADMIN)
        data = {
            "name": form.get("name"),
            "description": form.get("description"),
            "limits": limits_of(form, errors) or None,
        }
        spec = None if errors else validate(teams.TeamUpdate, data, errors)
        if spec is None:
            return await _detail(page, team_id, 422, errors=errors)
        await teams.update_team(page.plane, page.actor, page.id, team_id, spec)
    except GatewayError as exc:
        return await _detail(page, team_id, exc.status, errors=error_of(exc, "team"))
    return redirect(page.request, page.url(f"teams/{team_id}"), "Team saved.")


@router.post("/{team_id}/delete")
async def delete(page: PageDep, team_id: str, form: SessionForm) -> Response:
    try:
        page.require(Role.ADMIN)
        await teams.delete_team(page.plane, page.actor, page.id, team_id)
    except GatewayError as exc:
        return await _detail(page, team_id, exc.status, errors={"team": exc.message})
    return redirect(page.request, page.url("teams"), "The team was deleted.")


@router.post("/{team_id}/members")
async def add_member(page: PageDep, team_id: str, form: SessionForm) -> Response:
    try:
        page.require(Role.ADMIN)
        user_id = form.get("user_id")
        await teams.set_member_team(page.plane, page.actor, page.id, team_id, user_id, True)
    except GatewayError as exc:
        return await _detail(page, team_id, exc.status, errors={"members": exc.message})
    return redirect(page.request, page.url(f"teams/{team_id}"), "The member joined the team.")


@router.post("/{team_id}/members/{user_id}/remove")
async def remove_member(page: PageDep, team_id: str, user_id: str, form: SessionForm) -> Response:
    try:
        page.require(Role.ADMIN)
        await teams.set_member_team(page.plane, page.actor, page.id, team_id, user_id, False)
    except GatewayError as exc:
        return await _detail(page, team_id, exc.status, errors={"members": exc.message})
    return redirect(page.request, page.url(f"teams/{team_id}"), "The member left the team.")
