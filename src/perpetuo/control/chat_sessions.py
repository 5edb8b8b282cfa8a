"""Chat sessions: conversations the gateway keeps, per workspace, for the clients that
made them (`/v1/chat/sessions`).

A session belongs to its workspace and to the caller that made it: the same key, or any key
of the same person (the key's owner); the master key's sessions are the master key's. To
anyone else a session does not exist. Sessions expire `chat_session_retention_days` (a
workspace setting) after their last message; a background pass deletes them.

Creating a session writes it at once (any instance may get its first message). Messages
are queued after each answer and written in batches, off the response path, like stored
Responses answers (control/write_behind.py). Reading a conversation is one round trip that
returns the session and its newest messages after the summary, merged with this
instance's queued messages.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Select, and_, delete, func, insert, or_, select, update

from perpetuo.control.session_history import StoredMessage
from perpetuo.control.write_behind import WriteBehind
from perpetuo.store.conversation_tables import chat_session_messages, chat_sessions
from perpetuo.store.database import AsyncConnection, Database
from perpetuo.store.timeutil import utcnow

RETENTION_SETTING = "chat_session_retention_days"
DEFAULT_RETENTION_DAYS = 30
MAX_READ = 2000  # newest messages a request considers (the budget usually cuts far sooner)

sessions_t, messages_t = chat_sessions, chat_session_messages


@dataclass(frozen=True, slots=True)
class Caller:
    """Who asks: a key (None: the master key) and the key's owner (None: a service key)."""

    key_id: str | None
    user_id: str | None

    def condition(self) -> Any:
        same_key = (
            sessions_t.c.key_id.is_(None)
            if self.key_id is None
            else sessions_t.c.key_id == self.key_id
        )
        if self.user_id is None:
            return same_key
        return or_(same_key, sessions_t.c.user_id == self.user_id)


@dataclass(slots=True)
class ChatSession:
    id: str
    workspace_id: str
    model: str
    max_history_tokens: int
    key_id: str | None = None
    user_id: str | None = None
    system_prompt: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    summary_model: str | None = None
    summary: str | None = None
    summarized_through: int | None = None
    created_at: dt.datetime = field(default_factory=utcnow)
    updated_at: dt.datetime = field(default_factory=utcnow)
    expires_at: dt.datetime = field(default_factory=utcnow)

    def row(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in _COLUMNS}

    @classmethod
    def from_row(cls, row: Any) -> ChatSession:
        return cls(**{name: getattr(row, name) for name in _COLUMNS})


_COLUMNS = tuple(c.name for c in sessions_t.columns)


@dataclass(slots=True)
class Conversation:
    """What a request reads: the session and its messages after the summary, oldest first."""

    session: ChatSession
    messages: list[StoredMessage]


@dataclass(slots=True)
class _Append:
    session_id: str
    messages: list[StoredMessage]
    expires_at: dt.datetime


def _message(row: Any) -> StoredMessage:
    return StoredMessage(
        id=row.id,
        message=row.message,
        tokens=row.tokens,
        created_at=row.created_at,
        request_id=row.request_id,
        seq=row.seq,
    )


