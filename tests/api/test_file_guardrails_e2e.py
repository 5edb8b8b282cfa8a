"""File guardrails through a real gateway process: the openai SDK sending a PDF file part,
an image (OCR) and a text attachment, the anthropic SDK sending a Messages `document` block
and the Responses API an `input_file`; blocked, redacted or logged by the workspace's policy,
the caps, a corrupt file answered with a 400, and other requests served while an image is
read by OCR."""

from __future__ import annotations

import base64
import sqlite3
import threading
import time

import anthropic
import openai
import pytest

from tests.api.cache_support import Tenant, cache_config
from tests.guardrails.file_corpus import data_url, pdf, png
from tests.support.gateway import GatewayProcess

EMAIL = "alice.private@example.com"
CARD = "4111 1111 1111 1111"
REPORT = pdf([["Quarterly notes, nothing sensitive."], [f"Escalations go to {EMAIL}."]])
PICTURE = png([f"Send the invoice to {EMAIL} today"])


@pytest.fixture(scope="module")
def gw(mocks, tmp_path_factory):
    config, env = cache_config(mocks)
    with GatewayProcess(config, tmp_path_factory.mktemp("files"), env=env) as process:
        yield process


def guarded(gw, **policy) -> Tenant:
    return Tenant(gw, {"guardrails": policy})


def with_file(part: dict, text: str = "Summarise the attachment.") -> list[dict]:
    return [{"role": "user", "content": [{"type": "text", "text": text}, part]}]


def pdf_part(raw: bytes = REPORT) -> dict:
    return {
        "type": "file",
        "file": {"filename": "report.pdf", "file_data": data_url("application/pdf", raw)},
    }


def image_part(raw: bytes = PICTURE) -> dict:
    return {"type": "image_url", "image_url": {"url": data_url("image/png", raw)}}


def detail(t: Tenant, status: int) -> dict:
    log = next(e for e in t.logs(1) if e["status"] == status)
    return t.admin("GET", f"/logs/{log['id']}").json()["data"]["detail"]


def test_a_pdf_file_part_is_blocked_or_logged_by_policy(gw, openai_mock):
    t = guarded(gw, detectors={"email": "block"})
    with pytest.raises(openai.BadRequestError) as caught:
        t.client.chat.completions.create(model="gpt-4o-mini", messages=with_file(pdf_part()))
    error = caught.value.body
    assert error["code"] == "guardrail_blocked" and "`email`" in error["message"]
    assert error["param"] == "messages[0].content[1]" and EMAIL not in str(error)
    assert not any("report.pdf" in str(r.body) for r in openai_mock.requests[-3:])
    guard = detail(t, 400)["guardrails"]
    assert guard["blocked"] == {"direction": "input", "type": "email"}
    assert guard["files"][0]["kind"] == "pdf" and guard["files"][0]["pages"] == 2
    logged = guarded(gw, detectors={"email": "log"})
    reply = logged.client.chat.completions.create(
        model="gpt-4o-mini", messages=with_file(pdf_part())
    )
    assert reply.choices[0].message.content
    sent = openai_mock.last.body["messages"][0]["content"][1]
    assert sent["file"]["file_data"] == data_url("application/pdf", REPORT)  # untouched
    assert detail(logged, 200)["guardrails"]["input"] == [
        {"type": "email", "action": "log", "count": 1}
    ]


def test_an_image_is_read_only_with_ocr_on(gw, openai_mock):
    default = guarded(gw, detectors={"email": "block"})
    reply = default.client.chat.completions.create(
        model="gpt-4o-mini", messages=with_file(image_part())
    )
    assert reply.choices[0].message.content  # OCR is off by default: the image passes
    ocr = guarded(gw, detectors={"email": "block"}, files={"ocr": True})
    with pytest.raises(openai.BadRequestError) as caught:
        ocr.client.chat.completions.create(model="gpt-4o-mini", messages=with_file(image_part()))
    assert (
        caught.value.body["code"] == "guardrail_blocked" and "image" in caught.value.body["message"]
    )
    entry = detail(ocr, 400)["guardrails"]["files"][0]
    assert entry["kind"] == "image" and entry["ocr_pages"] == 1


def test_a_text_attachment_goes_upstream_redacted(gw, openai_mock):
    t = guarded(gw, detectors={"email": "redact", "credit_card": "redact"})
    note = f"Customer {EMAIL} paid with {CARD}.\n"
    part = {
        "type": "file",
        "file": {"filename": "note.txt", "file_data": data_url("text/plain", note.encode())},
    }
    t.client.chat.completions.create(model="gpt-4o-mini", messages=with_file(part))
    sent = openai_mock.last.body["messages"][0]["content"][1]["file"]["file_data"]
    assert sent.startswith("data:text/plain;base64,")
    assert (
        base64.b64decode(sent.split(",", 1)[1]).decode()
        == "Customer <EMAIL_1> paid with <CREDIT_CARD_1>.\n"
    )


