"""Helpers shared by the CLI commands."""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import click

T = TypeVar("T")

# One `--config` option, the same on every command that reads the configured database.
config_option = click.option(
    "--config",
    "-c",
    type=click.Path(path_type=Path),
    default=None,
    help="YAML config file (env: PERPETUO_CONFIG).",
)


class Group(click.Group):
    """A command group whose help lists its commands in the order they were added, each with
    its docstring's whole first paragraph (click would sort them and cut each summary short);
    called with nothing, it prints that help on stdout and exits 2."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if not args and self.no_args_is_help and not ctx.resilient_parsing:
            click.echo(ctx.get_help())  # click would print it on stderr
            ctx.exit(2)
        return super().parse_args(ctx, args)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(self.commands)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, _summary(c)) for name, c in self.commands.items() if not c.hidden]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


def _summary(command: click.Command) -> str:
    first = (command.short_help or command.help or "").split("\n\n")[0]
    return " ".join(first.split())


def fail(message: str, code: int = 2) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    raise click.exceptions.Exit(code)


def settings_for(config: Path | None) -> Any:
    """Settings from the environment, with --config taking precedence over PERPETUO_CONFIG."""
    from pydantic import ValidationError

    from perpetuo.config import Settings

    if config is not None:
        os.environ["PERPETUO_CONFIG"] = str(config.resolve())
    try:
        return Settings()
    except ValidationError as exc:
        fail("; ".join(_setting_error(error) for error in exc.errors()))


def _setting_error(error: Any) -> str:
    """`PERPETUO_NAME: what is wrong`, without pydantic's links or the value (a secret may be
    in it)."""
    name = "_".join(str(part) for part in error.get("loc", ()))
    message = str(error.get("msg", "invalid")).removeprefix("Value error, ")
    return f"PERPETUO_{name.upper()}: {message}" if name else message


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    import asyncio  # not at import: `perpetuo version` and `--help` need no event loop

    return asyncio.run(coroutine)


@asynccontextmanager
async def control_plane(config: Path | None) -> AsyncIterator[Any]:
    """The control plane over the configured database, schema brought to head."""
    from perpetuo.app import build_control_plane
    from perpetuo.control.bootstrap import StartupError, prepare_store

    settings = settings_for(config)
    plane = build_control_plane(settings)
    if settings.config is not None:  # the environments keys may be created in
        from perpetuo.config.loader import ConfigError, load_config

        # A file the CLI cannot load (a provider's variable unset here) leaves live and test.
        with contextlib.suppress(ConfigError):
            plane.api_keys = load_config(settings.config).api_keys
    try:
        try:
            await prepare_store(plane)
        except StartupError as exc:
            fail(str(exc))
        yield plane
    finally:
        await plane.db.dispose()
