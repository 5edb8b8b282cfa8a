"""`perpetuo secrets new-key | rotate`: the keyring that encrypts stored provider credentials."""

from __future__ import annotations

from pathlib import Path

import click

from perpetuo.cli.common import Group, config_option, control_plane, fail, run


@click.group(cls=Group, no_args_is_help=True, help="Encryption keys for stored credentials.")
def group() -> None:
    pass


@group.command("new-key")
@click.argument("key_id", help="A name for the key, e.g. k2026a.")
def new_key(key_id: str) -> None:
    """Print a fresh `id:key` entry. Put it first in PERPETUO_ENCRYPTION_KEYS (keeping the
    old entries after it), restart, then run `perpetuo secrets rotate`."""
    from perpetuo.auth.credential_crypto import new_key_spec

    click.echo(new_key_spec(key_id))


@group.command("rotate")
@config_option
def rotate(config: Path | None) -> None:
    """Re-encrypt every stored credential with the active (first) key of the keyring."""
    from perpetuo.control.credentials import reencrypt_all
    from perpetuo.schema.errors import GatewayError

    async def go() -> tuple[int, int]:
        async with control_plane(config) as plane:
            return await reencrypt_all(plane)

    try:
        done, current = run(go())
    except GatewayError as exc:
        fail(exc.message)
    click.echo(f"re-encrypted {done} credentials; {current} already used the active key")
