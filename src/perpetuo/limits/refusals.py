"""The errors a refused request gets, and the x-ratelimit-* headers an admitted one carries.

Rate limits, token quotas and the concurrency cap answer 429 with `Retry-After`: waiting
helps. An exhausted budget or prepaid credits answer 402: waiting within the period does not
help, and the OpenAI SDKs retry 429s automatically (402 is raised at once as an
APIStatusError), so a 402 spares the client pointless retries and says "money", not "slow
down". Every message names the limit, its scope and its value.
"""

from __future__ import annotations

import math
from decimal import Decimal

from perpetuo.limits import gcra
from perpetuo.limits.backend import UNLIMITED
from perpetuo.limits.planning import Planned
from perpetuo.schema import headers as h
from perpetuo.schema.errors import ErrorCode, ErrorType, GatewayError

_SCOPE = {
    "key": "this API key",
    "workspace": "this workspace",
    "team": "this team",
    "user": "this user",
}
_PERIOD = {
    "daily": "per UTC day",
    "weekly": "per ISO week (UTC)",
    "monthly": "per UTC month",
    "total": "in total",
}


def usd(micros: int) -> str:
    return f"${Decimal(micros) / 1_000_000:,.2f}"


def duration(ms: float) -> str:
    """A reset time as OpenAI writes it: 20ms, 1.5s, 6m0s, 1h2m3s."""
    if ms < 1000:
        return f"{max(0, math.ceil(ms))}ms"
    seconds = ms / 1000
    if seconds < 60:
        text = f"{seconds:.3f}".rstrip("0").rstrip(".")
        return f"{text}s"
    whole = math.ceil(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return (f"{hours}h" if hours else "") + f"{minutes}m{secs}s"


def retry_headers(wait_seconds: float) -> dict[str, str]:
    return {
        h.RETRY_AFTER: str(max(1, math.ceil(wait_seconds))),
        h.RETRY_AFTER_MS: str(max(1, math.ceil(wait_seconds * 1000))),
    }


def wait_seconds(planned: Planned, wait_ms: int, now: float) -> float:
    """How long until the refused check could pass: the meter's answer, the end of the
    window, or (for a concurrency cap) a second: a slot frees when any request ends."""
    if wait_ms > 0:
        return wait_ms / 1000
    if planned.window is not None:
        left = planned.window.seconds_left(now)
        return math.inf if left is None else left
    return 1.0


def refusal(
    planned: Planned, wait_ms: int, found: int, request_amount: int, now: float
) -> GatewayError:
    """The error for a refused check; `found` is the counter's value when it was checked."""
    who = _SCOPE[planned.scope]
    code = planned.code
    if code in (ErrorCode.BUDGET_EXCEEDED, ErrorCode.INSUFFICIENT_CREDITS):
        return _payment(planned, who, found, request_amount)
    wait = wait_seconds(planned, wait_ms, now)
    if code is ErrorCode.RATE_LIMIT_REQUESTS:
        message = (
            f"Rate limit reached for requests: {who} allows {planned.limit} requests "
            f"per minute. Try again in {duration(wait * 1000)}."
        )
    elif code is ErrorCode.RATE_LIMIT_TOKENS and wait_ms == gcra.NEVER:
        wait = 60.0
        message = (
            f"Request too large for the token rate limit: {who} allows "
            f"{planned.limit} tokens per minute and this request may use up to "
            f"{request_amount} (prompt plus max_tokens). Lower max_tokens or the prompt."
        )
    elif code is ErrorCode.RATE_LIMIT_TOKENS:
        message = (
            f"Rate limit reached for tokens: {who} allows {planned.limit} tokens per "
            f"minute and this request may use up to {request_amount}. Try again in "
            f"{duration(wait * 1000)}."
        )
    elif code in (ErrorCode.QUOTA_DAILY_TOKENS, ErrorCode.QUOTA_MONTHLY_TOKENS):
        period = "daily" if code is ErrorCode.QUOTA_DAILY_TOKENS else "monthly"
        message = (
            f"The {period} token quota of {who} is used up: {planned.limit} tokens "
            f"{_PERIOD[period]}, {max(0, found)} used or reserved, this request may "
            f"use up to {request_amount}. It resets in {duration(wait * 1000)}."
        )
    else:
        message = (
            f"Too many concurrent requests: {who} allows {planned.limit} requests in "
            f"flight at once. Try again when one has finished."
        )
    return GatewayError(
        429, message, type=ErrorType.RATE_LIMIT, code=code, headers=retry_headers(wait)
    )


def _payment(planned: Planned, who: str, found: int, request_amount: int) -> GatewayError:
    if planned.code is ErrorCode.INSUFFICIENT_CREDITS:
        balance = -found  # the counter holds -(balance) + reservations in flight
        message = (
            f"Insufficient credits: {who} has {usd(max(0, balance))} of prepaid credit "
            f"available and this request may cost up to {usd(request_amount)}. Add "
            f"credits to continue."
        )
    else:
        period = planned.window.period if planned.window else "total"
        message = (
            f"Budget exceeded: {who} has a budget of {usd(planned.limit)} "
            f"{_PERIOD[period]}; {usd(max(0, found))} is spent or reserved and this "
            f"request may cost up to {usd(request_amount)}."
        )
    return GatewayError(402, message, type=ErrorType.INSUFFICIENT_QUOTA, code=planned.code)


def limits_unavailable() -> GatewayError:
    return GatewayError(
        503,
        "Usage limits cannot be checked right now; try again shortly.",
        type=ErrorType.UNAVAILABLE,
        code=ErrorCode.LIMITS_UNAVAILABLE,
        headers=retry_headers(1),
    )


def ratelimit_headers(
    planned: list[Planned], states: list[tuple[int, int]], now: float
) -> list[tuple[str, str]]:
    """x-ratelimit-* for the most constraining request limit and token limit (the least
    remaining; on a tie, the later reset)."""
    best: dict[str, tuple[int, float, int]] = {}
    for item, (remaining, reset_ms) in zip(planned, states, strict=True):
        if item.header is None or remaining == UNLIMITED:
            continue
        if item.window is not None:
            left = item.window.seconds_left(now)
            reset_ms = 0 if left is None else int(left * 1000)
        candidate = (max(0, remaining), -reset_ms, item.limit)
        if item.header not in best or candidate < best[item.header]:
            best[item.header] = candidate
    out: list[tuple[str, str]] = []
    for group, (limit_h, remaining_h, reset_h) in (
        (
            "requests",
            (
                h.RATELIMIT_LIMIT_REQUESTS,
                h.RATELIMIT_REMAINING_REQUESTS,
                h.RATELIMIT_RESET_REQUESTS,
            ),
        ),
        (
            "tokens",
            (h.RATELIMIT_LIMIT_TOKENS, h.RATELIMIT_REMAINING_TOKENS, h.RATELIMIT_RESET_TOKENS),
        ),
    ):
        if group in best:
            remaining, negative_reset, limit = best[group]
            out += [
                (limit_h, str(limit)),
                (remaining_h, str(remaining)),
                (reset_h, duration(-negative_reset)),
            ]
    return out
