"""multipart/form-data bodies (RFC 7578), parsed in place.

The body has been read whole within the upload limit (uploads are sent again on a retry or
a fallback, so they are kept until the request ends); parts are views of it, never copies.
"""

from __future__ import annotations

import re

from perpetuo.schema.errors import ErrorCode, ErrorType, GatewayError, bad_request
from perpetuo.schema.forms import Form, FormFile

MAX_PARTS = 64  # no client sends more; a body of thousands of tiny parts is refused
MAX_HEADER_BYTES = 8 * 1024  # the headers of one part
_BOUNDARY = re.compile(r'boundary=(?:"([^"]{1,200})"|([^;\s]{1,200}))', re.IGNORECASE)
_PARAM = re.compile(r';\s*([a-zA-Z*]+)="((?:[^"\\]|\\.)*)"')


def boundary_of(content_type: str | None) -> bytes:
    """The boundary of a multipart/form-data body; 415 for any other content type."""
    kind = (content_type or "").split(";", 1)[0].strip().lower()
    if kind != "multipart/form-data":
        raise GatewayError(
            415,
            "This endpoint takes a multipart/form-data body "
            f"(Content-Type was {kind or 'missing'!r}).",
            type=ErrorType.INVALID_REQUEST,
            code=ErrorCode.UNSUPPORTED_MEDIA_TYPE,
        )
    match = _BOUNDARY.search(content_type or "")
    if match is None:
        raise bad_request("The multipart Content-Type names no boundary.", param="content-type")
    return (match.group(1) or match.group(2)).encode("latin-1")


def parse_form(body: bytes, content_type: str | None) -> Form:
    boundary = boundary_of(content_type)
    view = memoryview(body)
    delimiter = b"--" + boundary
    start = body.find(delimiter)
    if start < 0:
        raise _malformed("the boundary never appears")
    fields: list[tuple[str, str | FormFile]] = []
    pos = start + len(delimiter)
    while True:
        if body.startswith(b"--", pos):
            return Form(tuple(fields))  # the closing delimiter
        if not body.startswith(b"\r\n", pos):
            raise _malformed("a delimiter is not followed by a line break")
        if len(fields) == MAX_PARTS:
            raise bad_request(f"A form may have at most {MAX_PARTS} parts.")
        head_end = body.find(b"\r\n\r\n", pos + 2, pos + 2 + MAX_HEADER_BYTES)
        if head_end < 0:
            raise _malformed("a part's headers do not end")
        name, filename, part_type = _part_headers(body[pos + 2 : head_end])
        content_start = head_end + 4
        content_end = body.find(b"\r\n" + delimiter, content_start)
        if content_end < 0:
            raise _malformed("the body ends inside a part")
        if filename is not None:
            data = view[content_start:content_end]
            fields.append((name, FormFile(filename, part_type or "application/octet-stream", data)))
        else:
            try:
                fields.append((name, body[content_start:content_end].decode("utf-8")))
            except UnicodeDecodeError:
                raise bad_request(f"Form field `{name}` is not UTF-8 text.", param=name) from None
        pos = content_end + 2 + len(delimiter)


def _part_headers(raw: bytes) -> tuple[str, str | None, str | None]:
    name = filename = part_type = None
    for line in raw.decode("utf-8", "replace").split("\r\n"):
        header, _, value = line.partition(":")
        header = header.strip().lower()
        if header == "content-disposition":
            params = {k.lower(): _unquote(v) for k, v in _PARAM.findall(value)}
            name, filename = params.get("name"), params.get("filename")
        elif header == "content-type":
            part_type = value.strip()
    if not name:
        raise _malformed("a part has no name")
    return name, filename, part_type


def _unquote(value: str) -> str:
    return value.replace('\\"', '"').replace("\\\\", "\\")


def _malformed(why: str) -> GatewayError:
    return bad_request(f"The multipart/form-data body is malformed: {why}.")
