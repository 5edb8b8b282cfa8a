"""`perpetuo admin create`: a platform super-administrator account."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from perpetuo.cli.common import ConfigOption, control_plane, fail, run

app = typer.Typer(no_args_is_help=True)


@app.command("create")
def create(
    email: Annotated[str, typer.Option(help="Sign-in email address.")],
    password: Annotated[
        str,
        typer.Option(
            prompt=True,
            hide_input=True,
            confirmation_prompt=True,
            help="Password (prompted when omitted).",
        ),
    ],
    name: Annotated[str, typer.Option(help="Display name.")] = "",
    config: ConfigOption = None,
) -> None:
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
    typer.echo(f"created super-administrator {view['email']} ({view['id']})")
