"""Stored Responses API answers: what `previous_response_id`, `GET /v1/responses/{id}` and
its input items read.

Answers are kept in memory at once (so a follow-up sent the moment an answer ends finds it
on this instance) and written to the database in batches by a background task, off the
request path (control/write_behind.py). Reads look in memory, then in the database. Every
read and delete is scoped to the caller's workspace: an id from another workspace is simply
not found.
"""

from __future__ import annotations

import datetime as dt
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete, select

from perpetuo.control.write_behind import WriteBehind
from perpetuo.store.conversation_tables import stored_responses
from perpetuo.store.database import Database
from perpetuo.store.timeutil import utcnow

DEFAULT_RETENTION = dt.timedelta(days=30)
MAX_CHAIN = 1000  # previous_response_id links followed at most (a cycle or abuse ends here)


@dataclass(slots=True)
class StoredResponse:
    id: str
    workspace_id: str | None
    alias: str
    input_items: list[Any]
    response: dict[str, Any]
    key_id: str | None = None
    previous_id: str | None = None
    deployment: str | None = None
    upstream_id: str | None = None
    instructions: Any = None
    created_at: dt.datetime = field(default_factory=utcnow)
    expires_at: dt.datetime | None = None

    @property
    def key(self) -> tuple[str, str]:
        return scope_of(self.workspace_id), self.id

    @property
    def output_items(self) -> list[Any]:
        output = self.response.get("output")
        return output if isinstance(output, list) else []

    def row(self) -> dict[str, Any]:
        return {
            "scope": scope_of(self.workspace_id),
            "id": self.id,
            "workspace_id": self.workspace_id,
            "key_id": self.key_id,
            "previous_id": self.previous_id,
            "alias": self.alias,
            "deployment": self.deployment,
            "upstream_id": self.upstream_id,
            "instructions": self.instructions,
            "input_items": self.input_items,
            "response": self.response,
            "created_at": self.created_at,
            "expires_at": self.expires_at or self.created_at + DEFAULT_RETENTION,
        }

    @classmethod
    def from_row(cls, row: Any) -> StoredResponse:
        return cls(
            id=row.id,
            workspace_id=row.workspace_id,
            key_id=row.key_id,
            previous_id=row.previous_id,
            alias=row.alias,
            deployment=row.deployment,
            upstream_id=row.upstream_id,
            instructions=row.instructions,
            input_items=row.input_items,
            response=row.response,
            created_at=row.created_at,
            expires_at=row.expires_at,
        )


def scope_of(workspace_id: str | None) -> str:
    return workspace_id or "-"


class ResponseStore:
    def __init__(
        self,
        db: Database,
        *,
        memory_entries: int = 2000,
        batch_size: int = 200,
        flush_interval: float = 0.05,
    ) -> None:
        self.db = db
        self._recent: OrderedDict[tuple[str, str], StoredResponse] = OrderedDict()
        self._memory_entries = memory_entries
        self._deleted: set[tuple[str, str]] = set()  # deleted while a write may be queued
        self._writer: WriteBehind[StoredResponse] = WriteBehind(
            self._write,
            what="stored responses",
            batch_size=batch_size,
            flush_interval=flush_interval,
        )

    # -- writing -----------------------------------------------------------------------------

    def put(self, stored: StoredResponse) -> None:
        """Keep `stored` now; it reaches the database with the next batch."""
        self._remember(stored)
        self._writer.add(stored)

    def _remember(self, stored: StoredResponse) -> None:
        self._recent[stored.key] = stored
        self._recent.move_to_end(stored.key)
        while len(self._recent) > self._memory_entries:
            self._recent.popitem(last=False)

    async def start(self) -> None:
        await self._writer.start()

    async def flush(self) -> None:
        await self._writer.flush()

    async def _write(self, batch: list[StoredResponse]) -> None:
        rows = [s.row() for s in batch if s.key not in self._deleted]
        if not rows:
            return
        # An id seen again in the same workspace (a provider repeating one) keeps the first.
        async with self.db.begin() as conn:
            first = conn.insert(stored_responses).on_conflict_do_nothing(
                index_elements=["scope", "id"]
            )
            await conn.execute(first, rows)

    async def aclose(self) -> None:
        await self._writer.aclose()

    # -- reading -----------------------------------------------------------------------------

    async def get(self, workspace_id: str | None, response_id: str) -> StoredResponse | None:
        key = (scope_of(workspace_id), response_id)
        if key in self._deleted:
            return None
        stored = self._recent.get(key)
        if stored is None:
            table = stored_responses.c
            async with self.db.connect() as conn:
                row = (
                    await conn.execute(
                        select(stored_responses).where(
                            table.scope == key[0], table.id == response_id
                        )
                    )
                ).first()
            if row is None:
                return None
            stored = StoredResponse.from_row(row)
        if stored.expires_at is not None and stored.expires_at <= utcnow():
            return None
        return stored

    async def chain(self, workspace_id: str | None, response_id: str) -> list[StoredResponse]:
        """The conversation that ends with `response_id`, oldest first; [] if it is unknown."""
        found: list[StoredResponse] = []
        current: str | None = response_id
        seen: set[str] = set()
        while current is not None and current not in seen and len(found) < MAX_CHAIN:
            seen.add(current)
            stored = await self.get(workspace_id, current)
            if stored is None:
                if not found:
                    return []
                break  # an older link expired or was deleted: the rest still stands
            found.append(stored)
            current = stored.previous_id
        found.reverse()
        return found

    async def delete(self, workspace_id: str | None, response_id: str) -> bool:
        if await self.get(workspace_id, response_id) is None:
            return False
        key = (scope_of(workspace_id), response_id)
        self._deleted.add(key)
        self._recent.pop(key, None)
        table = stored_responses.c
        async with self.db.begin() as conn:
            await conn.execute(
                delete(stored_responses).where(table.scope == key[0], table.id == response_id)
            )
        return True

    async def prune(self) -> int:
        """Drop expired answers; the number removed."""
        async with self.db.begin() as conn:
            result = await conn.execute(
                delete(stored_responses).where(stored_responses.c.expires_at <= utcnow())
            )
        self._deleted.clear()
        return result.rowcount or 0
