"""What a detector is: a name, a category, a priority for overlaps, and a finder."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Literal

Category = Literal["pii", "secrets", "injection"]
Span = tuple[int, int]


@dataclass(frozen=True, slots=True)
class Detector:
    name: str
    category: Category
    priority: int  # when two findings overlap, the higher priority wins
    find: Callable[[str], Iterator[Span]]

    @property
    def label(self) -> str:
        """The placeholder's type: `<EMAIL_1>`, `<CREDIT_CARD_2>`."""
        return self.name.upper()
