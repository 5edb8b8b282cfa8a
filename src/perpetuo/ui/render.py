"""Rendering pages: one Jinja2 environment, the context every page shares, flash notices."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from perpetuo.ui.formatting import FILTERS
from perpetuo.ui.security import FLASH_COOKIE, clear_cookie, set_cookie

TEMPLATES = Path(__file__).parent / "templates"


def build_environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(["html", "svg"], default_for_string=True),
        undefined=StrictUndefined,  # a typo in a template fails loudly, in the tests
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=False,
    )
    env.filters.update(FILTERS)
    return env


def render(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    state = request.app.state
    flash = _take_flash(request)
    html = state.templates.get_template(template).render(
        request=request,
        static=state.static.url,
        flash=flash,
        errors=context.pop("errors", None) or {},
        **context,
    )
    response = HTMLResponse(html, status_code=status)
    if flash is not None:
        clear_cookie(response, request, FLASH_COOKIE)
    return response


def redirect(request: Request, url: str, notice: str | None = None) -> RedirectResponse:
    """After a successful POST: see the result with a GET (no resubmission on reload)."""
    response = RedirectResponse(url, status_code=303)
    if notice:
        set_cookie(response, request, FLASH_COOKIE, quote(notice[:300]), max_age=60)
    return response


def _take_flash(request: Request) -> str | None:
    value = request.cookies.get(FLASH_COOKIE)
    return unquote(value) if value else None


def markup(text: str) -> Markup:
    """Trusted markup made by this package (the SVG charts); never user input."""
    return Markup(text)  # noqa: S704


def text_response(status: int, message: str) -> Response:
    return Response(message, status_code=status, media_type="text/plain; charset=utf-8")
