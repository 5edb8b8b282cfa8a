"""The `perpetuo` command line: serve, check-config, keys, db, admin, secrets, models,
version. Plain click, which uvicorn imports anyway: the command line costs `perpetuo serve`
almost nothing of its start-up."""

from __future__ import annotations

import click

from perpetuo.cli import admin, keys, models, secrets, serve, store
from perpetuo.cli.common import Group


@click.group(cls=Group, no_args_is_help=True, help="Perpetuo LLM gateway.")
def cli() -> None:
    pass


serve.register(cli)
cli.add_command(keys.group, "keys")
cli.add_command(store.group, "db")
cli.add_command(admin.group, "admin")
cli.add_command(secrets.group, "secrets")
cli.add_command(models.group, "models")


def main() -> None:
    cli()