class ChatSessionStore:
    def __init__(self, db: Database, *, batch_size: int = 200, flush_interval: float = 0.05):
        self.db = db
        self._summarizing: set[str] = set()  # sessions whose summary is being made here
        self._writer: WriteBehind[_Append] = WriteBehind(
            self._write,
            what="chat-session messages",
            batch_size=batch_size,
            flush_interval=flush_interval,
        )

    # -- writing -----------------------------------------------------------------------------

    async def create(self, session: ChatSession) -> None:
        async with self.db.begin() as conn:
            await conn.execute(insert(sessions_t).values(**session.row()))

    def append(
        self, session: ChatSession, messages: list[StoredMessage], retention_days: int
    ) -> None:
        """Queue `messages` at the end of the session; its retention restarts from now."""
        expires = utcnow() + dt.timedelta(days=retention_days)
        self._writer.add(_Append(session.id, messages, expires))

    async def _write(self, batch: list[_Append]) -> None:
        wanted = {a.session_id for a in batch}
        async with self.db.begin() as conn:
            # Sessions deleted (or expired and pruned) since: their messages go nowhere.
            alive = set(
                (
                    await conn.execute(select(sessions_t.c.id).where(sessions_t.c.id.in_(wanted)))
                ).scalars()
            )
            rows = [
                {
                    "id": m.id,
                    "session_id": a.session_id,
                    "message": m.message,
                    "tokens": m.tokens,
                    "request_id": m.request_id,
                    "created_at": m.created_at,
                }
                for a in batch
                if a.session_id in alive
                for m in a.messages
            ]
            if rows:
                await conn.execute(insert(messages_t), rows)
            touched: dict[str, _Append] = {a.session_id: a for a in batch if a.session_id in alive}
            for session_id, last in touched.items():
                await conn.execute(
                    update(sessions_t)
                    .where(sessions_t.c.id == session_id)
                    .values(updated_at=last.messages[-1].created_at, expires_at=last.expires_at)
                )

    async def set_summary(self, session_id: str, summary: str, through: int) -> None:
        async with self.db.begin() as conn:
            await conn.execute(
                update(sessions_t)
                .where(sessions_t.c.id == session_id)
                .values(summary=summary, summarized_through=through)
            )

    def claim_summary(self, session_id: str) -> bool:
        """True when no summary of the session is being made on this instance already."""
        if session_id in self._summarizing:
            return False
        self._summarizing.add(session_id)
        return True

    def release_summary(self, session_id: str) -> None:
        self._summarizing.discard(session_id)

    async def start(self) -> None:
        await self._writer.start()

    async def flush(self) -> bool:
        return await self._writer.flush()

    async def aclose(self) -> None:
        await self._writer.aclose()

    # -- reading -----------------------------------------------------------------------------

    def _visible(self, workspace_id: str, caller: Caller | None) -> Any:
        """Live sessions of the workspace; `caller`: only those it may use (None: all)."""
        condition = and_(
            sessions_t.c.workspace_id == workspace_id, sessions_t.c.expires_at > utcnow()
        )
        return condition if caller is None else and_(condition, caller.condition())

    async def session(
        self, workspace_id: str, session_id: str, caller: Caller | None
    ) -> ChatSession | None:
        async with self.db.connect() as conn:
            row = (
                await conn.execute(
                    select(sessions_t).where(
                        sessions_t.c.id == session_id, self._visible(workspace_id, caller)
                    )
                )
            ).first()
        return ChatSession.from_row(row) if row is not None else None

    async def conversation(
        self, workspace_id: str, session_id: str, caller: Caller | None
    ) -> Conversation | None:
        """The session and its messages after the summary (the newest MAX_READ of them),
        with those this instance has queued; None when the caller has no such session.
        One query: the session's columns come with each of its messages."""
        queued = [a for a in self._writer.unwritten() if a.session_id == session_id]
        m = messages_t.c
        after_summary = or_(
            sessions_t.c.summarized_through.is_(None), m.seq > sessions_t.c.summarized_through
        )
        query = (
            select(
                sessions_t,
                m.seq,
                m.id.label("message_id"),
                m.message,
                m.tokens,
                m.request_id,
                m.created_at.label("message_created_at"),
            )
            .select_from(
                sessions_t.outerjoin(
                    messages_t, and_(m.session_id == sessions_t.c.id, after_summary)
                )
            )
            .where(sessions_t.c.id == session_id, self._visible(workspace_id, caller))
            .order_by(m.seq.desc())
            .limit(MAX_READ)
        )
        async with self.db.connect() as conn:
            rows = (await conn.execute(query)).all()
        if not rows:
            return None
        messages = [
            StoredMessage(
                id=r.message_id,
                message=r.message,
                tokens=r.tokens,
                created_at=r.message_created_at,
                request_id=r.request_id,
                seq=r.seq,
            )
            for r in reversed(rows)
            if r.seq is not None
        ]
        return Conversation(ChatSession.from_row(rows[0]), _merged(messages, queued))

    async def messages(self, session_id: str) -> list[StoredMessage]:
        """Every message of the session, written or queued, oldest first (for exports)."""
        queued = [a for a in self._writer.unwritten() if a.session_id == session_id]
        async with self.db.connect() as conn:
            rows = (
                await conn.execute(
                    select(messages_t)
                    .where(messages_t.c.session_id == session_id)
                    .order_by(messages_t.c.seq)
                )
            ).all()
        return _merged([_message(r) for r in rows], queued)

    def listing(self, workspace_id: str, caller: Caller | None) -> Select[Any]:
        """Sessions with their message counts (written ones), unordered: for lists."""
        count = (
            select(func.count())
            .where(messages_t.c.session_id == sessions_t.c.id)
            .scalar_subquery()
            .label("message_count")
        )
        return select(sessions_t, count).where(self._visible(workspace_id, caller))

    async def page(
        self,
        workspace_id: str,
        caller: Caller,
        *,
        limit: int,
        newest_first: bool = True,
        after: ChatSession | None = None,
    ) -> tuple[list[tuple[ChatSession, int]], bool]:
        """One page of the caller's sessions, with message counts; and whether more follow."""
        created, ident = sessions_t.c.created_at, sessions_t.c.id
        query = self.listing(workspace_id, caller)
        if newest_first:
            query = query.order_by(created.desc(), ident.desc())
            if after is not None:
                query = query.where(
                    or_(
                        created < after.created_at,
                        and_(created == after.created_at, ident < after.id),
                    )
                )
        else:
            query = query.order_by(created, ident)
            if after is not None:
                query = query.where(
                    or_(
                        created > after.created_at,
                        and_(created == after.created_at, ident > after.id),
                    )
                )
        async with self.db.connect() as conn:
            rows = (await conn.execute(query.limit(limit + 1))).all()
        found = [(ChatSession.from_row(r), int(r.message_count)) for r in rows[:limit]]
        return found, len(rows) > limit

    # -- deleting ----------------------------------------------------------------------------

    async def delete(self, workspace_id: str, session_id: str, caller: Caller | None) -> bool:
        async with self.db.begin() as conn:
            return await self.delete_in(conn, workspace_id, session_id, caller)

    async def delete_in(
        self, conn: AsyncConnection, workspace_id: str, session_id: str, caller: Caller | None
    ) -> bool:
        """Delete within the caller's transaction (with its audit record, say)."""
        found = await conn.scalar(
            select(sessions_t.c.id).where(
                sessions_t.c.id == session_id, self._visible(workspace_id, caller)
            )
        )
        if found is None:
            return False
        await conn.execute(delete(messages_t).where(messages_t.c.session_id == session_id))
        await conn.execute(delete(sessions_t).where(sessions_t.c.id == session_id))
        return True

    async def prune(self) -> int:
        """Delete expired sessions and their messages; the number of sessions removed."""
        async with self.db.begin() as conn:
            expired = select(sessions_t.c.id).where(sessions_t.c.expires_at <= utcnow())
            await conn.execute(delete(messages_t).where(messages_t.c.session_id.in_(expired)))
            result = await conn.execute(
                delete(sessions_t).where(sessions_t.c.expires_at <= utcnow())
            )
        return result.rowcount or 0


def _merged(written: list[StoredMessage], queued: list[_Append]) -> list[StoredMessage]:
    """Written messages, then the queued ones not written yet (a batch may have been written
    between taking the queue and reading the rows: ids tell them apart)."""
    if not queued:
        return written
    ids = {m.id for m in written}
    return written + [m for a in queued for m in a.messages if m.id not in ids]
