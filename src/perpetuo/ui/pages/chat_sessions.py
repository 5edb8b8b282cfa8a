"""Chat sessions kept for the workspace's keys: the list (anyone with a role), one session's
messages, deleting it and exporting them all as JSON (admins)."""

from __future__ import annotations

from urllib.parse import urlencode

from fastapi import APIRouter
from fastapi.responses import Response, StreamingResponse

from perpetuo.control import chat_session_admin as service
from perpetuo.control.actor import Role
from perpetuo.control.chat_sessions import ChatSessionStore
from perpetuo.ui.context import PageDep, WorkspacePage, show
from perpetuo.ui.forms import SessionForm
from perpetuo.ui.lookups import key_names, user_emails
from perpetuo.ui.render import redirect

router = APIRouter(prefix="/ui/w/{workspace_id}/sessions")
PAGE_SIZE = 50


def _store(page: WorkspacePage) -> ChatSessionStore:
    return page.gateway.chat_sessions


@router.get("")
async def sessions_page(page: PageDep, cursor: str | None = None) -> Response:
    result = await service.list_sessions(
        page.plane, _store(page), page.actor, page.id, limit=PAGE_SIZE, cursor=cursor
    )
    return show(
        page,
        "sessions.html",
        active="sessions",
        sessions=[service.listed_view(row) for row in result.rows],
        next_url=f"?{urlencode({'cursor': result.next_cursor})}" if result.next_cursor else None,
        first_url="?" if cursor else None,
        keys=await key_names(page),
        users=await user_emails(page),
        retention=page.settings.chat_session_retention_days,
    )


# Declared before /{session_id}, which would otherwise take "export.json" for an id.
@router.get("/export.json")
async def export(page: PageDep) -> Response:
    pieces = await service.export_sessions(page.plane, _store(page), page.actor, page.id)
    name = f"perpetuo-chat-sessions-{page.id}.json"
    return StreamingResponse(
        pieces,
        media_type="application/json",
        headers={"content-disposition": f'attachment; filename="{name}"'},
    )


@router.get("/{session_id}")
async def detail(page: PageDep, session_id: str) -> Response:
    session = await service.get_session(page.plane, _store(page), page.actor, page.id, session_id)
    keys = await key_names(page)
    return show(
        page,
        "session_detail.html",
        active="sessions",
        session=session,
        key_name=keys.get(session["key_id"] or "", session["key_id"] or "master key"),
    )


@router.post("/{session_id}/delete")
async def delete(page: PageDep, session_id: str, form: SessionForm) -> Response:
    page.require(Role.ADMIN)
    await service.delete_session(page.plane, _store(page), page.actor, page.id, session_id)
    return redirect(page.request, page.url("sessions"), f"Chat session {session_id} deleted.")
