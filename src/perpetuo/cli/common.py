"""Helpers shared by the CLI commands."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any, NoReturn, TypeVar

import typer

T = TypeVar("T")

ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="YAML config file (env: PERPETUO_CONFIG)."),
]


def fail(message: str, code: int = 2) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


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
