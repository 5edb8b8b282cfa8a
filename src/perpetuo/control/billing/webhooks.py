"""Receiving Stripe's webhooks: verify, claim the event id, apply, all or nothing.

- The signature and its timestamp are checked by the `stripe` library
  (`stripe.Webhook.construct_event`) with the endpoint's signing secret: a forged body or one
  older than the tolerance is refused with 400 and changes nothing.
- The event id is inserted into `stripe_events` in the transaction that applies the event.
  A replay, or a duplicate delivered at the same moment to another instance, finds the id
  taken (on PostgreSQL the second insert waits for the first transaction, then sees its row)
  and is answered 200 without doing anything again. If applying fails the transaction rolls
  back, the id with it, and Stripe's retry applies the event later.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import select

from perpetuo.control.billing.events import HANDLERS, Context
from perpetuo.control.billing.service import Billing, Effects
from perpetuo.control.billing.stripe_api import stripe_library
from perpetuo.schema.errors import ErrorType, GatewayError
from perpetuo.store.billing_tables import stripe_events
from perpetuo.store.timeutil import utcnow

log = logging.getLogger("perpetuo.billing")


def bad_signature(message: str) -> GatewayError:
    return GatewayError(
        400, message, type=ErrorType.INVALID_REQUEST, code="invalid_signature", param=None
    )


async def receive(billing: Billing, payload: bytes, signature: str | None) -> dict[str, Any]:
    """Handle one delivery; what to answer Stripe (which retries anything but a 2xx)."""
    if not signature:
        raise bad_signature("The Stripe-Signature header is missing.")
    try:
        event = billing.stripe.verify(payload, signature)
    except stripe_library().SignatureVerificationError:
        raise bad_signature("The signature does not match, or is too old.") from None
    except ValueError:
        raise bad_signature("The body is not a Stripe event.") from None
    if not isinstance(event, dict) or not isinstance(event.get("id"), str):
        raise bad_signature("The body is not a Stripe event.")
    return await apply(billing, event)


async def apply(billing: Billing, event: dict[str, Any]) -> dict[str, Any]:
    """Apply a verified event once."""
    handler = HANDLERS.get(str(event.get("type")))
    async with billing.db.connect() as conn:  # a replay needs no calls to Stripe
        seen = await conn.scalar(
            select(stripe_events.c.id).where(stripe_events.c.id == event["id"])
        )
    if seen is not None:
        return {"received": True, "duplicate": True}
    prepared = await handler[0](billing, event) if handler is not None else {}
    effects = Effects()
    async with billing.db.begin() as conn:
        claimed = await conn.execute(
            conn.insert(stripe_events)
            .values(
                id=event["id"][:80],
                type=str(event.get("type"))[:80],
                created=int(event.get("created") or 0),
                received_at=utcnow(),
            )
            .on_conflict_do_nothing(index_elements=["id"])
        )
        if claimed.rowcount != 1:
            return {"received": True, "duplicate": True}
        workspace_id = None
        if handler is not None:
            workspace_id = await handler[1](Context(conn, billing, effects, event), prepared)
        if workspace_id is not None:
            await conn.execute(
                stripe_events.update()
                .where(stripe_events.c.id == event["id"][:80])
                .values(workspace_id=workspace_id)
            )
    await billing.commit(effects)
    return {"received": True, "duplicate": False}
