"""The input guardrails on attachments: PDF, DOCX and text files, and images by OCR.

Files are read and scanned in a small thread pool, never on the event loop: PDFium and
Tesseract (a subprocess) release the GIL, and the policy's time cap ends a request's wait
whatever a worker is doing (workers check the same deadline between pages, and Tesseract
is killed at it). Text files are redacted in place; PDF, DOCX and images cannot be rewritten
faithfully, so `redact` blocks them. With no file guardrail in the policy, `check_input`
skips all this with one attribute check.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from perpetuo.guardrails.engine import Finding, first_block, scan, transform
from perpetuo.guardrails.files.reader import (
    Extracted,
    Unreadable,
    Unscannable,
    declared_kind,
    encode_text,
    read,
    split_data,
)
from perpetuo.guardrails.injection import InjectionClassifier
from perpetuo.guardrails.policy import INJECTION, Action, FileRules
from perpetuo.schema.chat import ChatCompletionRequest, FilePart, ImagePart, UserMessage
from perpetuo.schema.errors import ErrorCode, ErrorType, GatewayError, bad_request

if TYPE_CHECKING:
    from perpetuo.pipeline.guardrails import GuardrailRun

log = logging.getLogger(__name__)

WORKERS = 2  # files read at once per gateway process; more wait their turn (within the cap)
PIECE = 64 * 1024  # text scanned between two looks at the deadline
_NAMES = {"pdf": "PDF file", "docx": "DOCX file", "image": "image", "text": "text file"}
_PLURALS = {"pdf": "PDF files", "docx": "DOCX files", "image": "Images"}
_pool: ThreadPoolExecutor | None = None


@dataclass(slots=True)
class Attachment:
    where: str  # the part's position, `messages[1].content[0]`: never its name or content
    part: FilePart | ImagePart
    data: str  # a data URL or bare base64


@dataclass(slots=True)
class Scanned:
    extracted: Extracted
    findings: list[Finding]
    seconds: float


def attachments(request: ChatCompletionRequest, ocr: bool) -> Iterator[Attachment]:
    """File parts carrying their data, and with OCR on, images sent inline."""
    for i, message in enumerate(request.messages):
        if not isinstance(message, UserMessage) or isinstance(message.content, str):
            continue
        for j, part in enumerate(message.content):
            where = f"messages[{i}].content[{j}]"
            if isinstance(part, FilePart) and isinstance(part.file.file_data, str):
                if part.file.file_data and (ocr or not _image_file(part)):
                    yield Attachment(where, part, part.file.file_data)
            elif ocr and isinstance(part, ImagePart) and part.image_url.url.startswith("data:"):
                yield Attachment(where, part, part.image_url.url)
            # Files by id and images by URL are references the gateway does not fetch.


def _image_file(part: FilePart) -> bool:
    """Declared as an image (worth nothing with OCR off); a worker judges the rest."""
    try:
        media_type, _ = split_data(str(part.file.file_data)[:256])
    except Unreadable:
        return False
    filename = part.file.filename if isinstance(part.file.filename, str) else None
    return declared_kind(media_type, filename) == "image"


async def check_files(
    run: GuardrailRun, request: ChatCompletionRequest, classifier: InjectionClassifier
) -> None:
    """Block, redact (text files) or record what the input detectors find in attachments."""
    rules = run.policy.files
    assert rules is not None
    found = list(attachments(request, rules.ocr))
    if not found:
        return
    spans = {name: action for name, action in run.policy.input.items() if name != INJECTION}
    deadline = time.monotonic() + rules.max_seconds
    for item in found:
        filename = item.part.file.filename if isinstance(item.part, FilePart) else None
        name = filename if isinstance(filename, str) else None
        future = _workers().submit(_inspect, item.data, name, rules, spans, deadline)
        try:
            scanned = await _wait(future, deadline)
        except Unscannable as exc:
            _unscannable(run, rules, item, exc)
            continue
        except Unreadable as exc:
            raise bad_request(
                f"The file at {item.where} could not be read: {exc}.", param=item.where
            ) from None
        await _enforce(run, item, scanned, classifier)


async def _wait(future: Future[Scanned], deadline: float) -> Scanned:
    try:
        return await asyncio.wait_for(asyncio.wrap_future(future), deadline - time.monotonic())
    except TimeoutError:
        future.cancel()  # a queued job never starts; a running one stops at the deadline
        raise Unscannable("reading it took longer than the time cap", cap=True) from None


def _workers() -> ThreadPoolExecutor:
    global _pool
    if _pool is None:
        _pool = ThreadPoolExecutor(WORKERS, thread_name_prefix="guardrail-files")
    return _pool


def _inspect(
    data: str, filename: str | None, rules: FileRules, spans: dict[str, Action], deadline: float
) -> Scanned:
    """In a worker: read the file, then scan its text in pieces, minding the deadline."""
    started = time.perf_counter()
    if time.monotonic() > deadline:
        raise Unscannable("reading it took longer than the time cap", cap=True)
    try:
        extracted = read(data, filename, rules, deadline)
    except (Unreadable, Unscannable):
        raise
    except Exception:  # a parser's own failure on odd input: the policy decides, never a 500
        log.exception("file guardrails: reading an attachment failed")
        raise Unscannable("the guardrail could not read it", cap=False) from None
    findings = _scan(extracted.text, spans, deadline)
    return Scanned(extracted, findings, time.perf_counter() - started)


def _scan(text: str, spans: dict[str, Action], deadline: float) -> list[Finding]:
    findings: list[Finding] = []
    start = 0
    while start < len(text):
        end = len(text)
        if end - start > PIECE:
            # Cut at a blank line, which no detector's match crosses (PEM blocks have none).
            cut = text.find("\n\n", start + PIECE // 2, start + PIECE)
            end = cut + 2 if cut >= 0 else start + PIECE
        for f in scan(text[start:end], spans):
            findings.append(replace(f, start=f.start + start, end=f.end + start))
        start = end
        if start < len(text) and time.monotonic() > deadline:
            raise Unscannable("reading it took longer than the time cap", cap=True)
    return findings


async def _enforce(
    run: GuardrailRun, item: Attachment, scanned: Scanned, classifier: InjectionClassifier
) -> None:
    extracted, findings = scanned.extracted, scanned.findings
    policy = run.policy
    if INJECTION in policy.input and extracted.text:
        score = await classifier.score(extracted.text)
        if score >= policy.injection_threshold:
            action = policy.input[INJECTION]
            findings = [*findings, Finding(INJECTION, 0, len(extracted.text), action, score)]
    run.report.files.append(_entry(item, scanned))
    rewritable = extracted.kind == "text"
    if not rewritable:  # a PDF, DOCX or image cannot be rewritten faithfully: redact blocks
        findings = [replace(f, action="block") if f.action == "redact" else f for f in findings]
    blocked = first_block(findings)
    if blocked is not None:
        run.report.blocked = ("input", blocked.detector)
        run.report.add("input", [blocked])
        raise _blocked(blocked.detector, item.where, extracted.kind, policy.input)
    run.report.add("input", findings)
    if rewritable and any(f.action == "redact" for f in findings):
        text = transform(extracted.text, findings, run.vault, policy.restore)
        assert isinstance(item.part, FilePart)
        item.part.file.file_data = encode_text(item.data, text)


def _entry(item: Attachment, scanned: Scanned) -> dict[str, object]:
    """What the request log keeps of an attachment: where, what, how much, how long."""
    extracted = scanned.extracted
    entry: dict[str, object] = {"param": item.where, "kind": extracted.kind}
    if not extracted.read:
        entry["read"] = False  # an image, OCR off
    if extracted.pages:
        entry["pages"] = extracted.pages
    if extracted.ocr_pages:
        entry["ocr_pages"] = extracted.ocr_pages
    entry["ms"] = round(scanned.seconds * 1000, 1)
    return entry


def _unscannable(run: GuardrailRun, rules: FileRules, item: Attachment, exc: Unscannable) -> None:
    name = "file_over_cap" if exc.cap else "file_unsupported"
    run.report.files.append({"param": item.where, "unscanned": str(exc)})
    if rules.unscannable == "pass":
        run.report.counts[("input", name, "log")] += 1
        return
    run.report.blocked = ("input", name)
    run.report.counts[("input", name, "block")] += 1
    raise GatewayError(
        400,
        f"The file at {item.where} was not scanned: {exc}, and this workspace's guardrail "
        "policy blocks files it cannot scan.",
        type=ErrorType.INVALID_REQUEST,
        code=ErrorCode.GUARDRAIL_BLOCKED,
        param=item.where,
    )


def _blocked(detector: str, where: str, kind: str, actions: dict[str, Action]) -> GatewayError:
    message = (
        f"The request was blocked by the `{detector}` guardrail of this workspace's policy, "
        f"in the {_NAMES[kind]} at {where}."
    )
    if actions.get(detector) == "redact":
        message += f" {_PLURALS[kind]} cannot be redacted, so `redact` blocks them."
    return GatewayError(
        400,
        message,
        type=ErrorType.INVALID_REQUEST,
        code=ErrorCode.GUARDRAIL_BLOCKED,
        param=where,
    )
