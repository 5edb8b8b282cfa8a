"""Counters in Redis, shared by every gateway instance: one script call per admission.

Every call is bounded (short socket timeouts and an overall deadline) and any failure becomes
`BackendUnavailable`, for the engine to apply its fail-open or fail-closed policy: a limits
check never hangs on Redis. Admissions of one workspace that arrive while another is in
flight share the next call, and settlements wait up to `SETTLE_LINGER` to share theirs
(coalesce.py): under load, a fraction of a round trip per request.

An admission whose settlement will change a counter leaves a ticket, which its settlement
removes and needs: a settlement sent again because its reply was lost is applied once.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Sequence
from typing import Any

from perpetuo.limits import lua
from perpetuo.limits.backend import (
    UNLIMITED,
    BackendUnavailable,
    Check,
    Kind,
    Reservation,
    Settlement,
    slot_of,
)
from perpetuo.limits.coalesce import Coalescer
from perpetuo.limits.leases import Leases
from perpetuo.limits.resp import ReplyError, RespClient

PREFIX = "perpetuo:lim:"
SOCKET_TIMEOUT = 0.25  # seconds to connect, and for Redis to start answering a command
DEADLINE = 0.5  # seconds, for a whole call
SCRIPTS = {
    "reserve": lua.RESERVE,
    "settle": lua.SETTLE,
    "add": lua.ADD_TO_WINDOW,
    "lease": lua.LEASE,
}
SHAS = {
    name: hashlib.sha1(text.encode(), usedforsecurity=False).hexdigest()
    for name, text in SCRIPTS.items()
}
SETTLE_LINGER = 0.005  # seconds a settlement waits for others to share its call
MAX_BATCH = 64  # requests per script call
TICKET_MS = 3_600_000  # a settlement reaching Redis later than this after admission is skipped

Reserving = tuple[Sequence[Check], str, int]  # checks, request id, now (ms)
Settling = tuple[Sequence[Settlement], str, int, bool]  # items, request id, now, forwarded


class RedisBackend:
    name = "redis"

    def __init__(
        self,
        url: str,
        *,
        socket_timeout: float = SOCKET_TIMEOUT,
        deadline: float = DEADLINE,
        leases: bool = True,
    ) -> None:
        self.url = url
        # Far from its limits, a counter is checked on this instance's leases (leases.py).
        self.leases = Leases(self._send_leases) if leases else None
        self._deadline = deadline
        # One pipelined connection (resp.py says why not redis-py on this path).
        self._client = RespClient(url, connect_timeout=socket_timeout, reply_timeout=socket_timeout)
        self._loaded = False
        self._loading = asyncio.Lock()
        # A caller waits at most the deadline (plus the settlement linger), in a batch or not:
        # a call sent from the caller's own task is bounded by `_call`, a queued one here.
        bound = deadline + SETTLE_LINGER
        self._reserves: Coalescer[Reserving, list[int]] = Coalescer(
            self._send_reserves, max_batch=MAX_BATCH, wait_bound=bound
        )
        self._settles: Coalescer[Settling, list[tuple[int, int]]] = Coalescer(
            self._send_settles, max_batch=MAX_BATCH, linger=SETTLE_LINGER, wait_bound=bound
        )

    async def _load_scripts(self) -> None:
        """Load the scripts before the first EVALSHA, so a burst of first requests does not
        meet NOSCRIPT at once."""
        async with self._loading:
            if not self._loaded:
                for text in SCRIPTS.values():
                    await self._client.execute("SCRIPT", "LOAD", text)
                self._loaded = True

    async def _call(self, script: str, keys: list[str], args: list[Any]) -> Any:
        try:
            async with asyncio.timeout(self._deadline):
                if not self._loaded:
                    await self._load_scripts()
                try:
                    return await self._client.execute(
                        "EVALSHA", SHAS[script], len(keys), *keys, *args
                    )
                except ReplyError as exc:
                    if not str(exc).startswith("NOSCRIPT"):
                        raise
                    # Redis lost its scripts (restarted, flushed): EVAL loads it again.
                    return await self._client.execute(
                        "EVAL", SCRIPTS[script], len(keys), *keys, *args
                    )
        except Exception as exc:  # any Redis trouble: the engine's policy decides
            raise BackendUnavailable(f"{type(exc).__name__}: {exc}") from exc

    async def start(self) -> None:
        """Connect and load the scripts ahead of the first request (a failure is not fatal:
        the first requests retry it, under the failure policy)."""
        try:
            async with asyncio.timeout(self._deadline * 4):
                await self._load_scripts()
        except Exception as exc:
            raise BackendUnavailable(f"{type(exc).__name__}: {exc}") from exc

    async def reserve(self, checks: Sequence[Check], request_id: str, now_ms: int) -> Reservation:
        leases = self.leases
        if leases is None:
            return await self._reserve(checks, request_id, now_ms)
        local = leases.admit(checks, request_id, now_ms)
        if local is not None:
            return local
        result = await self._reserve(checks, request_id, now_ms)
        if result.refused:
            refusing = [checks[index].key for index, _, _ in result.refused]
            if leases.holding(refusing):  # its own room first: one instance alone is exact
                await leases.give_back(refusing)
                result = await self._reserve(checks, request_id, now_ms)
        if result.admitted:
            leases.want(checks, result.states, now_ms)
        return result

    async def _reserve(self, checks: Sequence[Check], request_id: str, now_ms: int) -> Reservation:
        call = self._reserves.call(_slot(checks), (checks, request_id, now_ms))
        reply = await self._bounded(call)
        status, rest = reply[0], reply[1:]
        if status == 0:
            return Reservation(missing=[i - 1 for i in rest])
        if status == 1:
            triples = range(0, len(rest), 3)
            return Reservation(refused=[(rest[j] - 1, rest[j + 1], rest[j + 2]) for j in triples])
        states = [(rest[j], rest[j + 1]) for j in range(0, len(rest), 2)]
        for index, check in enumerate(checks):
            if check.kind is Kind.WINDOW and check.limit == UNLIMITED:
                states[index] = (UNLIMITED, 0)
        return Reservation(states=states)

    async def settle(
        self, items: Sequence[Settlement], request_id: str, now_ms: int
    ) -> list[tuple[int, int]]:
        if self.leases is not None and self.leases.settle(items, request_id, now_ms):
            return []  # admitted on leases: sent with their renewals (no alerts on them)
        return await self._settle(items, request_id, now_ms, forwarded=False)

    async def forward(
        self, items: Sequence[Settlement], request_id: str, settled_ms: int
    ) -> list[tuple[int, int]]:
        """Usage of a request this instance admitted by its own counters while Redis was away
        (WINDOW items: budgets, token quotas, credits), added once per request, and only to
        counters that existed before `settled_ms`: one created later was seeded from the
        request log, which has the request. Returns the alerts crossed, as `settle` does."""
        return await self._settle(items, request_id, settled_ms, forwarded=True)

    async def _settle(
        self, items: Sequence[Settlement], request_id: str, now_ms: int, *, forwarded: bool
    ) -> list[tuple[int, int]]:
        if not items:
            return []
        call = self._settles.call(_slot(items), (items, request_id, now_ms, forwarded))
        return await self._bounded(call)

    async def _bounded(self, call: Any) -> Any:
        """The call's result; any failure, a timeout included, as BackendUnavailable."""
        try:
            return await call
        except BackendUnavailable:
            raise
        except Exception as exc:
            raise BackendUnavailable(f"{type(exc).__name__}: {exc}") from exc

    async def _send_reserves(self, batch: list[Reserving]) -> list[list[int]]:
        keys: list[str] = [_tickets(batch[0][0])]
        args: list[Any] = []
        for checks, request_id, now_ms in batch:
            ticket = TICKET_MS if any(check.settled for check in checks) else 0
            args += [request_id, now_ms, len(checks), ticket]
            for check in checks:
                keys.append(PREFIX + check.key)
                if check.kind is Kind.WINDOW and check.seedable:
                    seed = "?" if check.seed is None else str(check.seed)
                else:
                    seed = "-"
                args += [int(check.kind), check.limit, check.amount, check.ttl_ms]
                args += [check.hold_ms, seed]
        reply = [int(v) for v in await self._call("reserve", keys, args)]
        replies, at = [], 0
        for _ in batch:
            length = reply[at]
            replies.append(reply[at + 1 : at + 1 + length])
            at += 1 + length
        return replies

    async def _send_settles(self, batch: list[Settling]) -> list[list[tuple[int, int]]]:
        keys: list[str] = [_tickets(batch[0][0])]
        args: list[Any] = []
        for items, request_id, now_ms, forwarded in batch:
            # Freeing a slot alone (release) is harmless twice and leaves the ticket.
            ticketed = any(item.kind is not Kind.SLOTS for item in items)
            args += [request_id, now_ms, len(items), 2 if forwarded else int(ticketed)]
            for item in items:
                keys.append(PREFIX + item.key)
                alert = "-" if item.alert_at is None else item.alert_at
                args += [int(item.kind), item.limit, item.value, alert, max(1, item.alert_ttl_ms)]
        fired = [int(v) for v in await self._call("settle", keys, args)]
        per_request: list[list[tuple[int, int]]] = [[] for _ in batch]
        for j in range(0, len(fired), 3):
            per_request[fired[j] - 1].append((fired[j + 1] - 1, fired[j + 2]))
        return per_request

    async def add_to_window(self, key: str, delta: int) -> None:
        await self._call("add", [PREFIX + key], [delta])

    async def peek_window(self, key: str, now_ms: int) -> tuple[int, int] | None:
        # Holds past their expiry are only swept by RESERVE; a read may count them (briefly).
        try:
            async with asyncio.timeout(self._deadline):
                settled, held = await self._client.execute("HMGET", PREFIX + key, "s", "h")
        except Exception as exc:
            raise BackendUnavailable(f"{type(exc).__name__}: {exc}") from exc
        if settled is None:
            return None
        if self.leases is not None:
            return self.leases.adjust(key, int(settled), int(held or 0))
        return int(settled), int(held or 0)

    async def _send_leases(self, keys: list[str], args: list[Any]) -> list[int]:
        return [int(v) for v in await self._call("lease", [PREFIX + k for k in keys], args)]

    async def aclose(self) -> None:
        if self.leases is not None:
            await self.leases.aclose()
        self._reserves.cancel()
        self._settles.cancel()
        await self._client.aclose()
        self._loaded = False


def _tickets(entries: Sequence[Check] | Sequence[Settlement]) -> str:
    """The zset of admitted requests whose settlement is still to come, one per workspace."""
    return f"{PREFIX}{_slot(entries)}}}:tickets"


def _slot(entries: Sequence[Check] | Sequence[Settlement]) -> str:
    """The `{workspace}` hash tag all of a request's counters share: calls are batched only
    within it, so a batch never spans Redis Cluster slots."""
    return slot_of(entries[0].key)
