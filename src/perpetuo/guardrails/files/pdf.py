"""A PDF's text layer through PDFium (pypdfium2), and its pages without one by OCR.

PDFium was chosen over pypdf and pdfminer.six by measurement (docs/guardrails.md): about
six and forty times faster per page, and its calls release the GIL, so a worker reading a
PDF does not slow the event loop. PDFium allows one call at a time in a process, across
all documents, hence the lock; it is held per page, never while OCR runs.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from perpetuo.guardrails.files.reader import Extracted, Unreadable, Unscannable
from perpetuo.guardrails.policy import FileRules

_PDFIUM = threading.Lock()
OCR_DPI = 200  # enough for body text; each doubling of the resolution roughly triples OCR time


def read_pdf(raw: bytes, rules: FileRules, deadline: float) -> Extracted:
    if not raw[:1024].lstrip().startswith(b"%PDF-"):
        raise Unreadable("the file is not a PDF")
    import pypdfium2 as pdfium

    with _PDFIUM:
        document = _open(pdfium, raw)
    try:
        with _PDFIUM:
            pages = len(document)
        if pages > rules.max_pages:
            raise Unscannable(f"it has {pages} pages, over the cap of {rules.max_pages}", cap=True)
        texts: list[str] = []
        scanned = 0
        for index in range(pages):
            if time.monotonic() > deadline:
                raise Unscannable(_late(rules), cap=True)
            with _PDFIUM:
                text, image = _page(document, index, rules.ocr)
            if image is not None:  # a page without a text layer: a scan
                from perpetuo.guardrails.files.ocr import image_text

                text = image_text(image, deadline)
                scanned += 1
            texts.append(text)
    finally:
        with _PDFIUM:
            document.close()
    return Extracted("pdf", "\n".join(texts), pages=pages, ocr_pages=scanned)


def _open(pdfium: Any, raw: bytes) -> Any:
    try:
        return pdfium.PdfDocument(raw)
    except pdfium.PdfiumError as exc:
        if "password" in str(exc).lower():
            raise Unscannable("it is encrypted", cap=False) from None
        raise Unreadable("the PDF is damaged and cannot be read") from None


def _page(document: Any, index: int, ocr: bool) -> tuple[str, Any]:
    """The page's text, and its rendering when it has none and OCR is on."""
    page = document[index]
    try:
        textpage = page.get_textpage()
        try:
            text = textpage.get_text_range()
        finally:
            textpage.close()
        if text.strip() or not ocr:
            return text, None
        bitmap = page.render(scale=OCR_DPI / 72, grayscale=True)
        return "", bitmap.to_pil()
    finally:
        page.close()


def _late(rules: FileRules) -> str:
    return f"reading it took longer than the time cap of {rules.max_seconds:g} s"
