"""An attachment's bytes, its kind, and its text, within a policy's caps.

The declared media type (a data URL's, else the filename's extension, else the leading
bytes) names the kind, and the bytes must agree: a file that claims to be a PDF and is not
one is `Unreadable` (the client's mistake, a 400). A file the guardrail may not or cannot
read (over a cap, a format it does not know, encrypted) is `Unscannable`, and the policy's
`unscannable` setting decides whether it passes.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from typing import Literal

from perpetuo.guardrails.policy import FileRules

Kind = Literal["pdf", "docx", "text", "image"]

DOCX_TYPE = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
_TEXT_TYPES = frozenset(
    ("application/json", "application/xml", "application/x-yaml", "application/yaml",
     "application/csv", "application/x-ndjson", "application/javascript")
)  # fmt: skip
_EXTENSIONS: dict[str, Kind] = {
    **dict.fromkeys(("pdf",), "pdf"),
    **dict.fromkeys(("docx",), "docx"),
    **dict.fromkeys(
        ("txt", "md", "csv", "tsv", "json", "jsonl", "xml", "yaml", "yml", "log", "html", "htm"),
        "text",
    ),
    **dict.fromkeys(("png", "jpg", "jpeg", "gif", "webp"), "image"),
}
_IMAGE_MAGIC = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF87a", b"GIF89a")
_MEDIA_TYPE = re.compile(r"[\w.+-]{1,40}/[\w.+-]{1,80}")


class Unreadable(Exception):
    """The bytes are not what they claim to be (corrupt, truncated, not base64)."""


class Unscannable(Exception):
    """The guardrail does not read this file; `cap` when a size, page or time cap is why."""

    def __init__(self, reason: str, *, cap: bool) -> None:
        super().__init__(reason)
        self.cap = cap


@dataclass(slots=True)
class Extracted:
    kind: Kind
    text: str
    pages: int = 0  # PDF pages read; an image counts as one
    ocr_pages: int = 0  # pages and images read by OCR
    read: bool = True  # False: an image while OCR is off (nothing was looked at)


def split_data(data: str) -> tuple[str | None, str]:
    """(declared media type, base64 payload) of a data URL or of bare base64."""
    if not data.startswith("data:"):
        return None, data
    header, _, payload = data[5:].partition(",")
    media_type, _, encoding = header.partition(";")
    if "base64" not in encoding.split(";"):
        raise Unreadable("the data URL is not base64-encoded")
    return media_type.strip().lower() or None, payload


def declared_kind(media_type: str | None, filename: str | None) -> Kind | None:
    if media_type == "application/pdf":
        return "pdf"
    if media_type == DOCX_TYPE:
        return "docx"
    if media_type is not None and (media_type.startswith("text/") or media_type in _TEXT_TYPES):
        return "text"
    if media_type is not None and media_type.startswith("image/"):
        return "image"
    if filename and "." in filename:
        return _EXTENSIONS.get(filename.rsplit(".", 1)[1].lower())
    return None


def describe(media_type: str | None) -> str:
    """A media type fit for an error message and the request log: a well-formed one, or not."""
    if media_type and _MEDIA_TYPE.fullmatch(media_type):
        return media_type
    return "an unknown format"


def read(data: str, filename: str | None, rules: FileRules, deadline: float) -> Extracted:
    """The text of one attachment (`data`: a data URL or bare base64). `deadline` is a
    `time.monotonic()` instant: readers stop between pages once it has passed."""
    media_type, payload = split_data(data)
    if "\n" in payload or " " in payload:  # base64 wrapped in lines, as MIME writes it
        payload = "".join(payload.split())
    # Decoded size from the encoded length, so an oversized file is never decoded.
    size = len(payload) * 3 // 4 - payload[-2:].count("=")
    if size > rules.max_bytes:
        raise Unscannable(f"it is over the size cap of {rules.max_bytes} bytes", cap=True)
    try:
        raw = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise Unreadable("the file data is not valid base64") from None
    kind = declared_kind(media_type, filename) or sniffed_kind(raw)
    if kind is None:
        raise Unscannable(f"{describe(media_type)} is not a format the guardrail reads", cap=False)
    if kind == "image" and not rules.ocr:
        return Extracted("image", "", read=False)
    if kind == "pdf":
        from perpetuo.guardrails.files.pdf import read_pdf

        return read_pdf(raw, rules, deadline)
    if kind == "docx":
        from perpetuo.guardrails.files.docx import read_docx

        return Extracted("docx", read_docx(raw, rules, deadline))
    if kind == "image":
        from perpetuo.guardrails.files.ocr import read_image

        return Extracted("image", read_image(raw, deadline), pages=1, ocr_pages=1)
    return Extracted("text", decode_text(raw))


def sniffed_kind(raw: bytes) -> Kind | None:
    head = raw[:16]
    if raw[:1024].lstrip().startswith(b"%PDF-"):
        return "pdf"
    if head.startswith(b"PK\x03\x04") and b"word/" in raw[:65536]:
        return "docx"
    if head.startswith(_IMAGE_MAGIC) or (head[:4] == b"RIFF" and head[8:12] == b"WEBP"):
        return "image"
    return None


def decode_text(raw: bytes) -> str:
    encoding = "utf-16" if raw[:2] in (b"\xff\xfe", b"\xfe\xff") else "utf-8-sig"
    try:
        return raw.decode(encoding)
    except UnicodeDecodeError:
        raise Unreadable("the text file is not UTF-8 (or UTF-16 with a byte-order mark)") from None


def encode_text(original: str, text: str) -> str:
    """`text` in the form `original` had: a data URL with its header, or bare base64 (UTF-8)."""
    payload = base64.b64encode(text.encode()).decode("ascii")
    if original.startswith("data:"):
        return original[: original.index(",") + 1] + payload
    return payload
