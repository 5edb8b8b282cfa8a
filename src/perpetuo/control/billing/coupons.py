"""Coupons: a code people type for a percentage or an amount off a plan (a Stripe coupon,
applied at their next Checkout or to their subscription) or for bonus credits (a ledger row).

A redemption is exact under any concurrency: the (coupon, workspace) primary key allows one
per workspace, and the count moves by a conditional update (`redemptions < max`) in the same
transaction, so of fifty simultaneous redemptions of a coupon limited to ten, ten succeed and
forty roll back whole.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError

from perpetuo.control import audit
from perpetuo.control.access import require_role
from perpetuo.control.actor import Actor, Role
from perpetuo.control.billing import accounts, money
from perpetuo.control.billing.service import Billing, Effects
from perpetuo.control.billing.subscriptions import SERVING
from perpetuo.control.errors import conflict, forbidden, invalid, not_found
from perpetuo.store.aio import AsyncConnection
from perpetuo.store.billing_tables import coupon_redemptions, coupons
from perpetuo.store.ids import new_id
from perpetuo.store.timeutil import iso, utcnow

Code = Annotated[str, Field(min_length=3, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]


class CouponCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: Code
    kind: Literal["percent", "amount", "credits"]
    percent_off: Annotated[int, Field(ge=1, le=100)] | None = None
    amount_off_usd: Annotated[float, Field(gt=0, le=100_000)] | None = None
    credits_usd: Annotated[float, Field(gt=0, le=100_000)] | None = None
    duration: Literal["once", "forever"] = "once"
    plans: list[Annotated[str, Field(max_length=64)]] | None = None
    expires_at: dt.datetime | None = None
    max_redemptions: Annotated[int, Field(ge=1, le=10_000_000)] | None = None

    @model_validator(mode="after")
    def _one_value(self) -> CouponCreate:
        wanted = {"percent": "percent_off", "amount": "amount_off_usd", "credits": "credits_usd"}
        for kind, name in wanted.items():
            given = getattr(self, name) is not None
            if given != (kind == self.kind):
                raise ValueError(f"a {self.kind} coupon takes {wanted[self.kind]} (only)")
        if self.expires_at is not None and self.expires_at.tzinfo is None:
            raise ValueError("expires_at needs a time zone (e.g. 2027-01-31T00:00:00Z)")
        return self


class RedeemRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: Code


def view(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "object": "coupon",
        "code": row.code,
        "kind": row.kind,
        "percent_off": row.percent_off,
        "amount_off_usd": row.amount_off_cents / 100 if row.amount_off_cents else None,
        "credits_usd": row.credits_micros / 1_000_000 if row.credits_micros else None,
        "duration": row.duration,
        "plans": row.plans,
        "expires_at": iso(row.expires_at),
        "max_redemptions": row.max_redemptions,
        "redemptions": row.redemptions,
        "disabled": row.disabled_at is not None,
        "created_at": iso(row.created_at),
    }


def _platform(actor: Actor) -> None:
    if not actor.is_superadmin:
        raise forbidden("Only platform administrators manage coupons.")


async def create(billing: Billing, actor: Actor, spec: CouponCreate) -> dict[str, Any]:
    _platform(actor)
    for plan_id in spec.plans or ():
        if billing.catalog.plan(plan_id) is None:
            raise invalid(f"No plan {plan_id!r} in the catalog.", "plans")
    code = spec.code.upper()
    async with billing.db.connect() as conn:
        if await conn.scalar(select(coupons.c.id).where(coupons.c.code == code)):
            raise conflict(f"A coupon {code} exists already.", "code")
    stripe_id = None
    if spec.kind != "credits":
        params: dict[str, Any] = {"duration": spec.duration, "name": code}
        if spec.kind == "percent":
            params["percent_off"] = spec.percent_off
        else:
            params.update(amount_off=round((spec.amount_off_usd or 0) * 100), currency="usd")
        stripe_id = await billing.stripe.create_coupon(params)
    values = {
        "id": new_id("cpn"),
        "code": code,
        "kind": spec.kind,
        "percent_off": spec.percent_off,
        "amount_off_cents": round(spec.amount_off_usd * 100) if spec.amount_off_usd else None,
        "credits_micros": round(spec.credits_usd * 1_000_000) if spec.credits_usd else None,
        "duration": spec.duration,
        "stripe_coupon_id": stripe_id,
        "plans": spec.plans,
        "expires_at": spec.expires_at,
        "max_redemptions": spec.max_redemptions,
        "redemptions": 0,
        "created_by": actor.audit_id,
        "created_at": utcnow(),
    }
    async with billing.db.begin() as conn:
        try:
            row = (await conn.execute(coupons.insert().values(**values).returning(coupons))).one()
        except IntegrityError:
            raise conflict(f"A coupon {code} exists already.", "code") from None
        await audit.record(
            conn,
            actor,
            "coupon.create",
            workspace_id=None,
            target_type="coupon",
            target_id=row.id,
            after=view(row),
        )
    return view(row)


async def listing(billing: Billing, actor: Actor) -> list[dict[str, Any]]:
    _platform(actor)
    async with billing.db.connect() as conn:
        rows = (await conn.execute(select(coupons).order_by(coupons.c.created_at.desc()))).all()
    return [view(r) for r in rows]


async def disable(billing: Billing, actor: Actor, coupon_id: str) -> dict[str, Any]:
    _platform(actor)
    async with billing.db.begin() as conn:
        await conn.execute(
            update(coupons)
            .where(coupons.c.id == coupon_id, coupons.c.disabled_at.is_(None))
            .values(disabled_at=utcnow())
        )
        row = (await conn.execute(select(coupons).where(coupons.c.id == coupon_id))).first()
        if row is None:
            raise not_found("Coupon")
        await audit.record(
            conn,
            actor,
            "coupon.disable",
            workspace_id=None,
            target_type="coupon",
            target_id=coupon_id,
        )
    return view(row)


async def redeem(billing: Billing, actor: Actor, workspace_id: str, code: str) -> dict[str, Any]:
    """Redeem `code` for the workspace: credits at once, a discount for its subscription."""
    effects = Effects()
    now = utcnow()
    async with billing.db.begin() as conn:
        await require_role(conn, actor, workspace_id, Role.ADMIN)
        row = (await conn.execute(select(coupons).where(coupons.c.code == code.upper()))).first()
        if row is None or row.disabled_at is not None:
            raise invalid("No such coupon.", "code")
        if row.expires_at is not None and row.expires_at <= now:
            raise invalid("This coupon has expired.", "code")
        acc = await accounts.account(conn, workspace_id)
        subscribed = acc.subscription_id is not None and acc.subscription_status in SERVING
        # Credits follow the plan in force; a discount the plan it will be used on (the
        # subscription's, else the one chosen at the next Checkout).
        if row.plans and (row.kind == "credits" or subscribed) and acc.plan_id not in row.plans:
            raise invalid("This coupon is not for this workspace's plan.", "code")
        status = "applied" if row.kind == "credits" or subscribed else "pending"
        try:
            async with conn.begin_nested():
                await conn.execute(
                    coupon_redemptions.insert().values(
                        coupon_id=row.id,
                        workspace_id=workspace_id,
                        user_id=actor.user_id,
                        status=status,
                        created_at=now,
                    )
                )
        except IntegrityError:
            raise conflict("This workspace has redeemed this coupon already.", "code") from None
        counted = await conn.execute(
            update(coupons)
            .where(
                coupons.c.id == row.id,
                or_(
                    coupons.c.max_redemptions.is_(None),
                    coupons.c.redemptions < coupons.c.max_redemptions,
                ),
            )
            .values(redemptions=coupons.c.redemptions + 1)
        )
        if counted.rowcount != 1:
            raise conflict("This coupon has been fully redeemed.", "code")
        if row.kind == "credits":
            await money.add_entry(
                conn,
                effects.moves,
                workspace_id,
                "coupon",
                row.credits_micros or 0,
                f"coupon:{row.id}:{workspace_id}",
                f"coupon {row.code}",
                actor.audit_id,
            )
        elif subscribed:
            sub_id, stripe_coupon = acc.subscription_id, row.stripe_coupon_id

            async def apply_discount() -> None:
                await billing.stripe.update_subscription(
                    sub_id, {"discounts": [{"coupon": stripe_coupon}]}
                )

            effects.later.append(apply_discount)
        await audit.record(
            conn,
            actor,
            "coupon.redeem",
            workspace_id=workspace_id,
            target_type="coupon",
            target_id=row.id,
            after={"code": row.code, "kind": row.kind, "status": status},
        )
    await billing.commit(effects)
    return {
        "object": "coupon_redemption",
        "coupon": view(row) | {"redemptions": None},
        "status": status,
    }


async def pending_discount(
    conn: AsyncConnection, workspace_id: str, plan_id: str
) -> tuple[str, str] | None:
    """A discount redeemed for the workspace's next Checkout: (coupon id, Stripe coupon)."""
    rows = (
        await conn.execute(
            select(coupons.c.id, coupons.c.stripe_coupon_id, coupons.c.plans)
            .join(coupon_redemptions, coupon_redemptions.c.coupon_id == coupons.c.id)
            .where(
                coupon_redemptions.c.workspace_id == workspace_id,
                coupon_redemptions.c.status == "pending",
                coupons.c.disabled_at.is_(None),
            )
        )
    ).all()
    for row in rows:
        if row.stripe_coupon_id and (not row.plans or plan_id in row.plans):
            return row.id, row.stripe_coupon_id
    return None


async def mark_used(conn: AsyncConnection, workspace_id: str, coupon_id: str | None) -> None:
    if coupon_id:
        await conn.execute(
            update(coupon_redemptions)
            .where(
                coupon_redemptions.c.coupon_id == coupon_id,
                coupon_redemptions.c.workspace_id == workspace_id,
            )
            .values(status="applied")
        )
