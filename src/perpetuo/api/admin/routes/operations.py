"""/api/admin/reload: apply the configuration file again, on every instance."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from perpetuo.api.admin.deps import ActorDep, PlaneDep
from perpetuo.api.admin.envelope import one
from perpetuo.api.admin.responses import PLATFORM
from perpetuo.config.loader import ConfigError
from perpetuo.control import audit
from perpetuo.control.errors import forbidden, invalid

router = APIRouter(prefix="/api/admin", tags=["Operations"], responses=PLATFORM)


@router.post("/reload", summary="Reload the configuration file (platform administrators)")
async def reload_config(actor: ActorDep, plane: PlaneDep, request: Request) -> dict[str, Any]:
    """New providers, aliases, weights and limits take effect without dropping in-flight
    requests; an invalid file is refused with the reason and the running one stays."""
    if not actor.is_superadmin:
        raise forbidden("Only platform administrators can reload the configuration.")
    gateway = request.app.state.gateway
    try:
        message = await gateway.reload_everywhere()
    except ConfigError as exc:
        raise invalid(f"The configuration was not reloaded: {exc}") from None
    async with plane.db.begin() as conn:  # also how instances without Redis hear of it
        await audit.record(
            conn,
            actor,
            "config.reload",
            workspace_id=None,
            target_type="config",
            target_id=None,
            after={"message": message},
        )
    return one({"reloaded": True, "message": message})
