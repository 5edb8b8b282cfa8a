"""Attachments with known PII, made here: PDFs written by hand (a text layer, or a scanned
page that is only an image), DOCX files (WordprocessingML zipped, values split over runs
as Word does), text files, and PNG images of text rendered with Pillow. `measure()` scores
the detectors through each format against the same sentences as plain text; the tests hold
the scores up and `python -m bench.guardrails` prints them for docs/guardrails.md.
"""

from __future__ import annotations

import base64
import io
import time
import zipfile
import zlib
from dataclasses import dataclass, field

from perpetuo.guardrails.engine import scan
from perpetuo.guardrails.files.reader import read
from perpetuo.guardrails.policy import FileRules
from tests.guardrails.corpus import ALL, CORPUS, DETECTORS, Score

# --- writers -------------------------------------------------------------------------------


def _pdf_string(text: str) -> str:
    return "(" + text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)") + ")"


def _pdf(objects: list[bytes]) -> bytes:
    """A PDF of numbered objects (1 is the catalog), with a correct cross-reference table."""
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)


def _stream(data: bytes, extra: str = "") -> bytes:
    return f"<< /Length {len(data)} {extra}>>\nstream\n".encode() + data + b"\nendstream"


def pdf(pages: list[list[str]]) -> bytes:
    """A PDF with a text layer: each page's lines in Helvetica 11."""
    objects: list[bytes] = [b"<< /Type /Catalog /Pages 2 0 R >>", b"", b""]
    objects[2] = b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"
    kids = []
    for lines in pages:
        text = " T* ".join(f"{_pdf_string(line)} Tj" for line in lines)
        content = f"BT /F1 11 Tf 14 TL 50 800 Td {text} ET".encode("latin-1")
        objects.append(_stream(content))
        objects.append(
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] "
            b"/Resources << /Font << /F1 3 0 R >> >> /Contents %d 0 R >>" % (len(objects))
        )
        kids.append(len(objects))
    refs = " ".join(f"{k} 0 R" for k in kids)
    objects[1] = f"<< /Type /Pages /Kids [{refs}] /Count {len(kids)} >>".encode()
    return _pdf(objects)


def scanned_pdf(lines: list[str]) -> bytes:
    """A one-page PDF that is only a picture of the lines, as a scanner makes (no text)."""
    from PIL import Image

    picture = Image.open(io.BytesIO(png(lines, size=32, width=1650))).convert("L")
    width, height = picture.size
    image = _stream(
        zlib.compress(picture.tobytes()),
        f"/Type /XObject /Subtype /Image /Width {width} /Height {height} "
        "/ColorSpace /DeviceGray /BitsPerComponent 8 /Filter /FlateDecode ",
    )
    page_height = 595 * height // width
    content = f"q 595 0 0 {page_height} 0 {842 - page_height} cm /Im1 Do Q".encode()
    return _pdf(
        [
            b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] "
            b"/Resources << /XObject << /Im1 4 0 R >> >> /Contents 5 0 R >>",
            image,
            _stream(content),
        ]
    )


_W = 'xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"'


def _runs(text: str) -> str:
    """Word splits text into runs wherever formatting or editing history changes: here,
    at the middle of each paragraph, with the second half bold."""
    half = len(text) // 2
    first, second = (_xml(text[:half]), _xml(text[half:]))
    return (
        f'<w:r><w:t xml:space="preserve">{first}</w:t></w:r>'
        f'<w:r><w:rPr><w:b/></w:rPr><w:t xml:space="preserve">{second}</w:t></w:r>'
    )


