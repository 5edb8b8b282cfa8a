"""The guardrails stage: input checked before the cache and the provider, output after.
Attachments (files, images) are read by `file_guardrails`.

With no policy on the workspace, key or alias, each entry point costs three attribute reads.
Findings reach the request log (types, actions and counts, never values) through
`ctx.detail["guardrails"]`, and metrics through `Gateway.record`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from perpetuo.guardrails.engine import (
    Finding,
    GuardrailBlocked,
    Report,
    Vault,
    first_block,
    scan,
    transform,
)
from perpetuo.guardrails.injection import HEURISTIC, InjectionClassifier
from perpetuo.guardrails.policy import INJECTION, ResolvedPolicy, resolve
from perpetuo.guardrails.stream import StreamFilter
from perpetuo.pipeline.context import RequestContext
from perpetuo.pipeline.file_guardrails import check_files
from perpetuo.providers.base import NativeRequest
from perpetuo.routing.table import Alias
from perpetuo.schema.chat import ChatCompletionRequest, TextPart, ToolMessage, UserMessage
from perpetuo.schema.errors import ErrorCode, ErrorType, GatewayError


@dataclass(slots=True)
class GuardrailRun:
    """One request's policy, placeholders and findings."""

    policy: ResolvedPolicy
    vault: Vault = field(default_factory=Vault)
    report: Report = field(default_factory=Report)

    def stream_filter(self) -> StreamFilter | None:
        if not self.policy.output and not self.vault.restorable:
            return None
        return StreamFilter(self.policy.output, self.vault, self.report)


def native_lane(ctx: RequestContext, native: NativeRequest | None) -> NativeRequest | None:
    """The native request, unless guardrails rewrite what goes upstream (input redaction)
    or what comes back (output policy, restoring masked values): those work on the chat
    form, so every deployment then gets the translated request."""
    run: GuardrailRun | None = ctx.guardrails
    if native is None or run is None:
        return native
    rewritten = any(action != "log" for (d, _, action) in run.report.counts if d == "input")
    if not (rewritten or run.policy.output or run.vault.restorable):
        return native
    if native.native_only:
        raise GatewayError(
            400,
            f"{', '.join(native.native_only)} cannot be used under this workspace's guardrail "
            "policy, which rewrites requests or answers.",
            type=ErrorType.INVALID_REQUEST,
            code=ErrorCode.UNSUPPORTED_PARAMETER,
            param=native.native_only[0].split(" ", 1)[0],
        )
    return None


def policy_for(ctx: RequestContext, alias: Alias) -> ResolvedPolicy | None:
    workspace, key, own = ctx.workspace.guardrails, ctx.principal, alias.config.guardrails
    key_policy = key.guardrails if key is not None else None
    if workspace is None and key_policy is None and own is None:
        return None
    return resolve(workspace, key_policy, own)


async def check_input(
    ctx: RequestContext,
    alias: Alias,
    request: ChatCompletionRequest,
    classifier: InjectionClassifier = HEURISTIC,
) -> None:
    """Block (400 `guardrail_blocked`), redact in place (what goes upstream is the redacted
    request), or only record, as the policy says."""
    policy = policy_for(ctx, alias)
    if policy is None:
        return
    run = ctx.guardrails = GuardrailRun(policy)
    actions = policy.input
    if not actions:
        return
    try:
        for holder, attribute, text in _texts(request):
            findings = scan(text, actions)
            if findings:
                _enforce(run, "input", findings)
                setattr(holder, attribute, transform(text, findings, run.vault, policy.restore))
        if policy.files is not None:  # attachments, read off the event loop
            await check_files(run, request, classifier)
        if INJECTION in actions:
            await _score_injection(run, request, classifier)
    finally:
        _note(ctx, run)


async def _score_injection(
    run: GuardrailRun, request: ChatCompletionRequest, classifier: InjectionClassifier
) -> None:
    # Instructions come from system prompts; injections arrive as user text or tool results.
    for message in request.messages:
        if isinstance(message, UserMessage | ToolMessage):
            text = _joined(message.content)
            score = await classifier.score(text) if text else 0.0
            if score >= run.policy.injection_threshold:
                action = run.policy.input[INJECTION]
                _enforce(run, "input", [Finding(INJECTION, 0, len(text), action, score)])


def _enforce(run: GuardrailRun, direction: str, findings: list[Finding]) -> None:
    blocked = first_block(findings)
    if blocked is not None:
        run.report.blocked = (direction, blocked.detector)
        run.report.add(direction, [blocked])
        raise blocked_error(blocked.detector, direction)
    run.report.add(direction, findings)


def blocked_error(detector: str, direction: str) -> GatewayError:
    what = "request" if direction == "input" else "response"
    return GatewayError(
        400,
        f"The {what} was blocked by the `{detector}` guardrail of this workspace's policy.",
        type=ErrorType.INVALID_REQUEST,
        code=ErrorCode.GUARDRAIL_BLOCKED,
        param="messages" if direction == "input" else None,
    )


def filter_output(ctx: RequestContext, body: dict[str, Any]) -> None:
    """A complete answer: block or redact its message content by the output policy."""
    run: GuardrailRun | None = ctx.guardrails
    if run is None or not run.policy.output:
        return
    try:
        for message in _answer_messages(body):
            content = message.get("content")
            if isinstance(content, str) and content:
                findings = scan(content, run.policy.output)
                if findings:
                    _enforce(run, "output", findings)
                    message["content"] = transform(content, findings, run.vault, False)
    finally:
        _note(ctx, run)


def restore(ctx: RequestContext, body: dict[str, Any]) -> None:
    """Reversible masking: the caller's own redacted values back into the answer."""
    run: GuardrailRun | None = ctx.guardrails
    if run is None or not run.vault.restorable:
        return
    for message in _answer_messages(body):
        content = message.get("content")
        if isinstance(content, str):
            message["content"] = run.vault.restore(content)


def stream_blocked(ctx: RequestContext, exc: GuardrailBlocked) -> dict[str, Any]:
    """The error event that ends a stream whose output a guardrail blocked."""
    error = blocked_error(exc.detector, exc.direction)
    ctx.error_code = str(error.code)
    note(ctx)
    return {
        "error": {
            "message": error.message,
            "type": str(error.type),
            "param": error.param,
            "code": str(error.code),
        }
    }


def note(ctx: RequestContext) -> None:
    if ctx.guardrails is not None:
        _note(ctx, ctx.guardrails)


def _note(ctx: RequestContext, run: GuardrailRun) -> None:
    if run.report.counts or run.report.blocked or run.report.files:
        ctx.detail = {**(ctx.detail or {}), "guardrails": run.report.as_detail()}


def _answer_messages(body: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for choice in body.get("choices") or ():
        message = choice.get("message") if isinstance(choice, dict) else None
        if isinstance(message, dict):
            yield message


def _texts(request: ChatCompletionRequest) -> Iterator[tuple[Any, str, str]]:
    """(object, attribute, text) for every text the request carries, to scan and rewrite."""
    for message in request.messages:
        content = getattr(message, "content", None)
        if isinstance(content, str):
            if content:
                yield message, "content", content
        elif isinstance(content, list):
            for part in content:
                if isinstance(part, TextPart) and part.text:
                    yield part, "text", part.text


def _joined(content: object) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(p.text for p in content if isinstance(p, TextPart))
    return ""
