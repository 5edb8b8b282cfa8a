"""`perpetuo serve`, `perpetuo check-config`, `perpetuo version`."""

from __future__ import annotations

import contextlib
import json
import os
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

import click

from perpetuo import __version__
from perpetuo.cli.common import config_option, fail, run, settings_for


def register(cli: click.Group) -> None:
    for command in (serve, check_config, version, demo_upstream):
        cli.add_command(command)


@click.command("serve")
@config_option
@click.option("--host", default=None, help="Bind address (env: PERPETUO_HOST).")
@click.option(
    "--port", type=click.IntRange(0, 65535), default=None, help="Port (env: PERPETUO_PORT)."
)
@click.option(
    "--workers", type=click.IntRange(min=1), default=1, show_default=True, help="Worker processes."
)
def serve(config: Path | None, host: str | None, port: int | None, workers: int) -> None:
    """Run the gateway."""
    from perpetuo.auth.credential_crypto import Keyring
    from perpetuo.auth.master_key import ensure_master_key, master_key_file
    from perpetuo.auth.secrets import load_server_secret

    settings = settings_for(config)
    if settings.master_key is None:
        _, created = ensure_master_key(settings.data_dir)
        where = master_key_file(settings.data_dir)
        master = f"{where} ({'created now' if created else 'kept from before'})"
    else:
        master = "from PERPETUO_MASTER_KEY"
    configured = settings.secret_key.get_secret_value() if settings.secret_key else None
    try:  # made here, before workers start, as the stored secret they all read
        load_server_secret(configured, settings.data_dir, create=True)
    except (ValueError, OSError) as exc:
        fail(f"server secret: {exc}")

    async def prepare() -> None:
        from perpetuo.control.bootstrap import prepare_database
        from perpetuo.store.database import Database

        db = Database(settings.resolved_database_url())
        try:
            await prepare_database(db, Keyring.from_environment())
        finally:
            await db.dispose()

    def prepared() -> None:
        from perpetuo.control.bootstrap import StartupError

        try:
            run(prepare())
        except StartupError as exc:
            fail(str(exc))
        except OSError as exc:
            fail(f"cannot open the database: {exc}")

    # A schema behind head is migrated by a child while this process validates the config
    # and loads what serving needs; then we wait for it.
    store_ready = migrate_aside(settings, prepared)
    from perpetuo.config import ConfigError, load_config
    from perpetuo.routing.table import RoutingTable
    from perpetuo.transport.proxy import ProxyEnvironment

    try:
        gateway_config = load_config(settings.config)
        table = RoutingTable.build(gateway_config, str(settings.config or "config"))
        proxies = ProxyEnvironment.from_environ(os.environ)
    except ConfigError as exc:
        _fail_after(store_ready, str(exc))
    except ValueError as exc:  # a proxy variable holds no usable URL
        _fail_after(store_ready, f"environment: {exc}")
    import uvicorn

    from perpetuo.api.server_protocol import GatewayHttpProtocol
    from perpetuo.app import create_app
    from perpetuo.cli.banner import banner, key_warnings

    store_ready()
    os.environ["PERPETUO_DATA_DIR"] = str(settings.data_dir.resolve())
    # Where this gateway listens: the egress policy refuses tenant URLs that point back here.
    host = host or gateway_config.server.host or settings.host
    port = port or gateway_config.server.port or settings.port
    settings = settings.model_copy(update={"host": host, "port": port})
    os.environ["PERPETUO_HOST"], os.environ["PERPETUO_PORT"] = host, str(port)
    for line in banner(
        config_file=str(settings.config or "none (no providers, no models)"),
        aliases=len(table.aliases),
        host=host,
        port=port,
        master_key=master,
        demo=any(p.type == "demo" for p in gateway_config.providers.values()),
    ):
        click.echo(line, err=True)
    for line in key_warnings(gateway_config):
        click.echo(line, err=True)
    if proxies is not None:
        click.echo(f"outbound proxy (environment): {proxies.describe()}", err=True)
    if workers > 1:
        _prepare_workers(settings)
    if workers == 1:
        # One process: hand uvicorn the application built from what was just validated.
        target: object = create_app(settings, gateway_config)
        factory = False
    else:
        target, factory = "perpetuo.app:create_app", True  # each worker builds its own
    uvicorn.run(
        target,  # type: ignore[arg-type]
        factory=factory,
        host=host,
        port=port,
        workers=workers,
        loop="uvloop",
        http=GatewayHttpProtocol,  # httptools, a response's writes in one system call
        ws="none",  # no WebSocket routes: an upgrade request is answered as plain HTTP
        lifespan="on",
        access_log=False,
        server_header=False,
        proxy_headers=False,  # the application reads X-Forwarded-* itself (api/http.py)
        log_level=settings.log_level.lower(),
        timeout_graceful_shutdown=30,
    )


