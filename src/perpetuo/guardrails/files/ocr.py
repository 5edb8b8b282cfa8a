"""Text in images through Tesseract (Debian's `tesseract-ocr`, called by pytesseract).

Tesseract runs as a subprocess: the worker thread only waits for it, the time cap kills
it, and it runs at a lower CPU priority than the gateway so that requests keep their
latency while a page is read. OCR is the expensive part of file guardrails (about half a
second for a few lines, seconds for a dense page; docs/guardrails.md has the figures),
hence off unless a policy turns it on.
"""

from __future__ import annotations

import io
import logging
import os
import time
from typing import Any

from perpetuo.guardrails.files.reader import Unreadable, Unscannable

log = logging.getLogger(__name__)

# Tesseract's OpenMP threads contend with each other and with the gateway on small machines:
# one thread per process read a dense page 3.3 times faster on two cores. Concurrency comes
# from the worker pool instead.
os.environ.setdefault("OMP_THREAD_LIMIT", "1")
# One block of text (--psm 6) rather than Tesseract's layout analysis: on the test corpus it
# reads as well, and layout analysis split aligned lines into columns, cutting values in two.
CONFIG = "--psm 6"
MAX_PIXELS = 40_000_000  # a 40-megapixel photo; larger images are over the cap
NICENESS = 10


def read_image(raw: bytes, deadline: float) -> str:
    from PIL import Image, UnidentifiedImageError

    try:
        image = Image.open(io.BytesIO(raw))
        width, height = image.size
        if width * height > MAX_PIXELS:
            raise Unscannable(f"the image is over the cap of {MAX_PIXELS} pixels", cap=True)
        image.load()
    except Image.DecompressionBombError:
        raise Unscannable(f"the image is over the cap of {MAX_PIXELS} pixels", cap=True) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        raise Unreadable("the image is damaged or not in a format that can be read") from None
    return image_text(image.convert("L"), deadline)


def image_text(image: Any, deadline: float) -> str:
    import pytesseract

    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise Unscannable("reading it took longer than the time cap", cap=True)
    try:
        return pytesseract.image_to_string(image, config=CONFIG, timeout=remaining, nice=NICENESS)
    except pytesseract.TesseractError:
        raise Unscannable("OCR failed on this image", cap=False) from None
    except RuntimeError as exc:  # pytesseract's word for a timeout (it kills the process)
        if "timeout" not in str(exc).lower():
            raise
        raise Unscannable("reading it took longer than the time cap", cap=True) from None
    except pytesseract.TesseractNotFoundError:
        log.warning("file guardrails: OCR is on but the tesseract binary is not installed")
        raise Unscannable("OCR is not installed on this gateway", cap=False) from None
