"""Selling credits and plans through Stripe: the plan catalog, Checkout and the customer
portal, webhooks (verified, applied once, in any order), trials, coupons, referrals and
automatic recharges. Off unless the config's `billing.enabled` is set with the Stripe keys in
the environment; see docs/billing.md.

Money is only ever a `credit_ledger` row with its Stripe reference; a balance is the
ledger's sum (control/billing/money.py says how that stays true).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from perpetuo.config.billing import BillingConfig
from perpetuo.control.billing.service import Billing
from perpetuo.control.billing.stripe_api import StripeAPI
from perpetuo.control.mail.config import base_url_of

if TYPE_CHECKING:
    from perpetuo.config import Settings
    from perpetuo.control.plane import ControlPlane

__all__ = ["Billing", "BillingNotConfigured", "build_billing"]


class BillingNotConfigured(ValueError):
    pass


def build_billing(config: BillingConfig, settings: Settings, plane: ControlPlane) -> Billing | None:
    """The billing service, or None when the operator sells nothing."""
    if not config.enabled:
        return None
    if settings.stripe_secret_key is None or settings.stripe_webhook_secret is None:
        raise BillingNotConfigured(
            "billing.enabled needs PERPETUO_STRIPE_SECRET_KEY and PERPETUO_STRIPE_WEBHOOK_SECRET"
        )
    stripe = StripeAPI(
        settings.stripe_secret_key.get_secret_value(),
        settings.stripe_webhook_secret.get_secret_value(),
        api_base=settings.stripe_api_base,
        tolerance=settings.stripe_webhook_tolerance,
    )
    return Billing(
        config,
        stripe,
        plane,
        worker_interval=settings.billing_interval,
        base_url=base_url_of(settings),
    )
