"""File guardrail figures, printed by `python -m bench.guardrails` (or `--files` alone).

- accuracy: precision and recall of the detectors through each format (text file, PDF text
  layer, DOCX, image by OCR, scanned PDF page by OCR) on the generated corpus of
  tests/guardrails/file_corpus.py, against the same sentences sent as plain text
- cost per page in-process: reading (PDFium, DOCX XML, Tesseract) and scanning, on pages of
  prose dense with findings
- end to end: a PDF attachment of 1, 10 and 50 pages through a gateway with every PII and
  secret detector on (log, so the PDF goes through) against the same gateway without
"""

from __future__ import annotations

import json
import textwrap
import time

from bench.gateway_run import Stack, run, timed
from perpetuo.guardrails.engine import scan
from perpetuo.guardrails.files.reader import read
from perpetuo.guardrails.policy import PII, SECRETS, FileRules

ACTIONS = dict.fromkeys((*PII, *SECRETS), "log")
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
LINES_PER_PAGE = 50  # an A4 page of 11-point text


def page_lines(prose: str, count: int = LINES_PER_PAGE) -> list[str]:
    lines = textwrap.wrap(prose * (count * 90 // len(prose) + 1), 90)
    return lines[:count]


def per_page(prose: str) -> list[dict[str, float | str]]:
    """Milliseconds per page to read and to scan, for each format (best of a few runs)."""
    from tests.guardrails.file_corpus import data_url, docx, pdf, png, scanned_pdf

    lines = page_lines(prose)
    ocr_lines = lines[:30]  # a photographed or scanned page: fewer, larger lines
    cases = {
        "text file": (data_url("text/plain", "\n".join(lines * 20).encode()), 20, 5),
        "PDF text layer": (data_url("application/pdf", pdf([lines] * 20)), 20, 5),
        "DOCX": (data_url(DOCX, docx(lines * 20)), 20, 5),
        "image (OCR)": (data_url("image/png", png(ocr_lines, size=28, width=1654)), 1, 2),
        "scanned PDF (OCR)": (data_url("application/pdf", scanned_pdf(ocr_lines)), 1, 2),
    }
    rules = FileRules(ocr=True, max_pages=1000, max_seconds=300)
    read(cases["PDF text layer"][0], None, rules, time.monotonic() + 300)  # load PDFium
    rows: list[dict[str, float | str]] = []
    for name, (url, pages, repeat) in cases.items():
        best_read = best_scan = float("inf")
        for _ in range(repeat):
            started = time.perf_counter()
            extracted = read(url, None, rules, time.monotonic() + 300)
            middle = time.perf_counter()
            scan(extracted.text, ACTIONS)
            best_read = min(best_read, middle - started)
            best_scan = min(best_scan, time.perf_counter() - middle)
        rows.append(
            {
                "format": name,
                "read_ms_per_page": best_read * 1000 / pages,
                "scan_ms_per_page": best_scan * 1000 / pages,
                "kb_per_page": len(extracted.text) / pages / 1024,
            }
        )
    return rows


def end_to_end(prose: str, rounds: int) -> list[dict[str, float]]:
    from tests.guardrails.file_corpus import data_url, pdf

    policy = {"detectors": {"pii": "log", "secrets": "log"}}
    models = {
        "plain": {"deployments": [{"provider": "mock", "model": "gpt-4o-mini"}]},
        "guarded": {
            "deployments": [{"provider": "mock", "model": "gpt-4o-mini"}],
            "guardrails": policy,
        },
    }
    stack = Stack(models)
    rows = []
    try:
        for pages in (1, 10, 50):
            url = data_url("application/pdf", pdf([page_lines(prose)] * pages))

            def body(model: str, url: str = url) -> bytes:
                part = {"type": "file", "file": {"filename": "r.pdf", "file_data": url}}
                content = [{"type": "text", "text": "Summarise."}, part]
                message = {"role": "user", "content": content}
                return json.dumps({"model": model, "messages": [message]}).encode()

            figures = run(timed(stack.url, {"off": body("plain"), "on": body("guarded")}, rounds))
            off, on = figures["off"]["p50_ms"], figures["on"]["p50_ms"]
            rows.append(
                {
                    "pages": pages,
                    "off_p50_ms": off,
                    "on_p50_ms": on,
                    "added_ms_per_page": (on - off) / pages,
                }
            )
    finally:
        stack.stop()
    return rows


def report(prose: str, rounds: int) -> None:
    from tests.guardrails.file_corpus import table

    print("\nFile guardrails: detector accuracy through each format (generated corpus):\n")
    print(table())
    print(f"\nFile guardrails: cost per page in-process ({LINES_PER_PAGE} lines; OCR 30):\n")
    print("| format | text KB per page | read ms per page | scan ms per page |")
    print("|---|---:|---:|---:|")
    for row in per_page(prose):
        print(
            f"| {row['format']} | {row['kb_per_page']:.1f} | {row['read_ms_per_page']:.2f} "
            f"| {row['scan_ms_per_page']:.2f} |"
        )
    print(f"\nFile guardrails end to end, a PDF attachment, median of {rounds} each:\n")
    print("| PDF pages | guardrails off p50 ms | on p50 ms | added ms per page |")
    print("|---:|---:|---:|---:|")
    for row in end_to_end(prose, rounds):
        print(
            f"| {row['pages']} | {row['off_p50_ms']:.2f} | {row['on_p50_ms']:.2f} "
            f"| {row['added_ms_per_page']:.2f} |"
        )
