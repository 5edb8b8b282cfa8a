"""`perpetuo admin create`: a platform super-administrator account."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from perpetuo.cli.common import Group, config_option, control_plane, fail, run


@click.group(cls=Group, no_args_is_help=True, help="Platform administrators.")
def group() -> None:
    pass


@group.command("create")
@click.option("--email", required=True, help="Sign-in email address.")
@click.option(
    "--password",
    required=True,
    prompt=True,
    hide_input=True,
    confirmation_prompt=True,
    help="Password (prompted when omitted).",
)
@click.option("--name", default="", help="Display name.")
@config_option
def create(email: str, password: str, name: str, config: Path | None) -> None:
    """Create a super-administrator (can act in every workspace)."""
    from pydantic import ValidationError

    from perpetuo.control.accounts import UserCreate, create_user
    from perpetuo.control.actor import CLI_ACTOR
    from perpetuo.schema.errors import GatewayError

    try:
        spec = UserCreate(email=email, password=password, name=name)
    except ValidationError as exc:
        first = exc.errors()[0]
        fail(f"{'.'.join(map(str, first['loc']))}: {first['msg']}")

    async def go() -> dict[str, Any]:
        async with control_plane(config) as plane:
            return await create_user(plane, CLI_ACTOR, spec, superadmin=True)

    try:
        view = run(go())
    except GatewayError as exc:
        fail(exc.message)
    click.echo(f"created super-administrator {view['email']} ({view['id']})")
