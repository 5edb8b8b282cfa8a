"""Prepaid credits: a workspace's ledger of grants, adjustments and usage, and its balance.

Only platform administrators (super-admins and the master key) grant or adjust credits: a
workspace's own owners and admins could otherwise pay themselves. Every member reads the
balance (what was granted, used and is left); admins and owners also read the ledger. The
ledger is append-only; the balance is its sum. Usage entries are written by the limits
engine in batches, so the balance shown here can lag the live one by a few seconds.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import select

from perpetuo.control import audit
from perpetuo.control.access import require
from perpetuo.control.actor import Actor
from perpetuo.control.errors import forbidden
from perpetuo.control.plane import ControlPlane
from perpetuo.metering.pricing import to_micro_usd
from perpetuo.store.pagination import Page, newest_first, to_page
from perpetuo.store.repos import credits as repo
from perpetuo.store.schema import credit_ledger
from perpetuo.store.timeutil import iso, utcnow

MAX_ENTRY_USD = 1_000_000.0


class CreditEntryCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    amount_usd: Annotated[float, Field(ge=-MAX_ENTRY_USD, le=MAX_ENTRY_USD)] = Field(
        description="Positive adds credit; negative (an adjustment) removes it"
    )
    note: Annotated[str, Field(max_length=300)] | None = None
    kind: Literal["grant", "adjustment"] | None = Field(
        default=None, description="Default: grant when positive, adjustment when negative"
    )

    @model_validator(mode="after")
    def _consistent(self) -> CreditEntryCreate:
        if self.micros == 0:
            raise ValueError("amount_usd must not be zero (at least 0.000001)")
        if self.kind == "grant" and self.micros < 0:
            raise ValueError("a grant must be positive; use an adjustment to remove credit")
        return self

    @property
    def micros(self) -> int:
        return to_micro_usd(Decimal(str(self.amount_usd)))

    @property
    def entry_kind(self) -> str:
        return self.kind or ("grant" if self.micros > 0 else "adjustment")


def entry_view(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "object": "credit_entry",
        "workspace_id": row.workspace_id,
        "kind": row.kind,
        "amount_micros": row.amount_micros,
        "amount_usd": row.amount_micros / 1_000_000,
        "note": row.note,
        "actor_id": row.actor_id,
        "created_at": iso(row.created_at),
    }


def balance_view(micros: int) -> dict[str, Any]:
    return {"balance_micros": micros, "balance_usd": micros / 1_000_000}


async def add_entry(
    plane: ControlPlane, actor: Actor, workspace_id: str, spec: CreditEntryCreate
) -> dict[str, Any]:
    """Grant or adjust credits (platform administrators only); the entry and new balance."""
    async with plane.db.begin() as conn:
        await require(conn, actor, workspace_id, "credits.read")  # strangers: 404
        if not actor.is_superadmin:
            raise forbidden("Only platform administrators can grant or adjust credits.")
        row = await repo.add_entry(
            conn,
            {
                "workspace_id": workspace_id,
                "kind": spec.entry_kind,
                "amount_micros": spec.micros,
                "note": spec.note,
                "actor_id": actor.audit_id,
                "created_at": utcnow(),
            },
        )
        view = entry_view(row)
        balance = await repo.balance(conn, workspace_id)
        await audit.record(
            conn,
            actor,
            f"credits.{spec.entry_kind}",
            workspace_id=workspace_id,
            target_type="credit_entry",
            target_id=str(row.id),
            after={**view, **balance_view(balance)},
        )
    if plane.credit_listener is not None:
        await plane.credit_listener(workspace_id, spec.micros)
    return {**view, **balance_view(balance)}


async def ledger(
    plane: ControlPlane, actor: Actor, workspace_id: str, *, limit: int, cursor: str | None
) -> tuple[int, Page]:
    """The balance and a page of ledger entries, newest first (admins and owners)."""
    async with plane.db.connect() as conn:
        await require(conn, actor, workspace_id, "credits.ledger")
        balance = await repo.balance(conn, workspace_id)
        query = newest_first(
            select(credit_ledger).where(credit_ledger.c.workspace_id == workspace_id),
            credit_ledger,
            cursor,
            limit,
        )
        return balance, to_page((await conn.execute(query)).all(), limit)


def summary_view(workspace_id: str, granted: int, used: int) -> dict[str, Any]:
    return {
        "object": "credit_balance",
        "workspace_id": workspace_id,
        "total_granted_usd": granted / 1_000_000,
        "total_used_usd": used / 1_000_000,
        "remaining_usd": (granted - used) / 1_000_000,
    }


async def summary(plane: ControlPlane, actor: Actor, workspace_id: str) -> dict[str, Any]:
    """Credit granted, used and left (any role in the workspace)."""
    async with plane.db.connect() as conn:
        await require(conn, actor, workspace_id, "credits.read")
        granted, used = await repo.totals(conn, workspace_id)
    return summary_view(workspace_id, granted, used)
