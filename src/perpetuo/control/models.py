"""Workspace-managed aliases: a workspace's own models on its own provider credentials.

They coexist with the platform's aliases from the config file; a workspace alias with the
same name takes precedence for that workspace only.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import delete, insert, select, update

from perpetuo.config.model import Strategy
from perpetuo.control import audit
from perpetuo.control.access import require
from perpetuo.control.actor import Actor
from perpetuo.control.errors import conflict, invalid, not_found
from perpetuo.control.plane import ControlPlane
from perpetuo.control.workspace_routing import touch_routing
from perpetuo.store.ids import new_id
from perpetuo.store.pagination import Page, newest_first, to_page
from perpetuo.store.schema import provider_credentials, workspace_models
from perpetuo.store.timeutil import iso, utcnow

AliasName = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9._:/@-]+$")]


class DeploymentSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    credential_id: str = Field(description="A provider credential of this workspace")
    model: Annotated[str, Field(min_length=1, max_length=200)]
    weight: Annotated[float, Field(gt=0)] = 1.0
    priority: int = 0


class ModelSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    deployments: list[DeploymentSpec] = Field(min_length=1, max_length=50)
    strategy: Strategy = "default"
    fallbacks: list[AliasName] = Field(default_factory=list)
    extra_params: list[Annotated[str, Field(max_length=64)]] = Field(default_factory=list)
    description: Annotated[str, Field(max_length=500)] | None = None


class ModelCreate(ModelSpec):
    alias: AliasName


def model_view(row: Any, disabled: str | None = None) -> dict[str, Any]:
    return {
        "id": row.id,
        "object": "workspace_model",
        "workspace_id": row.workspace_id,
        "alias": row.alias,
        **row.spec,
        "status": "disabled" if disabled else "active",
        "disabled_reason": disabled,
        "created_at": iso(row.created_at),
        "updated_at": iso(row.updated_at),
    }


async def _check_credentials(conn: Any, workspace_id: str, spec: ModelSpec) -> None:
    wanted = {d.credential_id for d in spec.deployments}
    found = set(
        (
            await conn.execute(
                select(provider_credentials.c.id).where(
                    provider_credentials.c.workspace_id == workspace_id,
                    provider_credentials.c.id.in_(wanted),
                )
            )
        ).scalars()
    )
    for index, dep in enumerate(spec.deployments):
        if dep.credential_id not in found:
            raise invalid(
                f"No provider credential {dep.credential_id!r} in this workspace.",
                f"deployments.{index}.credential_id",
            )


async def _get(conn: Any, workspace_id: str, alias: str) -> Any:
    return (
        await conn.execute(
            select(workspace_models).where(
                workspace_models.c.workspace_id == workspace_id, workspace_models.c.alias == alias
            )
        )
    ).first()


def _spec_json(spec: ModelSpec) -> dict[str, Any]:
    return spec.model_dump(mode="json", exclude={"alias"}, exclude_none=True)


async def create_model(
    plane: ControlPlane, actor: Actor, workspace_id: str, spec: ModelCreate
) -> dict[str, Any]:
    async with plane.db.begin() as conn:
        await require(conn, actor, workspace_id, "models.write")
        if await _get(conn, workspace_id, spec.alias) is not None:
            raise conflict(f"The alias {spec.alias!r} already exists in this workspace.", "alias")
        await _check_credentials(conn, workspace_id, spec)
        now = utcnow()
        await conn.execute(
            insert(workspace_models).values(
                id=new_id("mdl"),
                workspace_id=workspace_id,
                alias=spec.alias,
                spec=_spec_json(spec),
                created_at=now,
                updated_at=now,
            )
        )
        view = model_view(await _get(conn, workspace_id, spec.alias))
        await audit.record(
            conn,
            actor,
            "model.create",
            workspace_id=workspace_id,
            target_type="workspace_model",
            target_id=spec.alias,
            after=view,
        )
        await touch_routing(conn, workspace_id)
    await plane.changes.publish("workspace", workspace_id)
    return view


async def list_models(
    plane: ControlPlane, actor: Actor, workspace_id: str, *, limit: int, cursor: str | None
) -> Page:
    async with plane.db.connect() as conn:
        await require(conn, actor, workspace_id, "models.read")
        query = newest_first(
            select(workspace_models).where(workspace_models.c.workspace_id == workspace_id),
            workspace_models,
            cursor,
            limit,
        )
        return to_page((await conn.execute(query)).all(), limit)


async def get_model(plane: ControlPlane, actor: Actor, workspace_id: str, alias: str) -> Any:
    async with plane.db.connect() as conn:
        await require(conn, actor, workspace_id, "models.read")
        row = await _get(conn, workspace_id, alias)
    if row is None:
        raise not_found("Model")
    return row


async def replace_model(
    plane: ControlPlane, actor: Actor, workspace_id: str, alias: str, spec: ModelSpec
) -> dict[str, Any]:
    async with plane.db.begin() as conn:
        await require(conn, actor, workspace_id, "models.write")
        row = await _get(conn, workspace_id, alias)
        if row is None:
            raise not_found("Model")
        await _check_credentials(conn, workspace_id, spec)
        await conn.execute(
            update(workspace_models)
            .where(workspace_models.c.id == row.id)
            .values(spec=_spec_json(spec), updated_at=utcnow())
        )
        after = model_view(await _get(conn, workspace_id, alias))
        await audit.record(
            conn,
            actor,
            "model.update",
            workspace_id=workspace_id,
            target_type="workspace_model",
            target_id=alias,
            before=model_view(row),
            after=after,
        )
        await touch_routing(conn, workspace_id)
    await plane.changes.publish("workspace", workspace_id)
    return after


async def delete_model(plane: ControlPlane, actor: Actor, workspace_id: str, alias: str) -> None:
    async with plane.db.begin() as conn:
        await require(conn, actor, workspace_id, "models.write")
        row = await _get(conn, workspace_id, alias)
        if row is None:
            raise not_found("Model")
        await conn.execute(delete(workspace_models).where(workspace_models.c.id == row.id))
        await audit.record(
            conn,
            actor,
            "model.delete",
            workspace_id=workspace_id,
            target_type="workspace_model",
            target_id=alias,
            before=model_view(row),
        )
        await touch_routing(conn, workspace_id)
    await plane.changes.publish("workspace", workspace_id)