def _xml(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def docx(paragraphs: list[str], header: str | None = None) -> bytes:
    body = "".join(f"<w:p>{_runs(p)}</w:p>" for p in paragraphs)
    parts = {
        "[Content_Types].xml": (
            '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
            '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
            '<Default Extension="rels" '
            'ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
            '<Default Extension="xml" ContentType="application/xml"/>'
            '<Override PartName="/word/document.xml" ContentType="application/'
            'vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/></Types>'
        ),
        "_rels/.rels": (
            '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
            '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
            '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/'
            '2006/relationships/officeDocument" Target="word/document.xml"/></Relationships>'
        ),
        "word/document.xml": (
            f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
            f"<w:document {_W}><w:body>{body}<w:sectPr/></w:body></w:document>"
        ),
    }
    if header is not None:
        parts["word/header1.xml"] = f"<w:hdr {_W}><w:p>{_runs(header)}</w:p></w:hdr>"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, xml in parts.items():
            archive.writestr(name, xml)
    return buffer.getvalue()


def png(lines: list[str], size: int = 24, width: int = 1400) -> bytes:
    """Black text on white, `size` pixels high: a screenshot or a photographed page."""
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.load_default(size=size)
    step = size * 2
    image = Image.new("L", (width, step * (len(lines) + 1)), 255)
    draw = ImageDraw.Draw(image)
    for i, line in enumerate(lines):
        draw.text((size, size + step * i), line, fill=0, font=font)
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def data_url(media_type: str, raw: bytes) -> str:
    return f"data:{media_type};base64,{base64.b64encode(raw).decode()}"


# --- the corpus ----------------------------------------------------------------------------

# The labelled sentences that fit on one printed line in plain ASCII (the file formats are
# measured against the same sentences as plain text, so only extraction differs).
LINES = [s for s in CORPUS if s.text.isascii() and "\n" not in s.text and len(s.text) <= 90]
GROUP = 8  # sentences per document

FORMATS = ("text", "pdf", "docx", "image (OCR)", "scanned pdf (OCR)")


def documents(kind: str) -> list[tuple[str, list[int]]]:
    """(data URL, indexes into LINES) per document of `kind`."""
    out = []
    for start in range(0, len(LINES), GROUP):
        indexes = list(range(start, min(start + GROUP, len(LINES))))
        lines = [LINES[i].text for i in indexes]
        if kind == "text":
            url = data_url("text/plain", "\n".join(lines).encode())
        elif kind == "pdf":
            url = data_url("application/pdf", pdf([lines]))
        elif kind == "docx":
            url = data_url("application/vnd.openxmlformats-officedocument.wordprocessingml"
                           ".document", docx(lines))  # fmt: skip
        elif kind == "image (OCR)":
            url = data_url("image/png", png(lines))
        else:
            url = data_url("application/pdf", scanned_pdf(lines))
        out.append((url, indexes))
    return out


@dataclass
class FormatScore:
    score: Score = field(default_factory=Score)
    documents: int = 0
    pages: int = 0
    seconds: float = 0.0


def measure(kinds: tuple[str, ...] = FORMATS) -> dict[str, FormatScore]:
    """Every detector on (as a policy runs them) over each format's documents: values found
    against the values the sentences hold, whatever detector found them."""
    import pypdfium2  # noqa: F401  (loaded once, as a gateway does on its first PDF)

    rules = FileRules(ocr=True, max_seconds=120)
    results: dict[str, FormatScore] = {}
    for kind in kinds:
        result = results[kind] = FormatScore()
        for url, indexes in documents(kind):
            started = time.perf_counter()
            extracted = read(url, None, rules, time.monotonic() + rules.max_seconds)
            result.seconds += time.perf_counter() - started
            result.documents += 1
            result.pages += max(extracted.pages, 1)
            text = extracted.text
            found = [(f.detector, " ".join(text[f.start : f.end].split())) for f in scan(text, ALL)]
            expected = [
                (name, value)
                for i in indexes
                for name, values in LINES[i].expected.items()
                for value in values
            ]
            for item in found:
                if item in expected:
                    result.score.tp += 1
                    expected.remove(item)
                else:
                    result.score.fp += 1
            result.score.fn += len(expected)
    return results


def table(kinds: tuple[str, ...] = FORMATS) -> str:
    lines = [
        "| format | documents | values | true pos. | false pos. | missed | precision | recall "
        "| ms per page |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for kind, r in measure(kinds).items():
        s = r.score
        lines.append(
            f"| {kind} | {r.documents} | {s.tp + s.fn} | {s.tp} | {s.fp} | {s.fn} "
            f"| {s.precision:.2f} | {s.recall:.2f} | {r.seconds / r.pages * 1000:.1f} |"
        )
    return "\n".join(lines)


__all__ = ["DETECTORS", "FORMATS", "data_url", "docx", "measure", "pdf", "png", "table"]
