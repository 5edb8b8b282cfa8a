"""`perpetuo keys create | list | revoke`: works on the configured database, server or not."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from perpetuo.cli.common import Group, config_option, control_plane, fail, run

workspace_option = click.option(
    "--workspace",
    "-w",
    default="ws_default",
    show_default=True,
    help="Workspace id (default: the default workspace).",
)


@click.group(cls=Group, no_args_is_help=True, help="Create, list and revoke virtual API keys.")
def group() -> None:
    pass


def _split(value: str | None) -> list[str] | None:
    return [v.strip() for v in value.split(",") if v.strip()] if value else None


@group.command("create")
@click.option("--name", "-n", required=True, help="A name people will recognise.")
@workspace_option
@click.option("--models", default=None, help="Allowed aliases, comma-separated.")
@click.option(
    "--scopes",
    default=None,
    help="chat,embeddings,images,audio,rerank,moderations,models:read (default all).",
)
@click.option("--expires", default=None, help="Lifetime such as 30d, 12h, 2w.")
@click.option(
    "--environment", default="live", show_default=True, help="live, test, or one the config adds."
)
@click.option("--ip-allow", default=None, help="CIDRs, comma-separated.")
@click.option("--rpm", type=int, default=None, help="Requests per minute.")
@click.option("--tpm", type=int, default=None, help="Tokens per minute.")
@click.option("--max-parallel", type=int, default=None, help="Concurrent requests.")
@click.option("--budget", type=float, default=None, help="Budget in USD.")
@click.option("--budget-period", default=None, help="daily, weekly, monthly or total.")
@config_option
def create(
    name: str,
    workspace: str,
    models: str | None,
    scopes: str | None,
    expires: str | None,
    environment: str,
    ip_allow: str | None,
    rpm: int | None,
    tpm: int | None,
    max_parallel: int | None,
    budget: float | None,
    budget_period: str | None,
    config: Path | None,
) -> None:
    """Create a key. The key itself is printed once, alone on the last line."""
    from pydantic import ValidationError

    from perpetuo.control import api_keys as service
    from perpetuo.control.actor import CLI_ACTOR
    from perpetuo.schema.errors import GatewayError
    from perpetuo.store.timeutil import utcnow

    limits = {
        k: v
        for k, v in {
            "rpm": rpm,
            "tpm": tpm,
            "max_parallel": max_parallel,
            "budget_usd": budget,
            "budget_period": budget_period,
        }.items()
        if v is not None
    }
    fields: dict[str, Any] = {"name": name, "environment": environment}
    if models:
        fields["allowed_models"] = _split(models)
    if scopes:
        fields["scopes"] = _split(scopes)
    if ip_allow:
        fields["ip_allowlist"] = _split(ip_allow)
    if limits:
        fields["limits"] = limits
    try:
        if expires:
            fields["expires_at"] = utcnow() + service.parse_duration(expires)
        spec = service.KeyCreate.model_validate(fields)
    except (ValueError, ValidationError) as exc:
        fail(_validation_message(exc))

    async def go() -> tuple[dict[str, Any], str]:
        async with control_plane(config) as plane:
            return await service.create_key(plane, CLI_ACTOR, workspace, spec)

    try:
        view, plaintext = run(go())
    except GatewayError as exc:
        fail(exc.message)
    click.echo(f"created key {view['id']} ({view['name']}) in workspace {view['workspace_id']}")
    click.echo(
        f"scopes: {', '.join(view['scopes'])}; models: "
        f"{', '.join(view['allowed_models'] or ['all'])}; expires: {view['expires_at'] or 'never'}"
    )
    click.echo("This is the only time the key is shown. Store it now:")
    click.echo(plaintext)


@group.command("list")
@workspace_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@config_option
def list_keys(workspace: str, as_json: bool, config: Path | None) -> None:
    """List a workspace's keys (never their secrets)."""
    from perpetuo.control import api_keys as service
    from perpetuo.control.actor import CLI_ACTOR
    from perpetuo.schema.errors import GatewayError

    async def go() -> list[dict[str, Any]]:
        views: list[dict[str, Any]] = []
        cursor = None
        async with control_plane(config) as plane:
            while True:
                result = await service.list_keys(
                    plane, CLI_ACTOR, workspace, limit=200, cursor=cursor
                )
                views += [service.key_view(r) for r in result.rows]
                if not result.next_cursor:
                    return views
                cursor = result.next_cursor

    try:
        views = run(go())
    except GatewayError as exc:
        fail(exc.message)
    if as_json:
        click.echo(json.dumps(views, indent=2))
        return
    for v in views:
        click.echo(
            f"{v['id']}  {v['display']:<24} {v['status']:<8} {v['name']}"
            f"  last used: {v['last_used_at'] or 'never'}"
        )


@group.command("revoke")
@click.argument("key", help="Key id (key_...) or display prefix (pk_live_AbCd).")
@config_option
def revoke(key: str, config: Path | None) -> None:
    """Revoke a key by id or prefix; it stops working on every instance within seconds."""
    from perpetuo.control import api_keys as service
    from perpetuo.control.actor import CLI_ACTOR
    from perpetuo.store.repos import api_keys as rows

    async def go() -> dict[str, Any]:
        async with control_plane(config) as plane:
            async with plane.db.connect() as conn:
                matches = await rows.find_by_id_or_prefix(conn, key)
            if not matches:
                fail(f"no key with id or prefix {key!r}")
            if len(matches) > 1:
                fail(f"{len(matches)} keys share the prefix {key!r}; give the key id")
            row = matches[0]
            return await service.revoke_key(plane, CLI_ACTOR, row.workspace_id, row.id)

    view = run(go())
    click.echo(f"revoked {view['id']} ({view['display']})")


def _validation_message(exc: Exception) -> str:
    errors = getattr(exc, "errors", None)
    if callable(errors):
        first = errors()[0]
        field = ".".join(str(p) for p in first.get("loc", ()))
        return f"{field}: {first.get('msg')}"
    return str(exc)
