"""`perpetuo db upgrade | current`."""

from __future__ import annotations

from pathlib import Path

import click

from perpetuo.cli.common import Group, config_option, run, settings_for


@click.group(cls=Group, no_args_is_help=True, help="Database schema.")
def group() -> None:
    pass


@group.command("upgrade")
@config_option
def upgrade(config: Path | None) -> None:
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
        click.echo(f"already at {HEAD_REVISION}")
    else:
        click.echo(f"upgraded from {before or 'an empty database'} to {HEAD_REVISION}")


@group.command("current")
@config_option
def current(config: Path | None) -> None:
    """Print the schema revision of the configured database."""
    from perpetuo.app import build_control_plane
    from perpetuo.store.migrate import current_revision

    async def go() -> str | None:
        plane = build_control_plane(settings_for(config))
        try:
            return await current_revision(plane.db)
        finally:
            await plane.db.dispose()

    click.echo(run(go()) or "empty")
