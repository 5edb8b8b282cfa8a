"""What a provider's model list says: the models, one page at a time (model discovery)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ListedModel:
    """One model a provider's model list names, with what the list says of it."""

    id: str  # as the provider's API takes it in `model`
    endpoints: frozenset[str] | None = None  # what it serves, when the list says
    context_window: int | None = None
    max_output: int | None = None
    input_price: float | None = None  # USD per million tokens, when the list says (OpenRouter)
    output_price: float | None = None


@dataclass(slots=True)
class ModelPage:
    models: list[ListedModel]
    cursor: str | None = None  # asks for the next page; None: this was the last
