"""`perpetuo db upgrade | current`."""

from __future__ import annotations

import typer

from perpetuo.cli.common import ConfigOption, run, settings_for

app = typer.Typer(no_args_is_help=True)


@app.command("upgrade")
def upgrade(config: ConfigOption = None) -> None:
    """Apply pending migrations to the configured database."""
    from perpetuo.app import build_control_plane
    from perpetuo.store.migrate import HEAD_REVISION
    from perpetuo.store.migrate import upgrade as do_upgrade

    async def go() -> str | None:
        plane = build_control_plane(settings_for(config))
        try:
            return await do_upgrade(plane.db)
        finally:
            await plane.db.dispose()

    before = run(go())
    if before == HEAD_REVISION:
        typer.echo(f"already at {HEAD_REVISION}")
    else:
        typer.echo(f"upgraded from {before or 'an empty database'} to {HEAD_REVISION}")


@app.command("current")
def current(config: ConfigOption = None) -> None:
    """Print the schema revision of the configured database."""
    from perpetuo.app import build_control_plane
    from perpetuo.store.migrate import current_revision

    async def go() -> str | None:
        plane = build_control_plane(settings_for(config))
        try:
            return await current_revision(plane.db)
        finally:
            await plane.db.dispose()

    typer.echo(run(go()) or "empty")
