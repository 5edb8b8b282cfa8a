"""Summaries of the chat-session turns that no longer fit a session's history budget.

Only for sessions created with a `summary_model`. After an answer that leaves the history
over its budget, a background task folds the oldest turns (enough that what stays is within
half the budget) and the previous summary into a new summary, with one chat request to the
summary model. That request goes through the chat pipeline as the key that posted the
message: it counts against the key's and workspace's limits and budgets, and is in the
request log as `chat_sessions.summary`. Until a summary is ready, or when it fails (a
limit, an error), the oldest turns are simply left out of requests.
"""

from __future__ import annotations

import logging

from perpetuo.auth.principal import Principal
from perpetuo.control.chat_sessions import ChatSession
from perpetuo.control.session_history import overflow, transcript
from perpetuo.pipeline.chat import ChatReply, chat_completion
from perpetuo.pipeline.context import RequestContext
from perpetuo.pipeline.runtime import Gateway
from perpetuo.schema.chat import ChatCompletionRequest, SystemMessage, UserMessage
from perpetuo.schema.errors import GatewayError
from perpetuo.store.ids import new_request_id

log = logging.getLogger("perpetuo.chat_sessions")

SUMMARY_ENDPOINT = "chat_sessions.summary"
MAX_SUMMARY_TOKENS = 1024
INSTRUCTIONS = (
    "You keep the memory of a conversation between a user and an assistant. Merge the "
    "summary below, if there is one, and the turns that follow it into one new summary "
    "that lets the assistant continue the conversation: keep facts, names, numbers, "
    "decisions, the user's goals and preferences, tool results that matter, and open "
    "questions; leave out greetings and repetition. Answer with the summary only, in at "
    "most 300 words, in the conversation's language."
)


async def summarize(gw: Gateway, principal: Principal, session: ChatSession) -> None:
    """Fold the turns over the budget into the session's summary (one at a time per session)."""
    store = gw.chat_sessions
    if not store.claim_summary(session.id):
        return
    try:
        await store.flush()  # the exchange just answered gets its place in the session
        conversation = await store.conversation(session.workspace_id, session.id, None)
        if conversation is None:
            return
        current = conversation.session
        folded = overflow(conversation.messages, current.max_history_tokens)
        if not folded or folded[-1].seq is None or not current.summary_model:
            return
        text = await _summary(
            gw, principal, current.summary_model, transcript(current.summary, folded)
        )
        if text:
            await store.set_summary(session.id, text, folded[-1].seq)
    except Exception as exc:  # a background task: the session keeps working without it
        log.warning("summarizing chat session %s failed: %s", session.id, type(exc).__name__)
    finally:
        store.release_summary(session.id)


async def _summary(gw: Gateway, principal: Principal, model: str, text: str) -> str | None:
    request = ChatCompletionRequest(
        model=model,
        messages=[SystemMessage(content=INSTRUCTIONS), UserMessage(content=text)],
        max_tokens=MAX_SUMMARY_TOKENS,
    )
    ctx = RequestContext(new_request_id(), endpoint=SUMMARY_ENDPOINT, principal=principal)
    try:
        reply = await chat_completion(gw, ctx, request, {})
    except GatewayError as exc:
        ctx.finish(exc.status, str(exc.code) if exc.code else None)
        gw.record(ctx)
        log.info("chat session summary refused (%s): %s", exc.status, exc.code)
        return None
    ctx.finish(200)
    gw.record(ctx)
    if not isinstance(reply, ChatReply):
        return None
    choices = reply.body.get("choices") or [{}]
    message = choices[0].get("message") or {}
    content = message.get("content")
    if not isinstance(content, str):
        return None
    return content.strip() or None
