"""Stored Responses answers: ids are per workspace (a provider chooses native ids, and one
workspace's must never shadow another's), and a row the database refuses never blocks the
rows queued after it."""

from __future__ import annotations

from perpetuo.control.stored_responses import ResponseStore, StoredResponse
from perpetuo.store.database import Database
from perpetuo.store.migrate import upgrade


def answer(response_id: str, workspace: str | None, text: str) -> StoredResponse:
    return StoredResponse(
        id=response_id,
        workspace_id=workspace,
        alias="m",
        input_items=[{"role": "user", "content": text}],
        response={"id": response_id, "output": [{"type": "message", "content": text}]},
    )


async def test_ids_are_per_workspace_and_bad_rows_do_not_block_the_queue(store_url):
    db = Database(store_url)
    await upgrade(db)
    store = ResponseStore(db)
    try:
        store.put(answer("resp_same", "ws_default", "mine"))
        store.put(answer("resp_same", None, "the platform's"))
        store.put(answer("resp_same", "ws_default", "a repeat of the id"))  # kept: the first
        store.put(answer("x" * 500, "ws_default", "an id too long for its column"))
        store.put(answer("resp_after", "ws_default", "queued after the bad one"))
        await store.flush()
        fresh = ResponseStore(db)  # reads the database, not this store's memory
        mine = await fresh.get("ws_default", "resp_same")
        assert mine is not None and mine.input_items[0]["content"] == "mine"
        platform = await fresh.get(None, "resp_same")
        assert platform is not None and platform.input_items[0]["content"] == "the platform's"
        assert await fresh.get("ws_default", "resp_after") is not None
        assert await fresh.get("ws_other", "resp_same") is None
        assert await fresh.delete("ws_default", "resp_same")
        assert await fresh.get(None, "resp_same") is not None  # the other scope's stays
    finally:
        await store.aclose()
        await db.dispose()
