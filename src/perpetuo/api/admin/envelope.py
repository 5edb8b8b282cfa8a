"""One response shape: `{"data": ...}`, lists add `next_cursor` and `has_more`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Query

from perpetuo.store.pagination import Page

LimitParam = Annotated[int, Query(ge=1, le=200, description="Page size")]
CursorParam = Annotated[str | None, Query(description="`next_cursor` of the previous page")]


def one(data: Any) -> dict[str, Any]:
    return {"data": data}


def page(result: Page, view: Callable[[Any], dict[str, Any]]) -> dict[str, Any]:
    return {
        "data": [view(row) for row in result.rows],
        "next_cursor": result.next_cursor,
        "has_more": result.has_more,
    }
