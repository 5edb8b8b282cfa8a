"""`perpetuo keys create | list | revoke`: works on the configured database, server or not."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from perpetuo.cli.common import ConfigOption, control_plane, fail, run

app = typer.Typer(no_args_is_help=True)

WorkspaceOption = Annotated[
    str, typer.Option("--workspace", "-w", help="Workspace id (default: the default workspace).")
]


def _split(value: str | None) -> list[str] | None:
    return [v.strip() for v in value.split(",") if v.strip()] if value else None


@app.command("create")
def create(
    name: Annotated[str, typer.Option("--name", "-n", help="A name people will recognise.")],
    workspace: WorkspaceOption = "ws_default",
    models: Annotated[str | None, typer.Option(help="Allowed aliases, comma-separated.")] = None,
    scopes: Annotated[
        str | None,
        typer.Option(
            help="chat,embeddings,images,audio,rerank,moderations,models:read (default all)."
        ),
    ] = None,
    expires: Annotated[str | None, typer.Option(help="Lifetime such as 30d, 12h, 2w.")] = None,
    environment: Annotated[str, typer.Option(help="live, test, or one the config adds.")] = "live",
    ip_allow: Annotated[
        str | None, typer.Option("--ip-allow", help="CIDRs, comma-separated.")
    ] = None,
    rpm: Annotated[int | None, typer.Option(help="Requests per minute.")] = None,
    tpm: Annotated[int | None, typer.Option(help="Tokens per minute.")] = None,
    max_parallel: Annotated[
        int | None, typer.Option("--max-parallel", help="Concurrent requests.")
    ] = None,
    budget: Annotated[float | None, typer.Option(help="Budget in USD.")] = None,
    budget_period: Annotated[
        str | None, typer.Option("--budget-period", help="daily, weekly, monthly or total.")
    ] = None,
    config: ConfigOption = None,
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
    typer.echo(f"created key {view['id']} ({view['name']}) in workspace {view['workspace_id']}")
    typer.echo(
        f"scopes: {', '.join(view['scopes'])}; models: "
        f"{', '.join(view['allowed_models'] or ['all'])}; expires: {view['expires_at'] or 'never'}"
    )
    typer.echo("This is the only time the key is shown. Store it now:")
    typer.echo(plaintext)


@app.command("list")
def list_keys(
    workspace: WorkspaceOption = "ws_default",
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    config: ConfigOption = None,
) -> None:
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
        typer.echo(json.dumps(views, indent=2))
        return
    for v in views:
        typer.echo(
            f"{v['id']}  {v['display']:<24} {v['status']:<8} {v['name']}"
            f"  last used: {v['last_used_at'] or 'never'}"
        )


@app.command("revoke")
def revoke(
    key: Annotated[str, typer.Argument(help="Key id (key_...) or display prefix (pk_live_AbCd).")],
    config: ConfigOption = None,
) -> None:
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
    typer.echo(f"revoked {view['id']} ({view['display']})")


def _validation_message(exc: Exception) -> str:
    errors = getattr(exc, "errors", None)
    if callable(errors):
        first = errors()[0]
        field = ".".join(str(p) for p in first.get("loc", ()))
        return f"{field}: {first.get('msg')}"
    return str(exc)
