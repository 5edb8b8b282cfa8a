"""The billing service: what the control plane holds when the operator sells credits and plans.

`Billing` ties the config, the Stripe client, the catalog and the rest of the control plane
(database, mail, change notices, the limits engine's live balances) together. It exists only
when `billing.enabled` is set and the Stripe keys are given; everything else in this package
takes it as its first argument.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from perpetuo.config.billing import BillingConfig
from perpetuo.control.billing.catalog import Catalog
from perpetuo.control.billing.money import Moves
from perpetuo.control.billing.stripe_api import StripeAPI
from perpetuo.control.changes import WORKSPACE

if TYPE_CHECKING:
    from perpetuo.control.plane import ControlPlane

log = logging.getLogger("perpetuo.billing")


@dataclass
class Effects:
    """What a billing transaction did that others must hear of once it commits."""

    moves: Moves = field(default_factory=Moves)
    workspaces: set[str] = field(default_factory=set)  # settings changed: publish
    later: list[Callable[[], Awaitable[None]]] = field(default_factory=list)  # Stripe calls


class Billing:
    def __init__(
        self,
        config: BillingConfig,
        stripe: StripeAPI,
        plane: ControlPlane,
        *,
        worker_interval: float = 30.0,
        base_url: str = "",
    ) -> None:
        self.config = config
        self.stripe = stripe
        self.catalog = Catalog(config, stripe)
        self.plane = plane
        self.worker_interval = worker_interval
        self.base_url = base_url.rstrip("/")
        # Usage settled on this instance but not yet in the ledger (limits/ledger.py).
        self.pending_usage: Callable[[str], int] = lambda _workspace_id: 0
        self._worker: Any = None

    @property
    def db(self) -> Any:
        return self.plane.db

    def link(self, path: str, **query: str) -> str:
        """An absolute link into this server (Stripe refuses relative return addresses), with
        or without mail configured."""
        suffix = f"?{urlencode(query)}" if query else ""
        return f"{self.base_url or self.plane.mail.base_url}{path}{suffix}"

    async def commit(self, effects: Effects) -> None:
        """After the transaction: live balances move, instances re-read changed workspaces,
        Stripe calls that had to wait for the commit are made."""
        listener = self.plane.credit_listener
        if listener is not None:
            for workspace_id, micros in effects.moves.items:
                await listener(workspace_id, micros)
        for workspace_id in effects.workspaces:
            await self.plane.changes.publish(WORKSPACE, workspace_id)
        for call in effects.later:
            try:
                await call()
            except Exception as exc:  # the event is recorded; the follow-up is logged
                log.warning("billing follow-up failed: %s", exc)

    async def start(self) -> None:
        from perpetuo.control.billing.worker import BillingWorker

        if self._worker is None:
            self._worker = BillingWorker(self)
            self._worker.start()

    async def aclose(self) -> None:
        if self._worker is not None:
            await self._worker.stop()
            self._worker = None

    @property
    def worker(self) -> Any:
        return self._worker
