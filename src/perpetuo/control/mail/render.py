"""Rendering a mail from its templates: the subject and text body from `<name>.txt`, the HTML
body from `<name>.html` (autoescaped: names of people and workspaces are not markup)."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from jinja2 import Environment

TEMPLATES = Path(__file__).parent / "templates"


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str


@functools.cache
def _environments() -> tuple[Environment, Environment]:
    # Jinja loads with the first mail, not at every start of a gateway that may send none.
    from jinja2 import Environment, FileSystemLoader, StrictUndefined

    def build(autoescape: bool) -> Environment:
        return Environment(
            loader=FileSystemLoader(TEMPLATES),
            # Text bodies are not markup; the HTML environment escapes everything.
            autoescape=autoescape,  # noqa: S701
            undefined=StrictUndefined,  # a missing value fails loudly (in the tests)
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=True,
        )

    return build(False), build(True)


def render(template: str, context: Mapping[str, Any]) -> Rendered:
    text_env, html_env = _environments()
    text = text_env.get_template(f"{template}.txt")
    subject = "".join(text.blocks["subject"](text.new_context(dict(context)))).strip()
    return Rendered(
        subject=one_line(subject)[:300],
        text=text.render(context),
        html=html_env.get_template(f"{template}.html").render(context),
    )


def one_line(value: str) -> str:
    """A header value cannot hold line breaks (and must not: that is header injection)."""
    return " ".join(value.split())
