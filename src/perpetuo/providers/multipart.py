"""multipart/form-data bodies for upstream uploads, built as a sequence of pieces: the
parts' headers are small new bytes, each file is the view of the client's body it came in,
so a 25 MB upload is never copied to be sent (again, on a retry or a fallback)."""

from __future__ import annotations

import secrets

from perpetuo.schema.forms import Form, FormFile

Pieces = tuple[bytes | memoryview, ...]
# What a header value or quoted name may not carry (WHATWG's multipart encoding escapes).
_ESCAPES = str.maketrans({'"': "%22", "\r": "%0D", "\n": "%0A"})


def encode_form(form: Form) -> tuple[Pieces, str]:
    """(body pieces, Content-Type with the boundary)."""
    boundary = f"perpetuo-{secrets.token_hex(16)}"
    pieces: list[bytes | memoryview] = []
    pending = bytearray()  # small pieces are joined; files go as they are
    for name, value in form.fields:
        head = f'--{boundary}\r\nContent-Disposition: form-data; name="{_quoted(name)}"'
        if isinstance(value, FormFile):
            content_type = value.content_type.translate(_ESCAPES)
            head += f'; filename="{_quoted(value.filename)}"\r\nContent-Type: {content_type}'
            pending += f"{head}\r\n\r\n".encode()
            pieces.append(bytes(pending))
            pending.clear()
            pieces.append(value.data)
            pending += b"\r\n"
        else:
            pending += f"{head}\r\n\r\n".encode() + value.encode() + b"\r\n"
    pending += f"--{boundary}--\r\n".encode()
    pieces.append(bytes(pending))
    return tuple(pieces), f"multipart/form-data; boundary={boundary}"


def _quoted(text: str) -> str:
    return text.translate(_ESCAPES)