def _fail_after(store_ready: Callable[[], None], message: str) -> NoReturn:
    """Our own failure, said once a migrating child is done (whatever its outcome)."""
    with contextlib.suppress(click.exceptions.Exit):
        store_ready()
    fail(message)


def migrate_aside(settings: Any, prepared: Callable[[], None]) -> Callable[[], None]:
    """Run `prepared` (migrations, store checks) here when the schema is at head, else in a
    forked child while this process goes on loading the server; returns the wait for the
    child (nothing to wait for at head), whose failure is ours. The server never loads
    Alembic, whose modules (about 11 MiB) it would keep for its whole life after a first
    start or an upgrade, and a first start migrates while the server loads."""
    from perpetuo.store.database import Database
    from perpetuo.store.migrate import HEAD_REVISION, current_revision

    async def behind() -> bool:
        db = Database(settings.resolved_database_url())
        try:
            return await current_revision(db) != HEAD_REVISION
        finally:
            await db.dispose()

    try:
        fork = hasattr(os, "fork") and run(behind())
    except Exception:
        fork = False  # `prepared` meets the same failure and says what is wrong, as before
    if not fork:
        prepared()
        return lambda: None
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:  # the child: prepare, then leave without running the parent's exit handlers
        code = 1
        try:
            prepared()
            code = 0
        except click.exceptions.Exit as exc:
            code = exc.exit_code
        except BaseException:
            traceback.print_exc()
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)

    def wait() -> None:
        code = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
        if code != 0:
            raise click.exceptions.Exit(code if code > 0 else 1)  # the child has said why

    return wait


@click.command("check-config")
@click.argument("path", type=click.Path(path_type=Path), help="YAML config file.")
@click.option("--json", "as_json", is_flag=True, help="Print the table as JSON.")
def check_config(path: Path, as_json: bool) -> None:
    """Validate a config file and print the resolved routing table."""
    from perpetuo.config import ConfigError, load_config
    from perpetuo.routing.table import RoutingTable

    try:
        table = RoutingTable.build(load_config(path), str(path))
    except ConfigError as exc:
        fail(str(exc))
    rows = table.describe()
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    click.echo(f"{path}: OK — {len(table.aliases)} aliases, {len(rows)} deployments")
    columns = ("alias", "order", "provider", "type", "model", "endpoint")
    widths = {c: max(len(c), *(len(str(r[c])) for r in rows)) if rows else len(c) for c in columns}
    click.echo("  ".join(c.upper().ljust(widths[c]) for c in columns))
    for row in rows:
        click.echo("  ".join(str(row[c]).ljust(widths[c]) for c in columns))


@click.command("demo-upstream")
@click.option("--port", type=int, default=8099, show_default=True, help="Port to listen on.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Bind address.")
def demo_upstream(port: int, host: str) -> None:
    """Run the demo provider alone: an OpenAI-compatible server with deterministic answers
    (chat, streaming, tool calls, structured output, embeddings), for testing applications."""
    from perpetuo.demo.server import run_standalone

    click.echo(f"demo upstream: http://{host}:{port}/v1 (any API key is accepted)", err=True)
    run_standalone(host, port)


@click.command("version")
def version() -> None:
    """Print the version."""
    click.echo(__version__)


def _prepare_workers(settings: object) -> None:
    """Several worker processes share one port; what must be shared between them has to
    live in Redis (limits, budgets, sign-in throttling) or be aggregated (metrics)."""
    import tempfile

    if not getattr(settings, "redis_url", None):
        fail(
            "--workers above 1 needs PERPETUO_REDIS_URL: rate limits, budgets and sign-in "
            "throttling are kept in process memory otherwise, so each worker would enforce "
            "its own separate copy of every limit"
        )
    if getattr(settings, "limits_backend", "auto") == "memory":
        fail("--workers above 1 needs PERPETUO_LIMITS_BACKEND=redis (or auto), not memory")
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        # Every worker writes its metric values here; /metrics sums them at scrape time.
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="perpetuo-metrics-")
