"""Chat sessions below the HTTP layer: which turns a request carries (pure), how a streamed
answer is rebuilt for the history, and the store (retention, expiry, pruning, queued
messages of a session deleted meanwhile), on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select, update

from perpetuo.control.chat_sessions import Caller, ChatSession, ChatSessionStore
from perpetuo.control.session_history import StoredMessage, overflow, prelude, window
from perpetuo.pipeline.session_stream import AnswerCollector
from perpetuo.store.conversation_tables import chat_session_messages, chat_sessions
from perpetuo.store.database import Database
from perpetuo.store.ids import new_id
from perpetuo.store.migrate import upgrade
from perpetuo.store.timeutil import utcnow


def msg(role: str, tokens: int = 10, **fields: object) -> StoredMessage:
    return StoredMessage(new_id("msg"), {"role": role, "content": role, **fields}, tokens)


def roles(messages: list[StoredMessage]) -> list[str]:
    return [m.role for m in messages]


def test_the_window_keeps_the_newest_whole_turns_within_the_budget():
    history = [msg("user"), msg("assistant"), msg("user"), msg("assistant", 30), msg("user")]
    history.append(msg("assistant"))
    # Turns: 20, 40, 20 tokens. A budget of 65 keeps the last two; 59 only the last.
    assert window(history, 65, continuing=False) == history[2:]
    assert window(history, 59, continuing=False) == history[4:]
    assert window(history, 19, continuing=False) == []
    assert window(history, 1000, continuing=False) == history


def test_a_turn_with_tool_calls_stays_whole_and_the_last_one_always_when_continued():
    call = {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
    history = [msg("user"), msg("assistant", 5, tool_calls=[call]), msg("tool", 500)]
    assert window(history, 100, continuing=False) == []  # never a call without its result
    assert window(history, 1, continuing=True) == history  # the result is being answered


def test_messages_before_the_first_user_message_are_a_turn_of_their_own():
    history = [msg("assistant"), msg("user"), msg("assistant")]
    assert roles(window(history, 25, continuing=False)) == ["user", "assistant"]
    assert window(history, 30, continuing=False) == history


def test_overflow_folds_old_turns_until_half_the_budget_is_left():
    history = [msg(role) for _ in range(5) for role in ("user", "assistant")]  # 100 tokens
    assert overflow(history, 100) == []
    folded = overflow(history, 80)  # what stays fits in 40 tokens: the last two turns
    assert folded == history[:6] and roles(history[6:]) == ["user", "assistant"] * 2


def test_the_prelude_puts_the_system_prompt_then_the_summary():
    assert prelude("Be brief.", "They like tea.") == [
        {"role": "system", "content": "Be brief."},
        {"role": "system", "content": "Summary of the earlier conversation:\nThey like tea."},
    ]
    assert prelude(None, None) == []


def test_a_streamed_answer_is_rebuilt_with_its_calls_and_signed_reasoning():
    collector = AnswerCollector()
    chunks = [
        {"delta": {"role": "assistant", "reasoning_content": "Let me "}},
        {"delta": {"reasoning_content": "think."}},
        {"delta": {"thinking_blocks": [{"type": "thinking", "thinking": "", "signature": "s1"}]}},
        {"delta": {"content": "Calling"}},
        {"delta": {"tool_calls": [{"index": 1, "id": "b", "function": {"name": "g"}}]}},
        {"delta": {"tool_calls": [{"index": 0, "id": "a", "function": {"name": "f"}}]}},
        {"delta": {"tool_calls": [{"index": 0, "function": {"arguments": '{"x":'}}]}},
        {"delta": {"tool_calls": [{"index": 0, "function": {"arguments": "1}"}}]}},
    ]
    for chunk in chunks:
        collector.add({"choices": [{"index": 0, **chunk}]})
    assert collector.message() is None  # no finish_reason yet: not a complete answer
    collector.add({"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]})
    collector.add({"choices": [], "usage": {"prompt_tokens": 1}})
    message = collector.message()
    assert message is not None
    assert message["content"] == "Calling" and message["reasoning_content"] == "Let me think."
    assert message["thinking_blocks"] == [
        {"type": "thinking", "thinking": "Let me think.", "signature": "s1"}
    ]
    assert [c["id"] for c in message["tool_calls"]] == ["a", "b"]
    assert message["tool_calls"][0]["function"] == {"name": "f", "arguments": '{"x":1}'}


def session(workspace: str = "ws_default", days: float = 30, key: str | None = "k1") -> ChatSession:
    now = utcnow()
    return ChatSession(
        id=new_id("cs"),
        workspace_id=workspace,
        model="m",
        max_history_tokens=100,
        key_id=key,
        created_at=now,
        updated_at=now,
        expires_at=now + dt.timedelta(days=days),
    )


async def test_the_store_keeps_expires_and_prunes(store_url):
    db = Database(store_url)
    await upgrade(db)
    store = ChatSessionStore(db)
    caller = Caller("k1", None)
    try:
        live, stale, doomed = session(), session(), session()
        for made in (live, stale, doomed):
            await store.create(made)
        store.append(live, [msg("user"), msg("assistant")], retention_days=3)
        store.append(doomed, [msg("user")], retention_days=3)
        store.append(stale, [msg("user")], retention_days=3)
        # Read back at once, before the batch is written: the queued messages are there.
        queued = await store.conversation("ws_default", live.id, caller)
        assert queued is not None and roles(queued.messages) == ["user", "assistant"]
        assert await store.delete("ws_default", doomed.id, caller)
        assert await store.flush()  # the deleted session's message goes nowhere, no failure
        read = await store.conversation("ws_default", live.id, caller)
        assert read is not None and [m.seq is not None for m in read.messages] == [True, True]
        kept_until = utcnow() + dt.timedelta(days=3)  # retention counts from the last message
        assert abs(read.session.expires_at - kept_until) < dt.timedelta(minutes=1)
        async with db.begin() as conn:  # three days later, for `stale`
            await conn.execute(
                update(chat_sessions)
                .where(chat_sessions.c.id == stale.id)
                .values(expires_at=utcnow() - dt.timedelta(seconds=1))
            )
        # Expired: invisible at once, deleted (with its messages) by the retention pass.
        assert await store.conversation("ws_default", stale.id, caller) is None
        assert await store.session("ws_default", stale.id, None) is None
        assert await store.conversation("ws_other", live.id, caller) is None
        assert await store.conversation("ws_default", live.id, Caller("k2", None)) is None
        assert await store.prune() == 1
        async with db.connect() as conn:
            sessions_left = await conn.scalar(select(func.count()).select_from(chat_sessions))
            messages_left = set(
                (await conn.execute(select(chat_session_messages.c.session_id))).scalars()
            )
        assert sessions_left == 1 and messages_left == {live.id}
    finally:
        await store.aclose()
        await db.dispose()


async def test_a_person_sees_the_sessions_of_all_their_keys(store_url):
    db = Database(store_url)
    await upgrade(db)
    store = ChatSessionStore(db)
    try:
        theirs = session(key="k1")
        theirs.user_id = "usr_1"
        master = session(key=None)
        await store.create(theirs)
        await store.create(master)
        assert await store.session("ws_default", theirs.id, Caller("k9", "usr_1")) is not None
        assert await store.session("ws_default", theirs.id, Caller("k9", "usr_2")) is None
        assert await store.session("ws_default", master.id, Caller(None, None)) is not None
        assert await store.session("ws_default", master.id, Caller("k1", "usr_1")) is None
        page, more = await store.page("ws_default", Caller("k1", None), limit=10)
        assert [s.id for s, _ in page] == [theirs.id] and not more
    finally:
        await store.aclose()
        await db.dispose()
