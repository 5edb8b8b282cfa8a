"""Leases: shares of a Redis counter that an instance admits requests against in process.

Checking a request in Redis costs a round trip and a script call. Far from a limit that
exactness buys nothing, so an instance takes a small share of a counter's room ahead of time,
as one more reservation in Redis, and admits requests against it without asking:

- A lease is a reservation like a request's: a WINDOW hold (it lapses after `LEASE_MS` unless
  renewed) or units added to a RATE meter. Every check on every instance counts it, so the
  instances together never admit past a limit.
- It is granted only far from the limit: at most 1/`SHARE` of the room left, and nothing
  below `MIN_REQUESTS` requests' worth. Near a limit requests are checked in Redis one by one,
  exactly as without leases.
- A lease is renewed when half of it is used, and `RENEW_AFTER_MS` after its last renewal
  (sized to twice the demand seen since), sending what the instance admitted and settled on
  it: every `FLUSH_SECONDS` the instance looks at the leases used since its last look (all of
  them every `FULL_LOOK_EVERY` looks), and renews what is due in one script call per
  workspace (of `MAX_PER_CALL` leases at most). A lease unused for `IDLE_LOOKS` full looks is
  given back.
- A request refused in Redis while this instance holds unused room on the refusing counter
  gives that room back and is checked again: one instance alone is exact.

What leases change, stated: a request may be refused while other instances hold unused
leases (one each per counter, each at most 1/`SHARE` of the room when granted); a
per-minute meter counts a lease's units when it is granted, so the requests admitted on them
reach it early; usage settled on a lease reaches Redis with its next renewal; response
headers show this instance's view of the room left. A renewal carries a sequence number, so
one sent again after its reply was lost is applied once. When Redis cannot be reached, no
lease admits anything after a failed renewal or past its validity (`LEASE_MS - SAFETY_MS`
from the renewal that granted it, less than the hold's own lifetime in Redis): requests are
checked in Redis and meet the failure policy. Counters with a budget alert are never leased:
the settlement that crosses the threshold in Redis fires it, once per window.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Awaitable, Callable, Collection, Sequence
from dataclasses import dataclass, field
from typing import Any

from perpetuo.limits.backend import UNLIMITED, Check, Kind, Reservation, Settlement, slot_of
from perpetuo.observability.log_limit import EveryMinute

log = logging.getLogger("perpetuo.limits")

SHARE = 16  # a lease takes at most 1/SHARE of a counter's room
MIN_REQUESTS = 8  # and is not granted below this many requests' worth
FLUSH_SECONDS = 0.5  # leases due for a renewal are looked for this often
LEASE_MS = 10_000  # a lease's hold in Redis lapses this long after its last renewal
SAFETY_MS = 2_000  # admissions on a lease stop this long before (clocks of instances differ)
RENEW_AFTER_MS = 3_000  # a lease in use is renewed at least this often (its usage sent)
FULL_LOOK_EVERY = 4  # every 4th look (2 s) is at every lease: lapsing, unused ones too
IDLE_LOOKS = 3  # a lease unused for this many full looks (6 s) is given back
REQUEST_MS = 900_000  # a request admitted on leases that never settles is forgotten after
MAX_PER_CALL = 256  # leases renewed in one script call
# Validity left when a lease is due: renewed RENEW_AFTER_MS after the renewal that granted it.
RENEWED_FOR_MS = LEASE_MS - SAFETY_MS - RENEW_AFTER_MS
FINAL_SECONDS = 1.0  # at stop, the most spent giving leases back

Send = Callable[[list[str], list[Any]], Awaitable[list[int]]]


@dataclass(slots=True, eq=False)
class _Lease:
    kind: Kind
    key: str
    limit: int
    unit: int  # the largest amount a request asked of it: leases are sized in these
    lives_until: int = 0  # ms: the counter's lifetime, from its checks
    granted: int = 0  # WINDOW: held in Redis; RATE: added to the meter
    taken: int = 0  # RATE: units admitted on the grant; WINDOW: held by requests in flight
    settled: int = 0  # usage settled on it and not yet sent (RATE: token corrections)
    since: int = 0  # ms: when the oldest of that usage was settled (0: none)
    demand: int = 0  # units asked of it since the last renewal, on it or in Redis
    used: bool = False  # asked since the last look
    quiet: int = 0  # full looks in a row it was not asked
    holds: dict[str, tuple[int, int]] = field(default_factory=dict)  # request -> amount, expiry
    valid_until: int = 0  # ms: no admission on it from then
    room: int = 0  # the counter's room beyond the lease at the last renewal (for headers)
    reset_ms: int = 0
    busy: asyncio.Future[None] | None = None  # a renewal in flight: no admission on it
    unsent: _Renewal | None = None  # a renewal that failed: sent again as it was

    def free(self) -> int:
        if self.kind is Kind.RATE:
            return self.granted - self.taken
        return self.granted - self.taken - self.settled

    def due(self, now_ms: int) -> bool:
        """Half used (or never granted), or its last renewal is old enough."""
        return 2 * self.free() <= self.granted or self.valid_until - now_ms < RENEWED_FOR_MS

    def take(self, check: Check, request_id: str, now_ms: int) -> tuple[int, int]:
        amount = check.amount
        self.limit = check.limit  # settings may have changed: renewals use the latest
        if check.ttl_ms:
            self.lives_until = now_ms + check.ttl_ms
        self.taken += amount
        self.demand += amount
        self.used = True
        if self.kind is Kind.WINDOW:
            self.holds[request_id] = (amount, now_ms + check.hold_ms)
            left = UNLIMITED if self.limit == UNLIMITED else self.room + self.free()
            return left, 0
        return self.room + self.free(), self.reset_ms

    def purge(self, now_ms: int) -> None:
        """Holds of requests that never settled lapse, as their holds in Redis would."""
        for request_id in [r for r, (_, expiry) in self.holds.items() if expiry <= now_ms]:
            self.taken -= self.holds.pop(request_id)[0]


@dataclass(slots=True)
class _Renewal:
    lease: _Lease
    args: list[Any]  # the lease's part of the script's arguments
    taken: int  # what the renewal accounts for, taken off once it is applied
    settled: int


class Leases:
    """This instance's leases on the counters of one Redis; `send` runs the LEASE script."""

    def __init__(self, send: Send, *, flush_seconds: float = FLUSH_SECONDS) -> None:
        self._send = send
        self.flush_seconds = flush_seconds
        self.lease_id = "lease:" + secrets.token_hex(8)  # this instance's, in every counter
        self._leases: dict[str, _Lease] = {}
        self._requests: dict[str, int] = {}  # admitted on leases, not settled -> forget at ms
        # Leases used since the last look: most looks need not go through thousands of them.
        self._touched: set[_Lease] = set()
        self._looks = 0
        self._seq = 0
        # The clock requests are checked by (the engine sets its own): renewals read it too,
        # so a lease whose only request is a long stream is renewed though nothing else comes.
        self.clock: Callable[[], float] = time.time
        self._now = 0  # ms: the latest time seen
        self._task: asyncio.Task[None] | None = None
        self._warnings = EveryMinute(log)

    # -- the request path: no awaiting ---------------------------------------------------

    def admit(self, checks: Sequence[Check], request_id: str, now_ms: int) -> Reservation | None:
        """The request admitted on this instance's leases, or None when one does not fit."""
        if now_ms > self._now:
            self._now = now_ms
        picked = []
        leases = self._leases
        for check in checks:
            lease = leases.get(check.key)
            if (
                lease is None
                or lease.busy is not None
                or lease.valid_until <= now_ms
                or lease.free() < check.amount
            ):
                return None
            picked.append(lease)
        pairs = zip(checks, picked, strict=True)
        states = [lease.take(check, request_id, now_ms) for check, lease in pairs]
        self._touched.update(picked)
        self._requests[request_id] = now_ms + REQUEST_MS
        return Reservation(states=states, leased=True)

    def settle(self, items: Sequence[Settlement], request_id: str, now_ms: int) -> bool:
        """Settle a request admitted on leases (False: it was not); sent with the renewals."""
        if self._requests.pop(request_id, None) is None:
            return False
        for item in items:
            lease = self._leases.get(item.key)
            if lease is None:
                continue  # given back, or its counter is gone: the request log has the usage
            if item.kind is Kind.WINDOW:
                hold = lease.holds.pop(request_id, None)
                if hold is not None:
                    lease.taken -= hold[0]
            lease.settled += item.value
            lease.since = lease.since or now_ms
            self._touched.add(lease)
        return True

    def want(self, checks: Sequence[Check], states: Sequence[tuple[int, int]], now_ms: int) -> None:
        """After a request was admitted in Redis: ask for leases on its counters when they
        have room for many requests (granted by the next renewal)."""
        if any(check.kind is Kind.SLOTS or check.alerting for check in checks):
            return  # such requests are always checked in Redis: leases would go unused
        for check, (remaining, _) in zip(checks, states, strict=True):
            lease = self._leases.get(check.key)
            if lease is not None:
                lease.demand += check.amount
                lease.used = True
                lease.limit, lease.unit = check.limit, max(lease.unit, check.amount)
            elif remaining == UNLIMITED or remaining >= SHARE * MIN_REQUESTS * check.amount:
                lease = _Lease(check.kind, check.key, check.limit, check.amount)
                lease.demand, lease.used = check.amount, True
                lease.lives_until = now_ms + check.ttl_ms if check.ttl_ms else 0
                self._leases[check.key] = lease
            if lease is not None:
                self._touched.add(lease)
        if self._task is None:
            self._task = asyncio.create_task(self._run())

    def holding(self, keys: Collection[str]) -> bool:
        """Whether this instance holds unused room on any of these counters."""
        return any((lease := self._leases.get(key)) and lease.free() > 0 for key in keys)

    def adjust(self, key: str, settled: int, held: int) -> tuple[int, int]:
        """A counter's (settled, held) as read in Redis, with this instance's unsent usage
        in it and its unused room out of it."""
        lease = self._leases.get(key)
        if lease is None or lease.kind is not Kind.WINDOW:
            return settled, held
        return settled + lease.settled, max(0, held - lease.granted + lease.taken)

    # -- renewals --------------------------------------------------------------------------

    async def give_back(self, keys: Collection[str]) -> None:
        """Give back the unused room on these counters now (before checking a request again)."""
        busy = [lease.busy for key in keys if (lease := self._leases.get(key)) and lease.busy]
        if busy:
            await asyncio.gather(*busy)
        await self.flush(give_back=keys)

    def _clock(self) -> int:
        self._now = max(self._now, int(self.clock() * 1000))
        return self._now

    async def flush(self, *, give_back: Collection[str] | None = None) -> None:
        """Send usage and renew the leases that need it (or give back those named)."""
        now = self._clock()
        full = False
        if give_back is not None:
            looking = [lease for key in give_back if (lease := self._leases.get(key))]
        else:
            self._looks += 1
            full = self._looks % FULL_LOOK_EVERY == 0
            looking = list(self._leases.values()) if full else list(self._touched)
            self._touched = set()
        due: list[_Renewal] = []
        for looked, lease in enumerate(looking):
            if looked % MAX_PER_CALL == MAX_PER_CALL - 1:
                await asyncio.sleep(0)  # thousands of leases: let requests run meanwhile
            if self._leases.get(lease.key) is not lease:
                continue  # dropped meanwhile
            if lease.busy is not None:
                self._touched.add(lease)  # looked at again next time
                continue
            if full:
                lease.purge(now)
                lease.quiet = 0 if lease.used else lease.quiet + 1
                lease.used = False
            idle = give_back is not None or lease.quiet >= IDLE_LOOKS
            if idle and not (lease.granted or lease.taken or lease.settled):
                self._drop(lease)
                continue
            if not (idle or lease.unsent or lease.due(now)):
                continue
            want = 0 if idle else max(MIN_REQUESTS * lease.unit, 2 * lease.demand)
            due.append(self._renewal(lease, want, now))
        by_slot: dict[str, list[_Renewal]] = {}
        for renewal in due:
            by_slot.setdefault(slot_of(renewal.lease.key), []).append(renewal)
        calls = [
            self._renew(group[at : at + MAX_PER_CALL], now)
            for group in by_slot.values()
            for at in range(0, len(group), MAX_PER_CALL)
        ]
        if calls:
            await asyncio.gather(*calls)

    def _renewal(self, lease: _Lease, want: int, now: int) -> _Renewal:
        lease.busy = asyncio.get_running_loop().create_future()
        if lease.unsent is not None:
            # Its reply may have been lost after Redis applied it: the same sequence number
            # makes it a no-op then, and what it accounted for is taken off either way.
            return lease.unsent
        self._seq += 1
        lease.demand = 0
        if lease.kind is Kind.RATE:  # the meter gets what was used, less the last grant
            used, need = lease.taken + lease.settled - lease.granted, 0
        else:  # the window gets what was settled; requests in flight stay held
            used, need = lease.settled, lease.taken
        ttl = max(0, lease.lives_until - now) if lease.lives_until else 0
        least = MIN_REQUESTS * lease.unit
        since = lease.since or now
        args = [self._seq, int(lease.kind), lease.limit, used, need, want, least, ttl, since]
        return _Renewal(lease, args, lease.taken, lease.settled)

    async def _renew(self, renewals: list[_Renewal], now: int) -> None:
        keys = [renewal.lease.key for renewal in renewals]
        args: list[Any] = [now, self.lease_id, LEASE_MS, SHARE]
        for renewal in renewals:
            args += renewal.args
        try:
            reply = await self._send(keys, args)
        except Exception as exc:  # Redis away: these leases admit nothing until renewed
            self._warnings.log(logging.WARNING, "renew", "limits: cannot renew leases: %s", exc)
            for renewal in renewals:
                renewal.lease.valid_until = 0
                renewal.lease.unsent = renewal
                self._done(renewal.lease)
                self._touched.add(renewal.lease)  # tried again at the next look
            return
        for at, renewal in enumerate(renewals):
            grant, room, reset_ms = reply[3 * at : 3 * at + 3]
            self._applied(renewal, grant, room, reset_ms, now)

    def _applied(self, renewal: _Renewal, grant: int, room: int, reset_ms: int, now: int) -> None:
        lease = renewal.lease
        lease.unsent = None
        self._done(lease)
        if lease.kind is Kind.RATE:
            lease.taken -= renewal.taken
        lease.settled -= renewal.settled
        # Usage settled while it was on its way is newer than the renewal's (earlier is safe).
        lease.since = now if lease.settled else 0
        lease.granted, lease.room, lease.reset_ms = max(0, grant), room, reset_ms
        lease.valid_until = now + LEASE_MS - SAFETY_MS
        gone = grant < 0  # the counter expired or was lost: the next request seeds it again
        if gone or not (lease.granted or lease.taken or lease.settled):
            self._drop(lease)

    def _drop(self, lease: _Lease) -> None:
        if self._leases.get(lease.key) is lease:
            del self._leases[lease.key]

    @staticmethod
    def _done(lease: _Lease) -> None:
        if lease.busy is not None:
            lease.busy.set_result(None)
            lease.busy = None

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.flush_seconds)
            try:
                await self.flush()
                self._forget(self._now)
            except Exception as exc:  # never let the renewals stop
                self._warnings.log(logging.ERROR, "loop", "limits: lease renewal failed: %s", exc)

    def _forget(self, now: int) -> None:
        stale = [rid for rid, until in self._requests.items() if until <= now]
        for request_id in stale:
            del self._requests[request_id]

    async def give_back_all(self) -> None:
        await self.give_back(list(self._leases))

    async def aclose(self) -> None:
        """Stop renewing, and give every lease back (briefly: they lapse anyway)."""
        if self._task is not None:
            self._task.cancel()
            self._task = None
        if self._leases:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(FINAL_SECONDS):
                    await self.give_back_all()
        self._leases.clear()
        self._requests.clear()
