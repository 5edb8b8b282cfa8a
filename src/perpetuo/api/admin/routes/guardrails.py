"""/api/guardrails/test: what a guardrail policy finds in a text, and what it makes of it.

The caller sees the transformed form of the text it sent; nothing of it is logged or stored.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from perpetuo.api.admin.deps import ActorDep, PlaneDep
from perpetuo.api.admin.envelope import one
from perpetuo.api.admin.responses import WORKSPACE
from perpetuo.control.access import require
from perpetuo.control.errors import invalid
from perpetuo.control.workspaces import effective_settings, get_row
from perpetuo.guardrails.evaluate import evaluate
from perpetuo.guardrails.policy import GuardrailPolicy, resolve

# With `workspace_id` in the body, the caller needs a role in that workspace.
router = APIRouter(prefix="/api/guardrails", tags=["Guardrails"], responses=WORKSPACE)


class GuardrailTest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: Annotated[str, Field(max_length=1_000_000)]
    policy: GuardrailPolicy | None = Field(
        default=None, description="The policy to test; default: the workspace's"
    )
    workspace_id: str | None = Field(
        default=None, description="Use (or lay `policy` over) this workspace's policy"
    )
    direction: Literal["input", "output"] = "input"


@router.post("/test", summary="Run a guardrail policy over a text: findings and the result")
async def test_guardrails(body: GuardrailTest, actor: ActorDep, plane: PlaneDep) -> dict[str, Any]:
    base = None
    if body.workspace_id is not None:
        async with plane.db.connect() as conn:
            await require(conn, actor, body.workspace_id, "workspace.read")
            row = await get_row(conn, body.workspace_id)
        base = effective_settings(row.settings).guardrails
    elif body.policy is None:
        raise invalid("Give a `policy`, a `workspace_id`, or both.", "policy")
    return one(evaluate(body.text, resolve(base, body.policy), body.direction))
