"""SMTP delivery with the standard library's smtplib, in a worker thread.

Mail is sent a batch at a time over one connection, off the event loop: the volume is
that of account mail and alerts (a provider's own rate limit, often 10-50 mails a second, is
the bound, not the client), so an async SMTP dependency would buy nothing measurable
(docs/mail.md has the figures). STARTTLS is required, not opportunistic, when configured:
a server that does not offer it is an error, never a silent plain-text fallback.
"""

from __future__ import annotations

import asyncio
import email.utils
import smtplib
import ssl
from collections.abc import Sequence
from email.message import EmailMessage
from typing import Any

from perpetuo.control.mail.config import MailConfig


def build_message(config: MailConfig, row: Any) -> EmailMessage:
    message = EmailMessage()
    message["From"] = config.sender
    message["To"] = row.to_address
    message["Subject"] = row.subject
    message["Date"] = email.utils.formatdate(localtime=False)
    message["Message-ID"] = email.utils.make_msgid(idstring=row.id, domain=config.sender_domain)
    if config.reply_to:
        message["Reply-To"] = config.reply_to
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no auto-replies, please
    for name, value in (row.headers or {}).items():
        message[name] = value
    message.set_content(row.text_body)
    message.add_alternative(row.html_body, subtype="html")
    return message


def is_permanent(exc: BaseException) -> bool:
    """Refusals that a retry will not change: every recipient refused with 5xx, or the
    message refused with 5xx. Connection, authentication and 4xx trouble are retried."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _ in exc.recipients.values()]
        return bool(codes) and all(500 <= code < 600 for code in codes)
    if isinstance(exc, smtplib.SMTPDataError):
        return 500 <= exc.smtp_code < 600
    return False


def describe(exc: BaseException) -> str:
    """For the outbox's last_error and logs: never the password (smtplib does not put it in
    its errors; the server's reply text is kept)."""
    if isinstance(exc, smtplib.SMTPResponseException):
        text = exc.smtp_error.decode("utf-8", "replace") if exc.smtp_error else ""
        return f"{type(exc).__name__}: {exc.smtp_code} {text}".strip()
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        code, text = next(iter(exc.recipients.values()), (0, b""))
        return f"recipient refused: {code} {text.decode('utf-8', 'replace')}"
    return f"{type(exc).__name__}: {exc}"


class SMTPTransport:
    def __init__(self, config: MailConfig) -> None:
        self.config = config

    async def send(self, messages: Sequence[EmailMessage]) -> list[BaseException | None]:
        """One outcome per message: None when the server accepted it."""
        return await asyncio.to_thread(self._send_all, messages)

    def _connect(self) -> smtplib.SMTP:
        config = self.config
        context = ssl.create_default_context(cafile=str(config.ca_file) if config.ca_file else None)
        smtp: smtplib.SMTP
        if config.security == "tls":
            smtp = smtplib.SMTP_SSL(
                config.host,
                config.port,
                local_hostname=config.helo_name,
                timeout=config.timeout,
                context=context,
            )
        else:
            smtp = smtplib.SMTP(
                config.host, config.port, local_hostname=config.helo_name, timeout=config.timeout
            )
        try:
            if config.security == "starttls":
                smtp.ehlo()
                if not smtp.has_extn("starttls"):
                    raise smtplib.SMTPNotSupportedError("the server does not offer STARTTLS")
                smtp.starttls(context=context)
                smtp.ehlo()
            if config.username:
                smtp.login(config.username, config.password or "")
        except BaseException:
            smtp.close()
            raise
        return smtp

    def _send_all(self, messages: Sequence[EmailMessage]) -> list[BaseException | None]:
        outcomes: list[BaseException | None] = []
        smtp: smtplib.SMTP | None = None
        try:
            for index, message in enumerate(messages):
                if smtp is None:
                    try:
                        smtp = self._connect()
                    except (smtplib.SMTPException, OSError) as exc:
                        # The server is unreachable or refuses us: the rest wait for a retry.
                        outcomes.extend([exc] * (len(messages) - index))
                        break
                try:
                    smtp.send_message(message)
                    outcomes.append(None)
                except (smtplib.SMTPServerDisconnected, OSError) as exc:
                    outcomes.append(exc)
                    smtp.close()
                    smtp = None  # the next message gets a new connection
                except smtplib.SMTPException as exc:
                    outcomes.append(exc)
                    try:
                        smtp.rset()  # keep the connection for the next message
                    except (smtplib.SMTPException, OSError):
                        smtp.close()
                        smtp = None
        finally:
            if smtp is not None:
                try:
                    smtp.quit()
                except (smtplib.SMTPException, OSError):
                    smtp.close()
        return outcomes
