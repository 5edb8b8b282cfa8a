"""The calls billing makes to Stripe, through the `stripe` library's StripeClient.

The library's HTTP client is synchronous; each call runs in a worker thread so the event loop
never waits on Stripe. Calls that move money carry an idempotency key, so a retry (ours or the
library's) can never charge twice. Objects come back as plain dicts.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from types import ModuleType
from typing import Any
from urllib.parse import urlsplit

from perpetuo.schema.errors import ErrorType, GatewayError


def stripe_library() -> ModuleType:
    """The `stripe` library, imported on first use: a server that sells nothing never loads it
    (about a third of a second of start-up and its memory)."""
    import stripe

    return stripe


class PaymentDeclined(Exception):
    """An off-session charge the card refused (the message is Stripe's, for people)."""


def as_dict(obj: Any) -> dict[str, Any]:
    """A StripeObject as plain JSON data."""
    if obj is None:
        return {}
    return json.loads(str(obj)) if not isinstance(obj, dict) else obj


def stripe_unavailable() -> GatewayError:
    # Never Stripe's raw message: it can name the account or the request.
    return GatewayError(
        502,
        "The payment provider could not be reached or refused the request; try again.",
        type=ErrorType.UPSTREAM,
        code="payment_provider_error",
    )


class StripeAPI:
    def __init__(
        self,
        secret_key: str,
        webhook_secret: str,
        *,
        api_base: str | None = None,
        tolerance: int = 300,
    ) -> None:
        # base_addresses is the per-client form of `stripe.api_base`: no global state.
        self.client = stripe_library().StripeClient(
            secret_key,
            base_addresses={"api": api_base} if api_base else None,
            max_network_retries=2,
        )
        self.webhook_secret = webhook_secret
        self.tolerance = tolerance
        # Where Checkout and the portal live: the dashboard's forms may lead there. A
        # stand-in API (Stripe's mock, a test double) serves its own hosted pages.
        self.hosted_origins = ["https://checkout.stripe.com", "https://billing.stripe.com"]
        if api_base:
            parts = urlsplit(api_base)
            self.hosted_origins.append(f"{parts.scheme}://{parts.netloc}")

    def verify(self, payload: bytes, signature: str) -> dict[str, Any]:
        """The event, if the signature is Stripe's and recent; raises
        stripe.SignatureVerificationError (forged or stale) or ValueError (not JSON)."""
        stripe_library().Webhook.construct_event(
            payload, signature, self.webhook_secret, tolerance=self.tolerance
        )
        return json.loads(payload)

    async def _run(self, call: Callable[[], Any]) -> dict[str, Any]:
        try:
            return as_dict(await asyncio.to_thread(call))
        except stripe_library().CardError as exc:
            raise PaymentDeclined(exc.user_message or "the card was declined") from exc
        except stripe_library().StripeError as exc:
            raise stripe_unavailable() from exc

    # -- customers and sessions -------------------------------------------------------------

    async def create_customer(self, workspace_id: str, email: str | None, name: str) -> str:
        params: dict[str, Any] = {"name": name, "metadata": {"workspace_id": workspace_id}}
        if email:
            params["email"] = email
        customer = await self._run(
            lambda: self.client.v1.customers.create(
                params, {"idempotency_key": f"customer:{workspace_id}"}
            )
        )
        return customer["id"]

    async def retrieve_customer(self, customer_id: str) -> dict[str, Any]:
        return await self._run(lambda: self.client.v1.customers.retrieve(customer_id))

    async def checkout(self, params: dict[str, Any]) -> dict[str, Any]:
        return await self._run(lambda: self.client.v1.checkout.sessions.create(params))

    async def portal(self, customer_id: str, return_url: str) -> dict[str, Any]:
        params = {"customer": customer_id, "return_url": return_url}
        return await self._run(lambda: self.client.v1.billing_portal.sessions.create(params))

    # -- subscriptions ----------------------------------------------------------------------

    async def subscription(self, subscription_id: str) -> dict[str, Any]:
        return await self._run(lambda: self.client.v1.subscriptions.retrieve(subscription_id))

    async def update_subscription(
        self, subscription_id: str, params: dict[str, Any]
    ) -> dict[str, Any]:
        return await self._run(lambda: self.client.v1.subscriptions.update(subscription_id, params))

    # -- catalog ----------------------------------------------------------------------------

    async def prices_by_lookup_key(self, keys: list[str]) -> list[dict[str, Any]]:
        found = await self._run(
            lambda: self.client.v1.prices.list({"lookup_keys": keys, "limit": 100})
        )
        return list(found.get("data", []))

    async def create_price(self, product: dict[str, Any], price: dict[str, Any]) -> dict[str, Any]:
        made = await self._run(
            lambda: (
                self.client.v1.products.create(
                    product, {"idempotency_key": f"product:{product['id']}"}
                )
                if not self._product_exists(product["id"])
                else {"id": product["id"]}
            )
        )
        params = {**price, "product": made["id"]}
        return await self._run(
            lambda: self.client.v1.prices.create(
                params, {"idempotency_key": f"price:{price['lookup_key']}"}
            )
        )

    def _product_exists(self, product_id: str) -> bool:
        try:
            self.client.v1.products.retrieve(product_id)
            return True
        except stripe_library().InvalidRequestError:
            return False

    async def create_coupon(self, params: dict[str, Any]) -> str:
        made = await self._run(lambda: self.client.v1.coupons.create(params))
        return made["id"]

    # -- payments ---------------------------------------------------------------------------

    async def charge_off_session(
        self,
        customer_id: str,
        amount_cents: int,
        metadata: dict[str, str],
        idempotency_key: str,
    ) -> dict[str, Any]:
        """Charge the customer's saved card without them present; PaymentDeclined if refused."""
        customer = await self.retrieve_customer(customer_id)
        method = (customer.get("invoice_settings") or {}).get("default_payment_method")
        if not method:
            methods = await self._run(
                lambda: self.client.v1.payment_methods.list(
                    {"customer": customer_id, "type": "card", "limit": 1}
                )
            )
            data = methods.get("data") or []
            if not data:
                raise PaymentDeclined("no saved card")
            method = data[0]["id"]
        params = {
            "amount": amount_cents,
            "currency": "usd",
            "customer": customer_id,
            "payment_method": method,
            "off_session": True,
            "confirm": True,
            "metadata": metadata,
            "description": metadata.get("description", "Credit recharge"),
        }
        return await self._run(
            lambda: self.client.v1.payment_intents.create(
                params, {"idempotency_key": idempotency_key}
            )
        )

    async def payment_intent(self, payment_intent_id: str) -> dict[str, Any]:
        return await self._run(lambda: self.client.v1.payment_intents.retrieve(payment_intent_id))

    async def fingerprint(self, payment_method_id: str | None) -> str | None:
        if not payment_method_id:
            return None
        method = await self._run(lambda: self.client.v1.payment_methods.retrieve(payment_method_id))
        return (method.get("card") or {}).get("fingerprint")

    async def invoice_payment_intent(self, invoice_id: str) -> str | None:
        """The PaymentIntent that paid an invoice (API versions since 2025 list invoice
        payments apart from the invoice)."""
        found = await self._run(
            lambda: self.client.v1.invoice_payments.list({"invoice": invoice_id, "limit": 10})
        )
        for item in found.get("data", []):
            payment = item.get("payment") or {}
            if item.get("status") == "paid" and payment.get("payment_intent"):
                return payment["payment_intent"]
        return None

    async def invoices(self, customer_id: str, limit: int) -> list[dict[str, Any]]:
        found = await self._run(
            lambda: self.client.v1.invoices.list({"customer": customer_id, "limit": limit})
        )
        return list(found.get("data", []))
