from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.smtp import SMTPServer


@pytest.fixture
def smtp() -> Iterator[SMTPServer]:
    server = SMTPServer().start()
    yield server
    server.stop()
