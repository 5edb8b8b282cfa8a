"""Referrals: each person's code and link; a workspace that names a code is rewarded, and so
is the code's owner, when the workspace makes its first payment (never at sign-up, so empty
accounts earn nothing).

Refused, and recorded as refused with the reason: a referrer who is a member of the referred
workspace (self-referral), a first payment made with a card the referrer's own workspaces
have paid with, and rewards past the referrer's cap. The cap is counted under a lock on the
referrer's code row, so concurrent first payments cannot pass it.
"""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from perpetuo.control import audit
from perpetuo.control.access import require_role
from perpetuo.control.actor import Actor, Role
from perpetuo.control.billing import accounts, money
from perpetuo.control.errors import conflict, forbidden, invalid
from perpetuo.store.aio import AsyncConnection
from perpetuo.store.billing_tables import billing_payments, referral_codes, referrals
from perpetuo.store.schema import memberships, workspaces
from perpetuo.store.timeutil import iso, utcnow

if TYPE_CHECKING:
    from perpetuo.control.billing.events import Context
    from perpetuo.control.billing.money import Payment
    from perpetuo.control.billing.service import Billing

ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: codes are read aloud and typed


def _new_code() -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(8))


async def code_for(conn: AsyncConnection, user_id: str) -> str:
    found = await conn.scalar(
        select(referral_codes.c.code).where(referral_codes.c.user_id == user_id)
    )
    if found:
        return found
    for _ in range(5):
        code = _new_code()
        try:
            async with conn.begin_nested():
                await conn.execute(
                    referral_codes.insert().values(code=code, user_id=user_id, created_at=utcnow())
                )
            return code
        except IntegrityError:  # the person got one meanwhile, or (rarely) the code is taken
            found = await conn.scalar(
                select(referral_codes.c.code).where(referral_codes.c.user_id == user_id)
            )
            if found:
                return found
    raise RuntimeError("could not make a referral code")


def _enabled(billing: Billing) -> None:
    if not billing.config.referrals.enabled:
        raise forbidden("Referrals are not offered on this server.")


async def overview(billing: Billing, actor: Actor) -> dict[str, Any]:
    """The caller's code, link, and the workspaces they referred (status only)."""
    _enabled(billing)
    if actor.user_id is None:
        raise forbidden("Referral codes belong to people; sign in as one.")
    async with billing.db.begin() as conn:
        code = await code_for(conn, actor.user_id)
        rows = (
            await conn.execute(
                select(referrals)
                .where(referrals.c.referrer_id == actor.user_id)
                .order_by(referrals.c.created_at.desc())
                .limit(200)
            )
        ).all()
    cfg = billing.config.referrals
    return {
        "object": "referral_program",
        "code": code,
        "link": billing.link("/ui/signup", ref=code),
        "referrer_credits_usd": cfg.referrer_credits_usd,
        "referred_credits_usd": cfg.referred_credits_usd,
        "max_rewards": cfg.max_rewards_per_referrer,
        "rewarded": sum(1 for r in rows if r.status == "rewarded"),
        "referrals": [
            {
                "status": r.status,
                "reason": r.reason,
                "created_at": iso(r.created_at),
                "settled_at": iso(r.settled_at),
            }
            for r in rows
        ],
    }


async def attach(billing: Billing, actor: Actor, workspace_id: str, code: str) -> dict[str, Any]:
    """The workspace was referred by `code` (before its first payment, once)."""
    _enabled(billing)
    code = code.strip().upper()
    async with billing.db.begin() as conn:
        await require_role(conn, actor, workspace_id, Role.ADMIN)
        owner = await conn.scalar(
            select(referral_codes.c.user_id).where(referral_codes.c.code == code)
        )
        if owner is None:
            raise invalid("No such referral code.", "code")
        if await _is_member(conn, owner, workspace_id) or owner == actor.user_id:
            raise invalid("A workspace cannot be referred by its own members.", "code")
        acc = await accounts.account(conn, workspace_id)
        if acc.first_payment_at is not None:
            raise conflict("This workspace has paid already; referrals count before that.")
        try:
            async with conn.begin_nested():
                await conn.execute(
                    referrals.insert().values(
                        workspace_id=workspace_id,
                        referrer_id=owner,
                        code=code,
                        status="pending",
                        created_at=utcnow(),
                    )
                )
        except IntegrityError:
            raise conflict("This workspace was referred already.") from None
        await audit.record(
            conn,
            actor,
            "billing.referral_attach",
            workspace_id=workspace_id,
            target_type="referral",
            target_id=code,
        )
    return {"object": "referral", "workspace_id": workspace_id, "status": "pending"}


