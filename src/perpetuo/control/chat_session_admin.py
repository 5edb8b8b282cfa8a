"""Chat sessions seen by the workspace's people (admin API and dashboard): list, read,
delete, export.

Anyone with a role lists the sessions (who made them, with which model, how many
messages); reading the messages, deleting and exporting take the admin role, as prompts
and answers in the request log do. Deletes and exports are in the audit log.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import msgspec

from perpetuo.control import audit
from perpetuo.control.access import require
from perpetuo.control.actor import Actor
from perpetuo.control.chat_sessions import ChatSession, ChatSessionStore, sessions_t
from perpetuo.control.errors import not_found
from perpetuo.control.plane import ControlPlane
from perpetuo.control.session_history import StoredMessage
from perpetuo.store.pagination import Page, newest_first, to_page
from perpetuo.store.timeutil import iso, utcnow

EXPORT_PAGE = 100  # sessions read per query while exporting
_encode = msgspec.json.Encoder().encode


def session_view(session: ChatSession, message_count: int) -> dict[str, Any]:
    return {
        "id": session.id,
        "object": "chat_session",
        "key_id": session.key_id,
        "user_id": session.user_id,
        "model": session.model,
        "metadata": session.metadata,
        "max_history_tokens": session.max_history_tokens,
        "summary_model": session.summary_model,
        "message_count": message_count,
        "created_at": iso(session.created_at),
        "updated_at": iso(session.updated_at),
        "expires_at": iso(session.expires_at),
    }


def listed_view(row: Any) -> dict[str, Any]:
    return session_view(ChatSession.from_row(row), int(row.message_count))


def detail_view(session: ChatSession, messages: list[StoredMessage]) -> dict[str, Any]:
    return {
        **session_view(session, len(messages)),
        "system_prompt": session.system_prompt,
        "summary": session.summary,
        "summarized_through": session.summarized_through,
        "messages": [message_view(m) for m in messages],
    }


def message_view(message: StoredMessage) -> dict[str, Any]:
    return {
        "id": message.id,
        "seq": message.seq,
        "message": message.message,
        "tokens": message.tokens,
        "request_id": message.request_id,
        "created_at": iso(message.created_at),
    }


async def list_sessions(
    plane: ControlPlane,
    store: ChatSessionStore,
    actor: Actor,
    workspace_id: str,
    *,
    limit: int,
    cursor: str | None,
) -> Page:
    async with plane.db.connect() as conn:
        await require(conn, actor, workspace_id, "sessions.read")
        query = newest_first(store.listing(workspace_id, None), sessions_t, cursor, limit)
        return to_page((await conn.execute(query)).all(), limit)


async def get_session(
    plane: ControlPlane, store: ChatSessionStore, actor: Actor, workspace_id: str, session_id: str
) -> dict[str, Any]:
    async with plane.db.connect() as conn:
        await require(conn, actor, workspace_id, "sessions.manage")
    session = await store.session(workspace_id, session_id, None)
    if session is None:
        raise not_found("Chat session")
    return detail_view(session, await store.messages(session.id))


async def delete_session(
    plane: ControlPlane, store: ChatSessionStore, actor: Actor, workspace_id: str, session_id: str
) -> None:
    async with plane.db.connect() as conn:
        await require(conn, actor, workspace_id, "sessions.manage")
    session = await store.session(workspace_id, session_id, None)
    if session is None:
        raise not_found("Chat session")
    async with plane.db.begin() as conn:
        if not await store.delete_in(conn, workspace_id, session_id, None):
            raise not_found("Chat session")
        before = session_view(session, 0)
        del before["message_count"]
        await audit.record(
            conn,
            actor,
            "chat_session.delete",
            workspace_id=workspace_id,
            target_type="chat_session",
            target_id=session_id,
            before=before,
        )


async def export_sessions(
    plane: ControlPlane, store: ChatSessionStore, actor: Actor, workspace_id: str
) -> AsyncIterator[bytes]:
    """Every live session of the workspace with its messages, as one JSON document in
    pieces. Access is checked and the export audited before anything is sent."""
    async with plane.db.begin() as conn:
        await require(conn, actor, workspace_id, "sessions.manage")
        await audit.record(
            conn,
            actor,
            "chat_session.export",
            workspace_id=workspace_id,
            target_type="workspace",
            target_id=workspace_id,
        )
    return _export(plane, store, workspace_id)


async def _export(
    plane: ControlPlane, store: ChatSessionStore, workspace_id: str
) -> AsyncIterator[bytes]:
    head = {
        "object": "chat_session_export",
        "workspace_id": workspace_id,
        "exported_at": iso(utcnow()),
    }
    yield _encode(head)[:-1] + b',"sessions":['
    cursor: str | None = None
    first = True
    while True:
        async with plane.db.connect() as conn:
            query = newest_first(store.listing(workspace_id, None), sessions_t, cursor, EXPORT_PAGE)
            page = to_page((await conn.execute(query)).all(), EXPORT_PAGE)
        for row in page.rows:
            session = ChatSession.from_row(row)
            piece = _encode(detail_view(session, await store.messages(session.id)))
            yield piece if first else b"," + piece
            first = False
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    yield b"]}"
