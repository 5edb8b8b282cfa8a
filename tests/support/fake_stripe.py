"""A local fake of Stripe's API for tests: the endpoints the `stripe` library calls for billing,
with the shapes of Stripe's API reference (version 2026-10-28), and webhook events signed
with Stripe's documented scheme (`Stripe-Signature: t=<unix time>,v1=<hex HMAC-SHA256 of
"<t>.<body>" keyed by the endpoint secret>`), so the gateway verifies them with the library.

What a customer does on Stripe's hosted pages is a method here (`complete_checkout`, `renew`,
`refund`, `dispute`), and a small HTML page for browser tests (`/pay/<session>`). Events are
queued in `outbox`; `deliver(http)` posts them (or a test takes them and posts them its own
way: reordered, duplicated, concurrently). With `webhook_url` set they are posted at once.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import re
import secrets
import threading
import time
from typing import Any

import httpx
from aiohttp import web

from tests.mocks.server import MockUpstream

SECRET = "whsec_test_fake_signing_secret"
DECLINE_OFF_SESSION = "4000000000000341"  # Stripe's test card: attaches, then charges fail
_ids = itertools.count(1)


def new_id(prefix: str) -> str:
    return f"{prefix}_{next(_ids):06d}{secrets.token_hex(4)}"


def sign(payload: bytes, secret: str = SECRET, at: int | None = None) -> str:
    stamp = int(time.time()) if at is None else at
    mac = hmac.new(secret.encode(), f"{stamp}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={stamp},v1={mac}"


def parse_form(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """Stripe's form encoding (`a[b][0][c]=v`) back into nested dicts and lists."""
    root: dict[str, Any] = {}
    for key, value in pairs:
        parts = re.findall(r"[^\[\]]+", key)
        node: Any = root
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            nxt: Any = value if last else ([] if parts[i + 1].isdigit() else {})
            if isinstance(node, list):
                index = int(part)
                while len(node) <= index:
                    node.append(None)
                if node[index] is None or last:
                    node[index] = nxt
                node = node[index]
            else:
                if part not in node or last:
                    node[part] = nxt
                node = node[part]
    return root


def _list(data: list[dict[str, Any]], url: str) -> dict[str, Any]:
    return {"object": "list", "data": data, "has_more": False, "url": url}


