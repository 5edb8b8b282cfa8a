"""Template filters: money, counts, durations and times as people read them."""

from __future__ import annotations

import datetime as dt
from typing import Any

from jinja2 import pass_context
from jinja2.runtime import Context

from perpetuo.control.money import USD, Currency, currency_of
from perpetuo.store.timeutil import utcnow


def usd(value: Any, digits: int | None = None) -> str:
    if value is None:
        return "—"
    amount = float(value)
    if digits is None:
        digits = 2 if abs(amount) >= 1 or amount == 0 else 4 if abs(amount) >= 0.01 else 6
    return f"${amount:,.{digits}f}"


def page_currency(page: Any) -> Currency:
    """The display currency of a workspace page (its setting, at the operator's rate)."""
    if page is None or not hasattr(page, "settings"):
        return USD
    return currency_of(page.plane.currency, page.settings.currency)


@pass_context
def money(context: Context, value: Any) -> str:
    """A USD amount in the page's workspace currency: `8,410.00 INR`, or `$100.00`."""
    currency = page_currency(context.get("page"))
    return currency.label(None if value is None else currency.from_usd(float(value)))


@pass_context
def rate_note(context: Context, _: Any = None) -> str:
    """`1 USD = 84.1 INR (rate of 2026-12-01)` beside converted amounts; empty for USD."""
    return page_currency(context.get("page")).rate_note


def price(value: Any) -> str:
    """A list price in USD as vendors write it: `$0.15`, `$0.075`, `$2.50` (up to 4 places)."""
    if value is None:
        return "—"
    whole, _, places = f"{float(value):,.4f}".partition(".")
    return f"${whole}.{places.rstrip('0').ljust(2, '0')}"


def count(value: Any) -> str:
    if value is None:
        return "—"
    number = float(value)
    for threshold, unit, suffix in ((1e9, 1e9, "B"), (1e6, 1e6, "M"), (1e4, 1e3, "k")):
        if abs(number) >= threshold:
            return f"{number / unit:.1f}".removesuffix(".0") + suffix
    return f"{int(number):,}" if number == int(number) else f"{number:,.2f}"


def ms(value: Any) -> str:
    if value is None:
        return "—"
    number = float(value)
    if number >= 1000:
        return f"{number / 1000:.2f} s"
    return f"{number:.1f} ms".replace(".0 ms", " ms") if number < 10 else f"{number:.0f} ms"


def percent(value: Any) -> str:
    return "—" if value is None else f"{float(value) * 100:.1f}%"


def short_time(value: Any) -> str:
    """`15:48:34` today, `Nov 22 15:48` before (UTC); the full time goes in a tooltip."""
    moment = parse_time(value)
    if moment is None:
        return "—"
    moment = moment.astimezone(dt.UTC)
    if moment.date() == utcnow().date():
        return moment.strftime("%H:%M:%S")
    return moment.strftime("%b %d %H:%M")


def parse_time(value: Any) -> dt.datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, dt.datetime):
        moment = value
    else:
        moment = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def when(value: Any) -> str:
    """`2025-05-20 10:00:03 UTC`."""
    moment = parse_time(value)
    return "—" if moment is None else moment.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def ago(value: Any) -> str:
    """`3 min ago`, `in 2 days`, for times near now."""
    moment = parse_time(value)
    if moment is None:
        return "never"
    seconds = (utcnow() - moment).total_seconds()
    future = seconds < 0
    seconds = abs(seconds)
    for size, unit in ((86400, "day"), (3600, "h"), (60, "min")):
        if seconds >= size:
            amount = int(seconds // size)
            text = f"{amount} {unit}{'s' if unit == 'day' and amount > 1 else ''}"
            break
    else:
        return "just now"
    return f"in {text}" if future else f"{text} ago"


def choices(values: Any) -> list[tuple[str, str]]:
    """Options for a select whose labels are its values."""
    return [(str(v), str(v)) for v in values]


def provider_choice(value: str, names: dict[str, str]) -> tuple[str, str]:
    """A provider id for a select, labelled with its credential's name when it has one."""
    return (value, names.get(value, value))


# The APIs (dialects) a request can have been made in, by the request log's `endpoint`.
API_NAMES = {
    "chat": "Chat Completions",
    "chat_sessions": "Chat sessions",
    "chat_sessions.summary": "Session summaries",
    "responses": "Responses",
    "messages": "Messages",
    "embeddings": "Embeddings",
    "images.generations": "Images",
    "images.edits": "Image edits",
    "audio.transcriptions": "Transcriptions",
    "audio.translations": "Translations",
    "audio.speech": "Speech",
    "rerank": "Rerank",
    "completions": "Completions",
    "moderations": "Moderations",
}


def api_name(endpoint: Any) -> str:
    return API_NAMES.get(str(endpoint), str(endpoint or "—"))


FILTERS = {
    "api_name": api_name,
    "provider_choice": provider_choice,
    "choices": choices,
    "usd": usd,
    "money": money,
    "rate_note": rate_note,
    "price": price,
    "count": count,
    "ms": ms,
    "percent": percent,
    "when": when,
    "short_time": short_time,
    "ago": ago,
}
