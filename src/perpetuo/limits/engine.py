"""The limits engine: admit a request against every limit, budget and credit that applies,
then settle it with what it really used.

    admission = await engine.admit(LimitRequest(...))   # GatewayError 429/402/503 if refused
    response.headers += admission.headers                # x-ratelimit-*
    ...call the provider...
    await admission.settle(actual_tokens, actual_cost_micros)

Admission reserves the request's estimate (tokens) and maximum cost (micro-USD) in every
scope at once, or nothing; settling replaces the reservations with the real figures
(refunding the difference) and frees the concurrency slot.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

from perpetuo.limits import gcra
from perpetuo.limits.alerts import AlertSender, budget_event
from perpetuo.limits.backend import BackendUnavailable, Check, Kind, LimitBackend, Settlement
from perpetuo.limits.guard import BackendGuard, FailurePolicy, LimitStats
from perpetuo.limits.history import NoHistory, UsageHistory, seed_value
from perpetuo.limits.ledger import CreditLedgerWriter
from perpetuo.limits.memory import MemoryBackend
from perpetuo.limits.planning import LimitRequest, Planned, credit_key, plan_checks
from perpetuo.limits.redis_backend import RedisBackend
from perpetuo.limits.refusals import limits_unavailable, ratelimit_headers, refusal, wait_seconds
from perpetuo.limits.retry import Pending, SettleRetries
from perpetuo.schema.errors import ErrorCode, GatewayError
from perpetuo.singleflight import SingleFlight

log = logging.getLogger("perpetuo.limits")

MAX_REQUEST_SECONDS = 900.0  # holds and concurrency slots of a request that never ends expire
CREDIT_REFRESH_SECONDS = 30.0  # memory backend: re-read credit balances this often
GRANT_RETRIES, GRANT_RETRY_SECONDS = 150, 2.0  # a grant reaches Redis if it is back in 5 min
FINAL_SETTLE_SECONDS = 2.0  # at stop, the most spent sending settlements still queued
_PAYMENT = (ErrorCode.BUDGET_EXCEEDED, ErrorCode.INSUFFICIENT_CREDITS)


class Admission:
    """An admitted request's reservations. `settle` once when it ends (use settle(0, 0) when
    the provider was never called successfully); `release` only frees the concurrency slot,
    for paths that cannot settle (the other reservations then expire on their own)."""

    __slots__ = ("_backend", "_done", "_engine", "_planned", "_released", "_request", "headers")

    def __init__(
        self,
        engine: LimitEngine | None,
        backend: LimitBackend | None,
        planned: list[Planned],
        request: LimitRequest | None,
        headers: list[tuple[str, str]],
    ) -> None:
        self._engine = engine
        self._backend = backend
        self._planned = planned
        self._request = request
        self._done = engine is None
        self._released = engine is None
        self.headers = headers

    async def settle(self, actual_tokens: int, actual_cost_micros: int) -> None:
        if self._done:
            return
        self._done = True
        assert self._engine is not None and self._request is not None
        items: list[Settlement] = []
        meaning: list[Planned] = []
        tokens, cost = max(0, actual_tokens), max(0, actual_cost_micros)
        for planned in self._planned:
            item = _settlement(planned, tokens, cost, self._released)
            if item is not None:
                items.append(item)
                meaning.append(planned)
        self._released = True
        await self._engine._settle(self._backend, items, meaning, self._request, cost)

    async def release(self) -> None:
        if self._released:
            return
        self._released = True
        assert self._engine is not None and self._request is not None
        items = [
            Settlement(Kind.SLOTS, p.check.key, p.check.limit, 0)
            for p in self._planned
            if p.check.kind is Kind.SLOTS
        ]
        await self._engine._settle(self._backend, items, [], self._request, 0)

    @property
    def settled(self) -> bool:
        return self._done


def _settlement(planned: Planned, tokens: int, cost: int, released: bool) -> Settlement | None:
    check = planned.check
    if check.kind is Kind.SLOTS:
        return None if released else Settlement(Kind.SLOTS, check.key, check.limit, 0)
    if check.kind is Kind.RATE:
        if planned.measure != "tokens":
            return None  # a request counts once whatever it used
        return Settlement(Kind.RATE, check.key, check.limit, tokens - check.amount)
    if planned.measure == "tokens":
        return Settlement(Kind.WINDOW, check.key, check.limit, tokens)
    alert_ttl = check.ttl_ms if planned.soft_micros is not None else 0
    return Settlement(Kind.WINDOW, check.key, check.limit, cost, planned.soft_micros, alert_ttl)


UNLIMITED_ADMISSION = Admission(None, None, [], None, [])


class LimitEngine:
    def __init__(
        self,
        backend: LimitBackend,
        *,
        fallback: MemoryBackend | None = None,
        failure_policy: FailurePolicy = "open",
        history: UsageHistory | None = None,
        ledger: CreditLedgerWriter | None = None,
        clock: Callable[[], float] = time.time,
        max_request_seconds: float = MAX_REQUEST_SECONDS,
        credit_refresh_seconds: float = CREDIT_REFRESH_SECONDS,
    ) -> None:
        self.stats = LimitStats()
        self.backend = backend
        if isinstance(backend, RedisBackend) and backend.leases is not None:
            backend.leases.clock = clock  # lease renewals between requests read it
        self.guard = BackendGuard(backend, fallback, failure_policy, self.stats)
        self.retries = SettleRetries(self.guard, self.stats, clock)
        self.history: UsageHistory = history or NoHistory()
        self.ledger = ledger
        self.alerts = AlertSender(self.stats)
        self.clock = clock
        self.max_request_seconds = max_request_seconds
        self.credit_refresh_seconds = credit_refresh_seconds
        self._seeds: SingleFlight[int] = SingleFlight()
        self._credit_refreshed: dict[str, float] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    async def admit(self, request: LimitRequest) -> Admission:
        """Reserve the request in every scope, or raise the GatewayError of the limit that
        refuses it (nothing stays reserved then)."""
        now = self.clock()
        planned = plan_checks(request, now, self.max_request_seconds)
        if not planned:
            return UNLIMITED_ADMISSION
        checks = [p.check for p in planned]
        now_ms = int(now * 1000)
        backend = self.guard.pick()
        for _ in range(3):  # a counter may need seeding; a retry may find another gone
            result, backend = await self.guard.run(
                backend, lambda b, c=checks: b.reserve(c, request.request_id, now_ms)
            )
            if not result.missing:
                break
            checks = await self._seeded(planned, checks, result.missing)
        else:
            raise limits_unavailable()
        self._maybe_refresh_credits(request, planned)  # also when refused: it may be stale
        if result.refused:
            self.stats.refused += 1
            raise self._refusal(planned, result.refused, now)
        if backend is self.guard.primary:
            self.stats.admitted_shared += 1
            self.stats.admitted_leased += result.leased
        return Admission(
            self, backend, planned, request, ratelimit_headers(planned, result.states, now)
        )

    async def credits_granted(self, workspace_id: str, micros: int) -> None:
        """A grant or adjustment was written to the ledger: move the live balance with it
        (a counter not yet started will read it from the ledger anyway)."""
        key = credit_key(workspace_id)
        if self.guard.fallback is not None:
            await self.guard.fallback.add_to_window(key, -micros)
        try:
            await self.guard.primary.add_to_window(key, -micros)
        except BackendUnavailable as exc:
            self.guard.failed(exc)
            self._background(self._retry_grant(key, micros))

    async def _retry_grant(self, key: str, micros: int) -> None:
        """The shared balance must not miss a paid grant: keep trying while Redis is away."""
        for _ in range(GRANT_RETRIES):
            await asyncio.sleep(GRANT_RETRY_SECONDS)
            try:
                await self.guard.primary.add_to_window(key, -micros)
                return
            except BackendUnavailable:
                continue
        log.error("limits: credit change of %d micro-USD not applied to %s", micros, key)

    async def window_state(self, key: str) -> tuple[int, int] | None:
        """A WINDOW counter's (settled, held) where it lives now, for showing balances; None
        when it does not exist or cannot be read (the caller falls back to the store)."""
        if self.guard.paused:  # Redis is known to be away: the store answers instead
            return None
        try:
            return await self.guard.primary.peek_window(key, int(self.clock() * 1000))
        except BackendUnavailable:
            return None

    async def start(self) -> None:
        """Connect to the shared backend and start writing credit usage to the ledger."""
        try:
            await self.guard.primary.start()
        except BackendUnavailable as exc:
            self.guard.failed(exc)
        if self.ledger is not None:
            await self.ledger.start()

    async def aclose(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await self.retries.aclose(FINAL_SETTLE_SECONDS)
        if self.ledger is not None:
            await self.ledger.aclose()
        await self.guard.primary.aclose()
        if self.guard.fallback is not None:
            await self.guard.fallback.aclose()

    # -- internals --------------------------------------------------------------------------

    async def _seeded(
        self, planned: list[Planned], checks: list[Check], missing: Sequence[int]
    ) -> list[Check]:
        checks = list(checks)
        for index in missing:
            source = planned[index].seed
            assert source is not None, "only seedable counters are reported missing"
            try:
                value = await self._seeds.run(
                    checks[index].key, lambda s=source: seed_value(self.history, s, self.ledger)
                )
            except Exception as exc:
                log.error("limits: cannot read usage history for %s: %s", checks[index].key, exc)
                raise limits_unavailable() from exc
            checks[index] = checks[index]._replace(seed=value)
        return checks

    def _refusal(
        self, planned: list[Planned], refused: list[tuple[int, int, int]], now: float
    ) -> GatewayError:
        """The most telling refusal: a budget or credits first (retrying will not help),
        else the limit that takes longest to clear."""

        def rank(entry: tuple[int, int, int]) -> tuple[bool, float]:
            index, wait_ms, _ = entry
            item = planned[index]
            wait = math.inf if wait_ms == gcra.NEVER else wait_seconds(item, wait_ms, now)
            return item.code in _PAYMENT, wait

        index, wait_ms, found = max(refused, key=rank)
        item = planned[index]
        return refusal(item, wait_ms, found, item.check.amount, now)

    async def _settle(
        self,
        backend: LimitBackend | None,
        items: list[Settlement],
        meaning: list[Planned],
        request: LimitRequest,
        cost: int,
    ) -> None:
        assert backend is not None
        if any(p.measure == "credits" for p in meaning) and self.ledger is not None and cost:
            self.ledger.deduct(request.workspace_id or "-", cost)
        if not items:
            return

        def fire(fired: list[tuple[int, int]]) -> None:
            for index, spent in fired:
                event = budget_event(
                    meaning[index], request.workspace_id, request.key_id, spent, self.clock()
                )
                self.alerts.fire(event)

        # While Redis is known to be down, do not make every ending request wait on it: the
        # settlement is queued, and sent (applied once) when Redis is tried again.
        if backend is self.guard.primary and self.guard.paused:
            self.retries.add(Pending(items, request.request_id, fire))
            return
        now_ms = int(self.clock() * 1000)
        try:
            fired = await backend.settle(items, request.request_id, now_ms)
        except BackendUnavailable as exc:
            self.guard.failed(exc)
            self.retries.add(Pending(items, request.request_id, fire))
            return
        fire(fired)
        if backend is self.guard.fallback and isinstance(self.guard.primary, RedisBackend):
            # Admitted by this instance's own counters while Redis was away: Redis's budgets,
            # quotas and credits get this usage too, once it answers. A threshold it crosses
            # there alerts once per window as any settlement's would (its flag is in Redis);
            # the local counters may have alerted for it during the outage too.
            picked = [i for i, item in enumerate(items) if item.kind is Kind.WINDOW and item.value]

            def fire_forwarded(fired: list[tuple[int, int]]) -> None:
                fire([(picked[index], spent) for index, spent in fired])

            if picked:
                usage = [items[i] for i in picked]
                self.retries.add(Pending(usage, request.request_id, fire_forwarded, now_ms))

    def _maybe_refresh_credits(self, request: LimitRequest, planned: list[Planned]) -> None:
        """Memory counters only: other instances' usage and grants reach this one's credit
        balance by re-reading the ledger now and then (Redis counters are shared already)."""
        primary = self.guard.primary
        if not isinstance(primary, MemoryBackend) or isinstance(self.history, NoHistory):
            return
        workspace_id = request.workspace_id
        if workspace_id is None or not any(p.measure == "credits" for p in planned):
            return
        now = time.monotonic()
        last = self._credit_refreshed.setdefault(workspace_id, now)
        if now - last < self.credit_refresh_seconds:
            return
        self._credit_refreshed[workspace_id] = now
        self._background(self._refresh_credits(primary, workspace_id))

    def _background(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _refresh_credits(self, backend: MemoryBackend, workspace_id: str) -> None:
        try:
            balance = await self.history.credit_balance(workspace_id)
        except Exception as exc:
            log.warning("limits: cannot refresh credits of %s: %s", workspace_id, exc)
            return
        unwritten = self.ledger.pending(workspace_id) if self.ledger else 0
        backend.replace_settled(credit_key(workspace_id), unwritten - balance)