async def _is_member(conn: AsyncConnection, user_id: str, workspace_id: str) -> bool:
    found = await conn.scalar(
        select(memberships.c.role).where(
            memberships.c.user_id == user_id, memberships.c.workspace_id == workspace_id
        )
    )
    return found is not None


async def _refuse(conn: AsyncConnection, workspace_id: str, reason: str) -> None:
    await conn.execute(
        update(referrals)
        .where(referrals.c.workspace_id == workspace_id, referrals.c.status == "pending")
        .values(status="refused", reason=reason, settled_at=utcnow())
    )


async def on_first_payment(ctx: Context, payment: Payment) -> None:
    """Reward (or refuse) the workspace's pending referral; runs in the payment's transaction."""
    conn, billing = ctx.conn, ctx.billing
    workspace_id = payment.workspace_id
    ref = (
        await conn.execute(
            select(referrals).where(
                referrals.c.workspace_id == workspace_id, referrals.c.status == "pending"
            )
        )
    ).first()
    cfg = billing.config.referrals
    if ref is None or not cfg.enabled:
        return
    lock = select(referral_codes.c.code).where(referral_codes.c.user_id == ref.referrer_id)
    if conn.dialect.name == "postgresql":
        lock = lock.with_for_update()
    await conn.execute(lock)
    if await _is_member(conn, ref.referrer_id, workspace_id):
        return await _refuse(conn, workspace_id, "self_referral")
    theirs = select(memberships.c.workspace_id).where(memberships.c.user_id == ref.referrer_id)
    if payment.fingerprint:
        shared = await conn.scalar(
            select(billing_payments.c.id).where(
                billing_payments.c.workspace_id.in_(theirs),
                billing_payments.c.fingerprint == payment.fingerprint,
            )
        )
        if shared is not None:
            return await _refuse(conn, workspace_id, "same_payment_method")
    rewarded = await conn.scalar(
        select(func.count()).where(
            referrals.c.referrer_id == ref.referrer_id, referrals.c.status == "rewarded"
        )
    )
    if (rewarded or 0) >= cfg.max_rewards_per_referrer:
        return await _refuse(conn, workspace_id, "cap_reached")
    target = await conn.scalar(
        select(memberships.c.workspace_id)
        .join(workspaces, workspaces.c.id == memberships.c.workspace_id)
        .where(memberships.c.user_id == ref.referrer_id, memberships.c.role == "owner")
        .order_by(workspaces.c.created_at)
        .limit(1)
    )
    done = await conn.execute(
        update(referrals)
        .where(referrals.c.workspace_id == workspace_id, referrals.c.status == "pending")
        .values(status="rewarded", referrer_workspace_id=target, settled_at=utcnow())
    )
    if done.rowcount != 1:
        return
    moves = ctx.effects.moves
    micros = round(cfg.referred_credits_usd * 1_000_000)
    await money.add_entry(
        conn,
        moves,
        workspace_id,
        "referral",
        micros,
        f"referral:{workspace_id}:referred",
        "referral reward (referred)",
    )
    if target is not None:
        micros = round(cfg.referrer_credits_usd * 1_000_000)
        await money.add_entry(
            conn,
            moves,
            target,
            "referral",
            micros,
            f"referral:{workspace_id}:referrer",
            "referral reward (referrer)",
        )
