"""The `perpetuo` command line."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated

import typer

from perpetuo import __version__

cli = typer.Typer(add_completion=False, no_args_is_help=True, help="Perpetuo LLM gateway.")

ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="YAML config file (env: PERPETUO_CONFIG)."),
]


def _fail(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


@cli.command()
def serve(
    config: ConfigOption = None,
    host: Annotated[str | None, typer.Option(help="Bind address (env: PERPETUO_HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (env: PERPETUO_PORT).")] = None,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes.")] = 1,
) -> None:
    """Run the gateway."""
    import uvicorn

    from perpetuo.auth.master_key import ensure_master_key, master_key_file
    from perpetuo.config import ConfigError, Settings, load_config
    from perpetuo.routing.table import RoutingTable

    settings = Settings()
    if config is not None:
        os.environ["PERPETUO_CONFIG"] = str(config.resolve())
        settings = Settings()
    try:
        gateway_config = load_config(settings.config)
        RoutingTable.build(gateway_config, str(settings.config or "config"))
    except ConfigError as exc:
        _fail(str(exc))
        return
    if settings.master_key is None:
        _, created = ensure_master_key(settings.data_dir)
        where = master_key_file(settings.data_dir)
        typer.echo(f"master key {'written to' if created else 'read from'} {where}", err=True)
    bind_host = host or gateway_config.server.host or settings.host
    bind_port = port or gateway_config.server.port or settings.port
    os.environ["PERPETUO_DATA_DIR"] = str(settings.data_dir.resolve())
    uvicorn.run(
        "perpetuo.app:create_app",
        factory=True,
        host=bind_host,
        port=bind_port,
        workers=workers,
        loop="uvloop",
        http="httptools",
        lifespan="on",
        access_log=False,
        server_header=False,
        log_level=settings.log_level.lower(),
        timeout_graceful_shutdown=30,
    )


@cli.command("check-config")
def check_config(
    path: Annotated[Path, typer.Argument(help="YAML config file.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the table as JSON.")] = False,
) -> None:
    """Validate a config file and print the resolved routing table."""
    from perpetuo.config import ConfigError, load_config
    from perpetuo.routing.table import RoutingTable

    try:
        table = RoutingTable.build(load_config(path), str(path))
    except ConfigError as exc:
        _fail(str(exc))
        return
    rows = table.describe()
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    typer.echo(f"{path}: OK — {len(table.aliases)} aliases, {len(rows)} deployments")
    columns = ("alias", "order", "provider", "type", "model", "endpoint")
    widths = {c: max(len(c), *(len(str(r[c])) for r in rows)) if rows else len(c) for c in columns}
    typer.echo("  ".join(c.upper().ljust(widths[c]) for c in columns))
    for row in rows:
        typer.echo("  ".join(str(row[c]).ljust(widths[c]) for c in columns))


@cli.command()
def version() -> None:
    """Print the version."""
    typer.echo(__version__)


def main() -> None:
    cli()
