"""`perpetuo secrets new-key | rotate`: the keyring that encrypts stored provider credentials."""

from __future__ import annotations

from typing import Annotated

import typer

from perpetuo.cli.common import ConfigOption, control_plane, fail, run

app = typer.Typer(no_args_is_help=True)


@app.command("new-key")
def new_key(
    key_id: Annotated[str, typer.Argument(help="A name for the key, e.g. k2026a.")],
) -> None:
    """Print a fresh `id:key` entry. Put it first in PERPETUO_ENCRYPTION_KEYS (keeping the
    old entries after it), restart, then run `perpetuo secrets rotate`."""
    from perpetuo.auth.credential_crypto import new_key_spec

    typer.echo(new_key_spec(key_id))


@app.command("rotate")
def rotate(config: ConfigOption = None) -> None:
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
    typer.echo(f"re-encrypted {done} credentials; {current} already used the active key")
