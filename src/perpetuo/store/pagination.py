"""Keyset pagination, newest first: stable under inserts, and cheap at any depth."""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Integer, Select, Table, and_, or_


class BadCursor(ValueError):
    pass


@dataclass
class Page:
    rows: list[Any]
    next_cursor: str | None

    @property
    def has_more(self) -> bool:
        return self.next_cursor is not None


def encode_cursor(created_at: dt.datetime, ident: Any) -> str:
    raw = f"{created_at.astimezone(dt.UTC).isoformat()}|{ident}"
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[dt.datetime, str]:
    """The (time, id) a cursor holds, the time in UTC; BadCursor for anything else, since
    a client may send any text (a cursor is opaque to it, not trusted by us)."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        stamp, ident = raw.split("|", 1)
        when = dt.datetime.fromisoformat(stamp)
        return (when.astimezone(dt.UTC) if when.tzinfo else when.replace(tzinfo=dt.UTC)), ident
    except (ValueError, UnicodeDecodeError, OverflowError):
        raise BadCursor("invalid pagination cursor") from None


def _integer_id(ident: str) -> int:
    try:
        value = int(ident)
    except ValueError:
        raise BadCursor("invalid pagination cursor") from None
    if not -(2**63) <= value < 2**63:  # what a BIGINT holds
        raise BadCursor("invalid pagination cursor")
    return value


def newest_first(query: Select[Any], table: Table, cursor: str | None, limit: int) -> Select[Any]:
    """`query` ordered by (created_at, id) descending, after `cursor`, one extra row."""
    created, ident = table.c.created_at, table.c.id
    if cursor:
        stamp, last = decode_cursor(cursor)
        last_id: Any = _integer_id(last) if isinstance(ident.type, Integer) else last
        query = query.where(or_(created < stamp, and_(created == stamp, ident < last_id)))
    return query.order_by(created.desc(), ident.desc()).limit(limit + 1)


def to_page(rows: Sequence[Any], limit: int) -> Page:
    items = list(rows[:limit])
    if len(rows) > limit and items:
        last = items[-1]
        return Page(items, encode_cursor(last.created_at, last.id))
    return Page(items, None)
