"""Posted forms: read once, checked for CSRF and origin, converted into service specs.

Forms are `application/x-www-form-urlencoded` (no file uploads), parsed here so no
multipart library is needed. Validation problems come back as {field: message}, keyed by
the same dotted names the inputs carry (`limits.rpm`, `deployments.0.model`), so each
message is shown next to the input that caused it.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, TypeVar
from urllib.parse import parse_qsl

from fastapi import Depends, Request
from pydantic import BaseModel, ValidationError

from perpetuo.control.errors import forbidden
from perpetuo.schema.errors import ErrorType, GatewayError
from perpetuo.ui.security import (
    CSRF_FIELD,
    CSRF_HEADER,
    PRESESSION_COOKIE,
    same_origin,
    tokens_match,
)
from perpetuo.ui.session import VisitorDep

MAX_FORM_BYTES = 256 * 1024
M = TypeVar("M", bound=BaseModel)
Errors = dict[str, str]


class FormData:
    def __init__(self, pairs: list[tuple[str, str]]) -> None:
        self.pairs = pairs
        self.values: dict[str, str] = {}
        for name, value in pairs:
            self.values.setdefault(name, value)

    def get(self, name: str, default: str = "") -> str:
        return self.values.get(name, default).strip()

    def getlist(self, name: str) -> list[str]:
        return [v.strip() for n, v in self.pairs if n == name and v.strip()]

    def checked(self, name: str) -> bool:
        return name in self.values

    def optional(self, name: str) -> str | None:
        return self.get(name) or None

    def integer(self, name: str, errors: Errors) -> int | None:
        text = self.get(name).replace(",", "").replace("_", "")
        if not text:
            return None
        try:
            return int(text)
        except ValueError:
            errors[name] = "Enter a whole number."
            return None

    def number(self, name: str, errors: Errors) -> float | None:
        text = self.get(name).replace(",", "").lstrip("$")
        if not text:
            return None
        try:
            return float(text)
        except ValueError:
            errors[name] = "Enter a number."
            return None

    def lines(self, name: str) -> list[str] | None:
        """A textarea or input of items separated by new lines or commas; blank: None."""
        items = [p.strip() for p in self.get(name).replace(",", "\n").splitlines()]
        items = [p for p in items if p]
        return items or None


async def read_form(request: Request) -> FormData:
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        raise _bad(413, "This form is too large.")
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, max_num_fields=2000)
    except (UnicodeDecodeError, ValueError):
        raise _bad(400, "This form could not be read.") from None
    return FormData(pairs)


def _bad(status: int, message: str) -> GatewayError:
    return GatewayError(status, message, type=ErrorType.INVALID_REQUEST, code="invalid_request")


def refuse_forgery() -> GatewayError:
    return forbidden(
        "This form could not be verified (it may be stale or come from another site). "
        "Reload the page and try again."
    )


async def session_form(request: Request, visitor: VisitorDep) -> FormData:
    """A form posted by a signed-in person: same origin and the session's CSRF token."""
    if not same_origin(request):
        raise refuse_forgery()
    form = await read_form(request)
    if not tokens_match(form.values.get(CSRF_FIELD), visitor.csrf):
        raise refuse_forgery()
    return form


async def session_json(request: Request, visitor: VisitorDep) -> dict[str, Any]:
    """A JSON body sent by the dashboard's own script: the CSRF token is in a header."""
    if not same_origin(request) or not tokens_match(request.headers.get(CSRF_HEADER), visitor.csrf):
        raise refuse_forgery()
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        raise _bad(413, "This request is too large.")
    try:
        data = json.loads(body or b"{}")
    except ValueError:
        raise _bad(400, "The request body is not valid JSON.") from None
    if not isinstance(data, dict):
        raise _bad(400, "The request body must be a JSON object.")
    return data


async def presession_form(request: Request) -> FormData:
    """Sign-in and sign-up forms, before any session: a double-submit token instead."""
    if not same_origin(request):
        raise refuse_forgery()
    form = await read_form(request)
    cookie = request.cookies.get(PRESESSION_COOKIE)
    if not cookie or not tokens_match(form.values.get(CSRF_FIELD), cookie):
        raise refuse_forgery()
    return form


SessionForm = Annotated[FormData, Depends(session_form)]
SessionJson = Annotated[dict[str, Any], Depends(session_json)]
PresessionForm = Annotated[FormData, Depends(presession_form)]


def validate(model: type[M], data: dict[str, Any], errors: Errors) -> M | None:
    """The model, or None with each problem added to `errors` under its field's name."""
    try:
        parsed = model.model_validate(data)
    except ValidationError as exc:
        for problem in exc.errors():
            field = ".".join(str(part) for part in problem.get("loc", ()))
            message = str(problem.get("msg", "Invalid value")).removeprefix("Value error, ")
            message = message[:1].upper() + message[1:].rstrip(".") + "."
            errors.setdefault(field or "form", message)
        return None
    return None if errors else parsed


def error_of(exc: GatewayError, where: str) -> Errors:
    """A service's refusal, placed next to the field it names, else next to `where`."""
    return {exc.param or where: exc.message}