class StripeError(Exception):
    def __init__(self, status: int, kind: str, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.status, self.kind, self.message, self.code = status, kind, message, code


class FakeStripe(MockUpstream):
    def __init__(self, secret: str = SECRET, webhook_url: str | None = None) -> None:
        super().__init__()
        self.secret = secret
        self.webhook_url = webhook_url
        self.objects: dict[str, dict[str, Any]] = {}
        self.outbox: list[dict[str, Any]] = []  # events not yet delivered
        self.sent: list[dict[str, Any]] = []  # every event made
        self.calls: list[tuple[str, str, dict[str, Any]]] = []
        self._idempotent: dict[str, tuple[int, dict[str, Any]]] = {}
        self.lock = threading.RLock()
        self.clock: float | None = None  # fixed "now" when set

    # -- plumbing ----------------------------------------------------------------------------

    def now(self) -> int:
        return int(self.clock if self.clock is not None else time.time())

    def routes(self, app: web.Application) -> None:
        app.router.add_route("*", "/v1/{path:.*}", self._api)
        app.router.add_get("/pay/{session}", self._pay_page)
        app.router.add_post("/pay/{session}", self._pay_submit)
        app.router.add_get("/portal/{customer}", self._simple_page)
        app.router.add_get("/invoice/{invoice}", self._simple_page)

    async def _api(self, request: web.Request) -> web.Response:
        form = parse_form(list((await request.post()).items()))
        query = parse_form(list(request.query.items()))
        params = {**query, **form}
        key = request.headers.get("Idempotency-Key")
        path = request.match_info["path"]
        self.calls.append((request.method, path, params))
        with self.lock:
            if key and key in self._idempotent:
                status, body = self._idempotent[key]
                return web.json_response(body, status=status)
            try:
                status, body = 200, self.handle(request.method, path, params)
            except StripeError as exc:
                status = exc.status
                body = {"error": {"type": exc.kind, "message": exc.message, "code": exc.code}}
            if key:
                self._idempotent[key] = (status, body)
        self._flush()
        return web.json_response(body, status=status)

    def get(self, ident: str) -> dict[str, Any]:
        if ident not in self.objects:
            raise StripeError(
                404, "invalid_request_error", f"No such object: '{ident}'", "resource_missing"
            )
        return self.objects[ident]

    def put(self, obj: dict[str, Any]) -> dict[str, Any]:
        self.objects[obj["id"]] = obj
        return obj

    def emit(self, kind: str, obj: dict[str, Any]) -> dict[str, Any]:
        event = {
            "id": new_id("evt"),
            "object": "event",
            "api_version": "2026-10-28.endive",
            "created": self.now(),
            "data": {"object": json.loads(json.dumps(obj))},
            "livemode": False,
            "pending_webhooks": 1,
            "request": {"id": None, "idempotency_key": None},
            "type": kind,
        }
        self.outbox.append(event)
        self.sent.append(event)
        return event

    def signed(self, event: dict[str, Any], at: int | None = None) -> tuple[bytes, str]:
        payload = json.dumps(event).encode()
        return payload, sign(payload, self.secret, at)

    def take(self) -> list[dict[str, Any]]:
        with self.lock:
            events, self.outbox = self.outbox, []
        return events

    def _flush(self) -> None:
        if self.webhook_url is None:
            return
        for event in self.take():
            payload, signature = self.signed(event)
            threading.Thread(target=self._post, args=(payload, signature), daemon=True).start()

    def _post(self, payload: bytes, signature: str) -> None:
        httpx.post(
            self.webhook_url,
            content=payload,  # type: ignore[arg-type]
            headers={"stripe-signature": signature, "content-type": "application/json"},
            timeout=30,
        )

    async def deliver(self, http: Any, path: str = "/api/billing/stripe/webhook") -> list[Any]:
        """Post every queued event, in order, through `http` (an httpx.AsyncClient)."""
        answers = []
        for event in self.take():
            payload, signature = self.signed(event)
            answers.append(
                await http.post(path, content=payload, headers={"stripe-signature": signature})
            )
        return answers

    # -- the API -----------------------------------------------------------------------------

    def handle(self, method: str, path: str, p: dict[str, Any]) -> dict[str, Any]:
        parts = path.strip("/").split("/")
        name = parts[0] if parts[0] != "checkout" and parts[0] != "billing_portal" else path
        if method == "GET" and len(parts) == 2 and name not in ("checkout/sessions",):
            return self.get(parts[1])
        handler = {
            ("POST", "customers"): self.create_customer,
            ("POST", "checkout/sessions"): self.create_session,
            ("POST", "billing_portal/sessions"): self.create_portal,
            ("GET", "prices"): self.list_prices,
            ("POST", "prices"): self.create_price,
            ("POST", "products"): self.create_product,
            ("POST", "coupons"): self.create_coupon,
            ("POST", "payment_intents"): self.create_intent,
            ("GET", "payment_methods"): self.list_methods,
            ("GET", "invoices"): self.list_invoices,
            ("GET", "invoice_payments"): self.list_invoice_payments,
            ("POST", "refunds"): lambda q: self.refund(
                q["payment_intent"], int(q.get("amount") or 0) or None
            ),
        }.get((method, name))
        if handler is not None:
            return handler(p)
        if method == "POST" and parts[0] == "subscriptions" and len(parts) == 2:
            return self.update_subscription(parts[1], p)
        raise StripeError(404, "invalid_request_error", f"Unrecognized request URL ({path})")

    def create_customer(self, p: dict[str, Any]) -> dict[str, Any]:
        return self.put(
            {
                "id": new_id("cus"),
                "object": "customer",
                "email": p.get("email"),
                "name": p.get("name"),
                "metadata": p.get("metadata") or {},
                "invoice_settings": {"default_payment_method": None},
                "created": self.now(),
            }
        )

    def create_product(self, p: dict[str, Any]) -> dict[str, Any]:
        return self.put(
            {
                "id": p.get("id") or new_id("prod"),
                "object": "product",
                "name": p.get("name"),
                "active": True,
            }
        )

    def create_price(self, p: dict[str, Any]) -> dict[str, Any]:
        return self.put(
            {
                "id": new_id("price"),
                "object": "price",
                "product": p["product"],
                "currency": p.get("currency", "usd"),
                "unit_amount": int(p["unit_amount"]),
                "recurring": p.get("recurring"),
                "lookup_key": p.get("lookup_key"),
                "metadata": p.get("metadata") or {},
                "active": True,
            }
        )

    def list_prices(self, p: dict[str, Any]) -> dict[str, Any]:
        keys = set(p.get("lookup_keys") or [])
        found = [
            o
            for o in self.objects.values()
            if o["object"] == "price" and o.get("lookup_key") in keys
        ]
        return _list(found, "/v1/prices")

    def create_coupon(self, p: dict[str, Any]) -> dict[str, Any]:
        return self.put(
            {
                "id": new_id("coupon"),
                "object": "coupon",
                "percent_off": float(p["percent_off"]) if "percent_off" in p else None,
                "amount_off": int(p["amount_off"]) if "amount_off" in p else None,
                "duration": p.get("duration", "once"),
                "name": p.get("name"),
            }
        )

    def create_session(self, p: dict[str, Any]) -> dict[str, Any]:
        sid = new_id("cs_test")
        return self.put(
            {
                "id": sid,
                "object": "checkout.session",
                "mode": p["mode"],
                "status": "open",
                "payment_status": "unpaid",
                "customer": p.get("customer"),
                "client_reference_id": p.get("client_reference_id"),
                "metadata": p.get("metadata") or {},
                "url": f"{self.url}/pay/{sid}",
                "success_url": p.get("success_url"),
                "cancel_url": p.get("cancel_url"),
                "subscription": None,
                "payment_intent": None,
                "invoice": None,
                "amount_total": None,
                "currency": "usd",
                "created": self.now(),
                "_line_items": p.get("line_items") or [],
                "_discounts": p.get("discounts") or [],
                "_subscription_data": p.get("subscription_data") or {},
                "_payment_intent_data": p.get("payment_intent_data") or {},
            }
        )

    def create_portal(self, p: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": new_id("bps"),
            "object": "billing_portal.session",
            "customer": p["customer"],
            "return_url": p.get("return_url"),
            "url": f"{self.url}/portal/{p['customer']}",
        }

    def list_methods(self, p: dict[str, Any]) -> dict[str, Any]:
        found = [
            o
            for o in self.objects.values()
            if o["object"] == "payment_method" and o.get("customer") == p.get("customer")
        ]
        return _list(found, "/v1/payment_methods")

    def list_invoices(self, p: dict[str, Any]) -> dict[str, Any]:
        found = [
            o
            for o in self.objects.values()
            if o["object"] == "invoice" and o.get("customer") == p.get("customer")
        ]
        return _list(sorted(found, key=lambda o: o["created"], reverse=True), "/v1/invoices")

    def list_invoice_payments(self, p: dict[str, Any]) -> dict[str, Any]:
        found = [
            o
            for o in self.objects.values()
            if o["object"] == "invoice_payment" and o["invoice"] == p.get("invoice")
        ]
        return _list(found, "/v1/invoice_payments")

    # -- money ---------------------------------------------------------------------------------

    def card(self, customer: str, number: str = "4242424242424242") -> dict[str, Any]:
        fingerprint = hashlib.sha256(number.encode()).hexdigest()[:16]
        method = self.put(
            {
                "id": new_id("pm"),
                "object": "payment_method",
                "type": "card",
                "customer": customer,
                "_number": number,
                "card": {"brand": "visa", "last4": number[-4:], "fingerprint": fingerprint},
            }
        )
        self.get(customer)["invoice_settings"]["default_payment_method"] = method["id"]
        return method

    def charge(
        self,
        customer: str | None,
        method: str,
        amount: int,
        metadata: dict[str, Any],
        description: str | None = None,
    ) -> dict[str, Any]:
        intent = self.put(
            {
                "id": new_id("pi"),
                "object": "payment_intent",
                "amount": amount,
                "amount_received": amount,
                "currency": "usd",
                "customer": customer,
                "metadata": metadata,
                "payment_method": method,
                "status": "succeeded",
                "description": description,
                "last_payment_error": None,
                "created": self.now(),
            }
        )
        card = self.get(method)["card"]
        charge = self.put(
            {
                "id": new_id("ch"),
                "object": "charge",
                "amount": amount,
                "amount_refunded": 0,
                "refunded": False,
                "disputed": False,
                "customer": customer,
                "payment_intent": intent["id"],
                "payment_method": method,
                "status": "succeeded",
                "metadata": {},
                "payment_method_details": {"type": "card", "card": card},
            }
        )
        intent["latest_charge"] = charge["id"]
        return intent

    def create_intent(self, p: dict[str, Any]) -> dict[str, Any]:
        method = self.get(p["payment_method"])
        amount = int(p["amount"])
        if method["_number"] == DECLINE_OFF_SESSION and p.get("off_session") in ("true", True):
            failed = self.put(
                {
                    "id": new_id("pi"),
                    "object": "payment_intent",
                    "amount": amount,
                    "amount_received": 0,
                    "currency": "usd",
                    "customer": p.get("customer"),
                    "metadata": p.get("metadata") or {},
                    "payment_method": method["id"],
                    "status": "requires_payment_method",
                    "last_payment_error": {
                        "code": "card_declined",
                        "message": "Your card was declined.",
                    },
                }
            )
            self.emit("payment_intent.payment_failed", failed)
            raise StripeError(402, "card_error", "Your card was declined.", "card_declined")
        intent = self.charge(
            p.get("customer"), method["id"], amount, p.get("metadata") or {}, p.get("description")
        )
        self.emit("payment_intent.succeeded", intent)
        self.emit("charge.succeeded", self.get(intent["latest_charge"]))
        return intent

    def invoice(
        self,
        customer: str,
        lines: list[dict[str, Any]],
        reason: str,
        subscription: dict[str, Any] | None,
        discount: float = 0.0,
        pay: bool = True,
    ) -> dict[str, Any]:
        subtotal = sum(line["amount"] for line in lines)
        total = max(0, round(subtotal * (1 - discount)))
        iid = new_id("in")
        invoice = self.put(
            {
                "id": iid,
                "object": "invoice",
                "customer": customer,
                "status": "open",
                "subtotal": subtotal,
                "total": total,
                "amount_due": total,
                "amount_paid": 0,
                "attempt_count": 1,
                "billing_reason": reason,
                "created": self.now(),
                "number": f"FAKE-{next(_ids):04d}",
                "hosted_invoice_url": f"{self.url}/invoice/{iid}",
                "invoice_pdf": f"{self.url}/invoice/{iid}.pdf",
                "lines": _list(lines, "/lines"),
                "parent": {
                    "type": "subscription_details",
                    "subscription_details": {
                        "subscription": subscription["id"],
                        "metadata": subscription["metadata"],
                    },
                }
                if subscription
                else None,
            }
        )
        if not pay:
            self.emit("invoice.payment_failed", invoice)
            return invoice
        invoice.update(status="paid", amount_paid=total)
        if total > 0:
            method = self.get(customer)["invoice_settings"]["default_payment_method"]
            intent = self.charge(customer, method, total, {}, f"Invoice {invoice['number']}")
            self.put(
                {
                    "id": new_id("inpay"),
                    "object": "invoice_payment",
                    "invoice": iid,
                    "status": "paid",
                    "amount_paid": total,
                    "payment": {"type": "payment_intent", "payment_intent": intent["id"]},
                }
            )
            self.emit("payment_intent.succeeded", intent)
        self.emit("invoice.paid", invoice)
        return invoice

    def _line(self, price: dict[str, Any], amount: int) -> dict[str, Any]:
        return {
            "id": new_id("il"),
            "object": "line_item",
            "amount": amount,
            "pricing": {
                "type": "price_details",
                "price_details": {"price": price["id"], "product": price["product"]},
            },
        }

    def complete_checkout(self, session_id: str, number: str = "4242424242424242") -> None:
        with self.lock:
            self._complete(session_id, number)
        self._flush()

    def _complete(self, session_id: str, number: str) -> None:
        session = self.get(session_id)
        customer = session["customer"] or self.create_customer({})["id"]
        method = self.card(customer, number)
        session.update(status="complete", customer=customer)
        if session["mode"] == "subscription":
            price = self.get(session["_line_items"][0]["price"])
            data = session["_subscription_data"]
            trial_days = int(data.get("trial_period_days") or 0)
            start = self.now()
            end = start + (365 if price["recurring"]["interval"] == "year" else 30) * 86400
            discount = 0.0
            for entry in session["_discounts"]:
                coupon = self.get(entry["coupon"])
                discount = (coupon["percent_off"] or 0) / 100
            sub = self.put(
                {
                    "id": new_id("sub"),
                    "object": "subscription",
                    "customer": customer,
                    "status": "trialing" if trial_days else "active",
                    "metadata": data.get("metadata") or {},
                    "cancel_at_period_end": False,
                    "trial_end": start + trial_days * 86400 if trial_days else None,
                    "default_payment_method": method["id"],
                    "created": start,
                    "_discount": discount,
                    "items": _list(
                        [
                            {
                                "id": new_id("si"),
                                "object": "subscription_item",
                                "price": price,
                                "quantity": 1,
                                "current_period_start": start,
                                "current_period_end": start + trial_days * 86400
                                if trial_days
                                else end,
                            }
                        ],
                        "/items",
                    ),
                }
            )
            session.update(
                subscription=sub["id"],
                payment_status="paid" if not trial_days else "no_payment_required",
                amount_total=price["unit_amount"],
            )
            self.emit("checkout.session.completed", session)
            self.emit("customer.subscription.created", sub)
            amount = 0 if trial_days else price["unit_amount"]
            self.invoice(
                customer, [self._line(price, amount)], "subscription_create", sub, discount
            )
            return
        line = session["_line_items"][0]
        amount = int(line["price_data"]["unit_amount"])
        meta = (session["_payment_intent_data"] or {}).get("metadata") or {}
        intent = self.charge(customer, method["id"], amount, meta, "Prepaid credit")
        session.update(payment_intent=intent["id"], payment_status="paid", amount_total=amount)
        self.emit("checkout.session.completed", session)
        self.emit("payment_intent.succeeded", intent)

    def update_subscription(self, sub_id: str, p: dict[str, Any]) -> dict[str, Any]:
        sub = self.get(sub_id)
        item = sub["items"]["data"][0]
        invoice_lines = None
        if "items" in p:
            new_price, old_price = self.get(p["items"][0]["price"]), item["price"]
            now = self.now()
            span = max(1, item["current_period_end"] - item["current_period_start"])
            left = max(0.0, (item["current_period_end"] - now) / span)
            item["price"] = new_price
            invoice_lines = [
                self._line(old_price, -round(old_price["unit_amount"] * left)),
                self._line(new_price, round(new_price["unit_amount"] * left)),
            ]
        if "cancel_at_period_end" in p:
            sub["cancel_at_period_end"] = p["cancel_at_period_end"] in ("true", True)
        if "metadata" in p:
            sub["metadata"].update(p["metadata"])
        if p.get("trial_end") == "now" and sub["status"] == "trialing":
            sub.update(status="active", trial_end=self.now())
            self.emit("customer.subscription.updated", sub)
            self.invoice(
                sub["customer"],
                [self._line(item["price"], item["price"]["unit_amount"])],
                "subscription_cycle",
                sub,
            )
            return sub
        if "discounts" in p:
            sub["_discount"] = (self.get(p["discounts"][0]["coupon"])["percent_off"] or 0) / 100
        self.emit("customer.subscription.updated", sub)
        if invoice_lines and sum(line["amount"] for line in invoice_lines) > 0:
            self.invoice(sub["customer"], invoice_lines, "subscription_update", sub)
        return sub

    def renew(self, sub_id: str, *, pay: bool = True) -> dict[str, Any]:
        """The period ends: a canceling subscription ends, else Stripe bills the next one."""
        with self.lock:
            sub = self.get(sub_id)
            item = sub["items"]["data"][0]
            if sub["cancel_at_period_end"]:
                sub["status"] = "canceled"
                self.emit("customer.subscription.deleted", sub)
                result = sub
            else:
                length = item["current_period_end"] - item["current_period_start"]
                item["current_period_start"] = item["current_period_end"]
                item["current_period_end"] += max(length, 86400)
                sub["status"] = "active" if pay else "past_due"
                self.emit("customer.subscription.updated", sub)
                result = self.invoice(
                    sub["customer"],
                    [self._line(item["price"], item["price"]["unit_amount"])],
                    "subscription_cycle",
                    sub,
                    sub.get("_discount", 0.0),
                    pay,
                )
        self._flush()
        return result

    def refund(self, intent_id: str, amount: int | None = None) -> dict[str, Any]:
        intent = self.get(intent_id)
        charge = self.get(intent["latest_charge"])
        amount = amount or charge["amount"] - charge["amount_refunded"]
        charge["amount_refunded"] += amount
        charge["refunded"] = charge["amount_refunded"] >= charge["amount"]
        refund = self.put(
            {
                "id": new_id("re"),
                "object": "refund",
                "amount": amount,
                "charge": charge["id"],
                "payment_intent": intent_id,
                "status": "succeeded",
            }
        )
        self.emit("charge.refunded", charge)
        self._flush()
        return refund

    def dispute(self, intent_id: str, status: str = "needs_response") -> dict[str, Any]:
        intent = self.get(intent_id)
        charge = self.get(intent["latest_charge"])
        charge["disputed"] = True
        dispute = self.put(
            {
                "id": new_id("dp"),
                "object": "dispute",
                "amount": charge["amount"],
                "charge": charge["id"],
                "payment_intent": intent_id,
                "status": status,
                "reason": "fraudulent",
                "created": self.now(),
            }
        )
        kind = "charge.dispute.created" if status == "needs_response" else "charge.dispute.closed"
        self.emit(kind, dispute)
        self._flush()
        return dispute

    # -- hosted pages (browser tests) ----------------------------------------------------------

    async def _pay_page(self, request: web.Request) -> web.Response:
        session = self.get(request.match_info["session"])
        html = (
            f"<html><body><h1>Fake Stripe Checkout</h1><p>{session['mode']}</p>"
            f"<form method='post'><input name='card' value='4242424242424242'>"
            f"<button type='submit'>Pay</button></form></body></html>"
        )
        return web.Response(text=html, content_type="text/html")

    async def _pay_submit(self, request: web.Request) -> web.Response:
        form = await request.post()
        session_id = request.match_info["session"]
        self.complete_checkout(session_id, str(form.get("card") or "4242424242424242"))
        raise web.HTTPFound(self.get(session_id)["success_url"])

    async def _simple_page(self, request: web.Request) -> web.Response:
        return web.Response(
            text="<html><body>Fake Stripe page</body></html>", content_type="text/html"
        )