def test_a_messages_document_block_is_scanned(gw, mocks):
    document = {
        "type": "document",
        "source": {
            "type": "base64",
            "media_type": "application/pdf",
            "data": base64.b64encode(REPORT).decode(),
        },
    }
    content = [document, {"type": "text", "text": "Summarise it."}]
    blocked = guarded(gw, detectors={"email": "block"})
    claude = anthropic.Anthropic(base_url=gw.url, api_key=blocked.key, max_retries=0)
    with pytest.raises(anthropic.BadRequestError) as caught:
        claude.messages.create(
            model="claude", max_tokens=50, messages=[{"role": "user", "content": content}]
        )
    assert caught.value.body["error"]["type"] == "invalid_request_error"
    assert "`email`" in caught.value.body["error"]["message"]
    logged = guarded(gw, detectors={"email": "log"})
    claude = anthropic.Anthropic(base_url=gw.url, api_key=logged.key, max_retries=0)
    answer = claude.messages.create(
        model="claude", max_tokens=50, messages=[{"role": "user", "content": content}]
    )
    assert answer.content[0].type == "text"
    assert (
        mocks["anthropic"].last.body["messages"][0]["content"][0]["type"] == "document"
    )  # native lane
    assert detail(logged, 200)["guardrails"]["input"] == [
        {"type": "email", "action": "log", "count": 1}
    ]


def test_a_responses_input_file_is_scanned(gw):
    t = guarded(gw, detectors={"email": "block"})
    item = {
        "type": "input_file",
        "filename": "report.pdf",
        "file_data": data_url("application/pdf", REPORT),
    }
    with pytest.raises(openai.BadRequestError) as caught:
        t.client.responses.create(
            model="gpt-4o-mini",
            input=[
                {"role": "user", "content": [item, {"type": "input_text", "text": "Summarise"}]}
            ],
        )
    assert "`email`" in str(caught.value)


def test_caps_and_a_corrupt_file(gw):
    t = guarded(gw, detectors={"email": "block"}, files={"max_pages": 1})
    with pytest.raises(openai.BadRequestError) as caught:
        t.client.chat.completions.create(model="gpt-4o-mini", messages=with_file(pdf_part()))
    assert (
        caught.value.body["code"] == "guardrail_blocked"
        and "over the cap of 1" in caught.value.body["message"]
    )
    lenient = guarded(
        gw, detectors={"email": "block"}, files={"max_pages": 1, "unscannable": "pass"}
    )
    assert lenient.client.chat.completions.create(
        model="gpt-4o-mini", messages=with_file(pdf_part())
    ).choices
    assert detail(lenient, 200)["guardrails"]["input"] == [
        {"type": "file_over_cap", "action": "log", "count": 1}
    ]
    broken = pdf_part(REPORT[: len(REPORT) // 3])
    with pytest.raises(openai.BadRequestError) as caught:
        t.client.chat.completions.create(model="gpt-4o-mini", messages=with_file(broken))
    assert caught.value.status_code == 400 and caught.value.body["code"] == "invalid_parameter"
    assert "could not be read" in caught.value.body["message"]


def test_other_requests_are_served_while_an_image_is_read(gw):
    lines = [f"Row {i}: ship order {1000 + i} to {EMAIL} by card {CARD}" for i in range(40)]
    slow = guarded(gw, detectors={"email": "log"}, files={"ocr": True, "max_seconds": 60})
    finished: list[float] = []

    def read_slowly() -> None:
        slow.client.chat.completions.create(
            model="gpt-4o-mini", messages=with_file(image_part(png(lines)))
        )
        finished.append(time.monotonic())

    reader = threading.Thread(target=read_slowly)
    started = time.monotonic()
    reader.start()
    time.sleep(0.5)  # the OCR is under way
    quick = guarded(gw, detectors={"email": "block"})
    asked = time.monotonic()
    quick.client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}]
    )
    answered = time.monotonic()
    reader.join(60)
    assert finished, "the OCR request did not finish"
    assert answered - asked < 0.5, answered - asked
    assert finished[0] - started > 1.0 and finished[0] > answered  # it really was slow, and later
    counts = detail(slow, 200)["guardrails"]["input"]
    assert counts[0]["type"] == "email" and counts[0]["count"] >= 30


def test_no_value_from_a_file_reaches_the_database_or_the_log(gw):
    t = guarded(gw, detectors={"email": "block"}, files={"ocr": True})
    for part in (pdf_part(), image_part()):
        with pytest.raises(openai.BadRequestError):
            t.client.chat.completions.create(model="gpt-4o-mini", messages=with_file(part))
    t.logs(2)
    with sqlite3.connect(gw.workdir / "data" / "perpetuo.db") as conn:
        tables = [r[0] for r in conn.execute("select name from sqlite_master where type='table'")]
        dump = "\n".join(
            repr(row) for table in tables for row in conn.execute(f'select * from "{table}"')
        )
    assert "guardrail_blocked" in dump
    for value in (EMAIL, "report.pdf"):
        assert value not in dump and value not in gw.log()
