"""The `perpetuo` command line: serve, check-config, keys, db, admin, secrets, models,
version."""

from __future__ import annotations

import typer

from perpetuo.cli import admin, keys, models, secrets, serve, store

cli = typer.Typer(add_completion=False, no_args_is_help=True, help="Perpetuo LLM gateway.")
serve.register(cli)
cli.add_typer(keys.app, name="keys", help="Create, list and revoke virtual API keys.")
cli.add_typer(store.app, name="db", help="Database schema.")
cli.add_typer(admin.app, name="admin", help="Platform administrators.")
cli.add_typer(secrets.app, name="secrets", help="Encryption keys for stored credentials.")
cli.add_typer(models.app, name="models", help="Discover a provider's models and propose aliases.")


def main() -> None:
    cli()
