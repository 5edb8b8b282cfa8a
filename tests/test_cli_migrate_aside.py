"""`perpetuo serve` migrates a database that is behind in a forked child, so the server never
keeps Alembic loaded and loads the rest of itself meanwhile, then waits for the child; a
database at head is prepared in process; a failure in the child is the server's exit, with
the child's message."""

from __future__ import annotations

import subprocess
import sys
import textwrap


def run_script(tmp_path, body: str) -> subprocess.CompletedProcess[str]:
    script = textwrap.dedent(
        f"""
        import asyncio, sys
        from types import SimpleNamespace
        import click
        from perpetuo.cli.common import fail
        from perpetuo.cli.serve import migrate_aside
        from perpetuo.store.database import Database
        from perpetuo.store.migrate import HEAD_REVISION, current_revision, upgrade

        url = "sqlite+aiosqlite:///{tmp_path / "store.db"}"
        settings = SimpleNamespace(resolved_database_url=lambda: url)
        ran_here = []

        def prepared():
            ran_here.append(True)
            asyncio.run(upgrade(Database(url)))

        async def revision():
            db = Database(url)
            try:
                return await current_revision(db)
            finally:
                await db.dispose()
        """
    ) + textwrap.dedent(body)
    return subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )


def test_the_store_is_migrated_in_a_child_while_the_server_goes_on(tmp_path):
    result = run_script(
        tmp_path,
        """
        import time

        def slow_prepared():
            time.sleep(3.0)
            prepared()

        started = time.monotonic()
        store_ready = migrate_aside(settings, slow_prepared)
        assert time.monotonic() - started < 2.0, "the server does not wait for the child yet"
        assert asyncio.run(revision()) is None, "the child has not migrated yet"
        store_ready()
        assert asyncio.run(revision()) == HEAD_REVISION, "the child migrated"
        assert not ran_here and "alembic" not in sys.modules, "nothing of it here"
        migrate_aside(settings, prepared)()  # at head: in process, one query, no Alembic
        assert ran_here and "alembic" not in sys.modules
        print("ok")
        """,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_a_failure_in_the_child_is_the_servers_exit_with_its_message(tmp_path):
    result = run_script(
        tmp_path,
        """
        def refused():
            fail("42 provider credentials are stored but no encryption key is configured")

        try:
            migrate_aside(settings, refused)()
        except click.exceptions.Exit as exc:
            print("exit", exc.exit_code)
        """,
    )
    assert result.stdout.strip() == "exit 2", result.stderr
    assert "no encryption key is configured" in result.stderr
