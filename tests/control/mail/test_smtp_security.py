"""SMTP over TLS against a real server with a throwaway CA: STARTTLS (required, never a
plain-text fallback), implicit TLS, AUTH, a private CA bundle, and the failures that must
keep the mail queued rather than send it in the clear."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from perpetuo.control.mail import Mailer
from perpetuo.control.mail.config import MailConfig
from perpetuo.control.mail.worker import MailWorker
from perpetuo.store.schema import mail_outbox
from tests.support.pki import make_pki
from tests.support.plane import SECRET, make_plane
from tests.support.smtp import SMTPServer, text_of

LOGIN = ("mailer", "s3cret-pass")


@pytest.fixture
def pki(tmp_path):
    return make_pki(tmp_path / "pki", "smtp")


async def _send_one(tmp_path, server: SMTPServer, **config):
    plane = await make_plane(f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}")
    options = {
        "host": "localhost",
        "port": server.port,
        "sender": "Perpetuo <noreply@example.com>",
        "base_url": "https://llm.example.com",
        "timeout": 5.0,
        **config,
    }
    mailer = Mailer(MailConfig(**options), SECRET)
    async with plane.db.begin() as conn:
        context = {"reset_url": "https://x/secret-link", "expires_minutes": 60, "ip": None}
        mail_id = await mailer.send(conn, "password_reset", "ann@example.com", context)
    await MailWorker(plane.db, mailer).deliver_once()
    async with plane.db.connect() as conn:
        row = (await conn.execute(select(mail_outbox).where(mail_outbox.c.id == mail_id))).one()
    await plane.db.dispose()
    return row


async def test_starttls_with_auth_and_a_private_ca(tmp_path, pki):
    server = SMTPServer(tls="starttls", context=pki.server_context(), login=LOGIN).start()
    try:
        row = await _send_one(
            tmp_path,
            server,
            security="starttls",
            ca_file=pki.ca,
            username=LOGIN[0],
            password=LOGIN[1],
        )
        assert row.status == "sent", row.last_error
        assert server.logins == ["mailer:ok"]
        [mail] = server.inbox.messages
        assert "https://x/secret-link" in text_of(mail)
    finally:
        server.stop()


async def test_implicit_tls(tmp_path, pki):
    server = SMTPServer(tls="implicit", context=pki.server_context()).start()
    try:
        row = await _send_one(tmp_path, server, security="tls", ca_file=pki.ca)
        assert row.status == "sent", row.last_error
        assert len(server.inbox.messages) == 1
    finally:
        server.stop()


async def test_an_untrusted_certificate_keeps_the_mail_queued(tmp_path, pki):
    server = SMTPServer(tls="starttls", context=pki.server_context()).start()
    try:
        row = await _send_one(tmp_path, server, security="starttls")  # system CAs only
        assert (row.status, row.attempts) == ("pending", 1)
        assert "CERTIFICATE_VERIFY_FAILED" in row.last_error
        assert server.inbox.messages == []
    finally:
        server.stop()


async def test_no_plain_text_fallback_when_starttls_is_missing(tmp_path):
    server = SMTPServer().start()  # offers no STARTTLS
    try:
        row = await _send_one(tmp_path, server, security="starttls")
        assert row.status == "pending" and "STARTTLS" in row.last_error
        assert server.inbox.deliveries == 0
    finally:
        server.stop()


async def test_wrong_credentials_are_retried_not_dropped(tmp_path, pki):
    server = SMTPServer(tls="starttls", context=pki.server_context(), login=LOGIN).start()
    try:
        row = await _send_one(
            tmp_path,
            server,
            security="starttls",
            ca_file=pki.ca,
            username=LOGIN[0],
            password="wrong",
        )
        assert (row.status, row.attempts) == ("pending", 1)  # fix the password: it goes out
        assert "mailer:refused" in server.logins
        assert "wrong" not in row.last_error  # never the password
        assert server.inbox.messages == []
    finally:
        server.stop()
