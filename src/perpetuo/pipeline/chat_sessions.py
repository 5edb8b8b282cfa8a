"""Messages posted to a chat session: the session's history goes into the chat request
(control/session_history.py decides how much of it), the request goes through the chat
pipeline like any other, streamed or not, and the exchange joins the history once answered.

The history is read once, before the request (it is the request's content); the exchange is
queued after the answer and written in the background, and so is a summary of the turns
that no longer fit, for sessions that ask for one (pipeline/session_summary.py).
"""

from __future__ import annotations

from typing import Any

import msgspec

from perpetuo.control.chat_sessions import DEFAULT_RETENTION_DAYS, RETENTION_SETTING, Conversation
from perpetuo.control.session_history import StoredMessage, message_tokens, prelude, window
from perpetuo.pipeline.chat import ChatReply, chat_completion
from perpetuo.pipeline.context import RequestContext
from perpetuo.pipeline.replay import CachedStream
from perpetuo.pipeline.runtime import Gateway
from perpetuo.pipeline.session_stream import SessionStream
from perpetuo.pipeline.session_summary import summarize
from perpetuo.pipeline.stream import ChatStream
from perpetuo.schema.chat import AssistantMessage, ChatCompletionRequest, Message, UserMessage
from perpetuo.store.ids import new_id
from perpetuo.store.timeutil import utcnow

Json = dict[str, Any]
# What of an answer's message is kept: what a later request may send back.
ANSWER_FIELDS = (
    "role",
    "content",
    "refusal",
    "tool_calls",
    "function_call",
    "reasoning_content",
    "thinking_blocks",
)


async def post_messages(
    gw: Gateway,
    ctx: RequestContext,
    conversation: Conversation,
    request: ChatCompletionRequest,
    extras: Json,
) -> ChatReply | ChatStream | CachedStream | SessionStream:
    """`request` holds only the posted messages; the session's history goes before them."""
    session = conversation.session
    posted = request.messages
    continuing = not isinstance(posted[0], UserMessage)  # tool results for the last turn
    kept = window(conversation.messages, session.max_history_tokens, continuing)
    earlier = [*prelude(session.system_prompt, session.summary), *(m.message for m in kept)]
    history = msgspec.convert(earlier, list[Message])  # each was validated when it was kept
    full = msgspec.structs.replace(request, messages=[*history, *posted])
    result = await chat_completion(gw, ctx, full, extras)
    record = _recorder(gw, ctx, conversation, posted)
    if isinstance(result, ChatReply):
        result.body["session_id"] = session.id
        answer = answer_of(result.body)
        if answer is not None:
            record(answer)
        return result
    return SessionStream(result, session.id, record)


def _recorder(
    gw: Gateway, ctx: RequestContext, conversation: Conversation, posted: list[Any]
) -> Any:
    session = conversation.session
    principal = ctx.principal
    days = int(ctx.workspace.settings.get(RETENTION_SETTING) or DEFAULT_RETENTION_DAYS)

    def record(answer: Json) -> None:
        """Queue the posted messages and the answer (written off the response path)."""
        now = utcnow()
        kept = [
            StoredMessage(new_id("msg"), m, message_tokens(m), now, ctx.request_id)
            for m in (msgspec.to_builtins(message) for message in posted)
        ]
        tokens = _answer_tokens(ctx, answer)
        kept.append(StoredMessage(new_id("msg"), answer, tokens, now, ctx.request_id))
        gw.chat_sessions.append(session, kept, days)
        size = sum(m.tokens for m in (*conversation.messages, *kept))
        if session.summary_model and size > session.max_history_tokens and principal:
            gw.after_response(summarize(gw, principal, session))

    return record


def _answer_tokens(ctx: RequestContext, answer: Json) -> int:
    """The provider's count of the answer (its reasoning, which is not sent back as text,
    left out), else an estimate."""
    usage = ctx.usage
    if usage is not None and not usage.estimated and usage.completion_tokens > 0:
        return max(1, usage.completion_tokens - usage.reasoning_tokens)
    return message_tokens(answer)


def answer_of(body: Json) -> Json | None:
    """Choice 0's message, as the history keeps it (None without a choice)."""
    choices = body.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        return None
    message = choices[0].get("message")
    if not isinstance(message, dict):
        return None
    return clean_answer(message)


def clean_answer(message: Json) -> Json:
    """The fields a later request may send back, validated as an assistant message."""
    kept = {k: message[k] for k in ANSWER_FIELDS if message.get(k) is not None}
    kept["role"] = "assistant"
    try:
        return msgspec.to_builtins(msgspec.convert(kept, AssistantMessage))
    except msgspec.ValidationError:  # a shape the schema does not know: keep the text
        content = message.get("content")
        return {"role": "assistant", "content": content if isinstance(content, str) else ""}
