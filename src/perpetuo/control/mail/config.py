"""What mail delivery needs from the process settings, in one value."""

from __future__ import annotations

import email.utils
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

DEFAULT_PORTS = {"starttls": 587, "tls": 465, "none": 25}


@dataclass(frozen=True)
class MailConfig:
    host: str
    port: int
    security: str  # starttls | tls | none
    sender: str  # the From header
    base_url: str  # links in mail start with this (no trailing slash)
    username: str | None = None
    password: str | None = None
    timeout: float = 15.0
    ca_file: Path | None = None
    reply_to: str | None = None
    product: str = "Perpetuo"
    max_attempts: int = 10
    retry_seconds: float = 30.0
    poll_interval: float = 5.0
    key_expiry_days: int = 7

    @property
    def sender_domain(self) -> str:
        return email.utils.parseaddr(self.sender)[1].rpartition("@")[2] or "localhost"

    @property
    def helo_name(self) -> str:
        """The name we greet the server with: this server's public host name. smtplib would
        otherwise look up the machine's FQDN, which can stall on a slow resolver."""
        return urlsplit(self.base_url).hostname or socket.gethostname() or "localhost"


def base_url_of(settings: Any) -> str:
    if settings.public_url:
        return settings.public_url.rstrip("/")
    host = settings.host if settings.host not in ("0.0.0.0", "::") else "localhost"  # noqa: S104
    return f"http://{host}:{settings.port}"


def mail_config(settings: Any) -> MailConfig | None:
    """From perpetuo.config.Settings; None when no SMTP server is configured."""
    if not settings.smtp_host:
        return None
    address = email.utils.parseaddr(settings.mail_from or "")[1]
    if "@" not in address:
        raise ValueError(f"PERPETUO_MAIL_FROM: {settings.mail_from!r} is not an email address")
    return MailConfig(
        host=settings.smtp_host,
        port=settings.smtp_port or DEFAULT_PORTS[settings.smtp_security],
        security=settings.smtp_security,
        sender=settings.mail_from,
        base_url=base_url_of(settings),
        username=settings.smtp_username,
        password=settings.smtp_password.get_secret_value() if settings.smtp_password else None,
        timeout=settings.smtp_timeout,
        ca_file=settings.smtp_ca_file,
        reply_to=settings.mail_reply_to,
        product=settings.mail_product_name,
        max_attempts=settings.mail_max_attempts,
        retry_seconds=settings.mail_retry_seconds,
        poll_interval=settings.mail_poll_interval,
        key_expiry_days=settings.key_expiry_notice_days,
    )
