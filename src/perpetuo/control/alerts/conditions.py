"""What each kind of rule looks at, and what it finds true now.

Deployment circuits and health checks are read from this instance's routing state (each
instance has its own view: any instance that sees a circuit open keeps the alert firing);
error rates and latency percentiles from the request log, spend from the hourly rollups,
balances from the credit ledger and expiry from the keys table. Nothing here runs on the
request path: the worker calls `evaluate` every evaluation interval.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Select, case, func, select

from perpetuo.control.alerts import rules as kinds
from perpetuo.control.alerts.state import Observation
from perpetuo.store.aio import AsyncConnection
from perpetuo.store.database import Database
from perpetuo.store.repos.credits import balance
from perpetuo.store.schema import api_keys, provider_credentials, request_logs, usage_rollups

DEGRADED_STATES = ("open", "half_open")


@dataclass
class Sources:
    """Where the in-memory conditions come from; the rest is read from `db`."""

    db: Database
    # deployment id -> its health snapshot (routing/health.py RoutingState.snapshot)
    deployments: Callable[[], dict[str, dict[str, Any]]] = dict
    # the config file's deployment ids: what platform rules watch
    platform_deployments: Callable[[], Iterable[str]] = tuple
    # deployment id -> (failed health-check rounds in a row, last error kind)
    probe_failures: Callable[[], dict[str, tuple[int, str]]] = dict


async def evaluate(rule: Any, sources: Sources, now: dt.datetime) -> list[Observation]:
    params = kinds.typed(rule.kind, rule.params)
    if rule.kind == kinds.DEPLOYMENT_DEGRADED:
        if params.condition == "circuit_open":
            return await _circuits(rule, params, sources)
        return await _traffic(rule, params, sources, now)
    if rule.kind == kinds.HEALTH_CHECK_FAILING:
        return _probes(params, sources)
    async with sources.db.connect() as conn:
        if rule.kind == kinds.CREDIT_BALANCE_BELOW:
            return await _credits(conn, rule, params)
        if rule.kind == kinds.SPEND_ANOMALY:
            return await _spend(conn, rule, params, now)
        if rule.kind == kinds.KEY_EXPIRING:
            return await _keys(conn, rule, params, now)
    return []  # budget thresholds arrive as events from the limits engine (budget.py)


def _wanted(dep_id: str, params: Any) -> bool:
    return params.deployments is None or dep_id in params.deployments


async def _scope_deployments(rule: Any, sources: Sources) -> set[str] | None:
    """The deployment-id prefixes a workspace rule may see (its own credentials); None for
    a platform rule, which sees the config file's deployments."""
    if rule.workspace_id is None:
        return None
    async with sources.db.connect() as conn:
        ids = await conn.scalars(
            select(provider_credentials.c.id).where(
                provider_credentials.c.workspace_id == rule.workspace_id
            )
        )
        return {f"{cred}/" for cred in ids}


async def _circuits(rule: Any, params: Any, sources: Sources) -> list[Observation]:
    prefixes = await _scope_deployments(rule, sources)
    platform = set(sources.platform_deployments()) if prefixes is None else set()
    found = []
    for dep_id, health in sources.deployments().items():
        mine = dep_id in platform if prefixes is None else dep_id.startswith(tuple(prefixes))
        if not mine or not _wanted(dep_id, params) or health["state"] not in DEGRADED_STATES:
            continue
        found.append(
            Observation(
                subject=dep_id,
                summary=f"the circuit of {dep_id} is {health['state'].replace('_', '-')}",
                value=health.get("error_rate"),
                detail={"deployment": dep_id, "circuit": health["state"], **_health(health)},
            )
        )
    return found


def _health(health: dict[str, Any]) -> dict[str, Any]:
    keys = ("error_rate", "latency_ms", "requests_in_window", "reopens_in_s")
    return {k: health.get(k) for k in keys}


def traffic_window(
    workspace_id: str | None, since: dt.datetime, now: dt.datetime
) -> list[ColumnElement[bool]]:
    """The request-log rows of a traffic rule's window: the workspace's own, or all of them
    for a platform rule (read by the time index: the log holds months of rows)."""
    r = request_logs.c
    where = [r.created_at >= since, r.created_at <= now, r.provider.is_not(None)]
    if workspace_id is not None:
        where.append(r.workspace_id == workspace_id)
    return where


def traffic_by_deployment(where: list[ColumnElement[bool]]) -> Select:
    r = request_logs.c
    errors = func.sum(case((r.status >= 500, 1), else_=0))
    return (
        select(
            r.provider,
            r.model,
            func.count().label("n"),
            errors.label("errors"),
            func.count(r.latency_ms).label("timed"),
        )
        .where(*where)
        .group_by(r.provider, r.model)
    )


async def _traffic(rule: Any, params: Any, sources: Sources, now: dt.datetime) -> list[Observation]:
    """Error rate or p95 latency per deployment over the window, from the request log
    (the workspace's own requests for a workspace rule, all of them for the platform)."""
    where = traffic_window(
        rule.workspace_id, now - dt.timedelta(minutes=params.window_minutes), now
    )
    found = []
    async with sources.db.connect() as conn:
        groups = (await conn.execute(traffic_by_deployment(where))).all()
        for group in groups:
            dep_id = f"{group.provider}/{group.model}"
            if group.n < params.min_requests or not _wanted(dep_id, params):
                continue
            window = f"over the last {params.window_minutes} min ({group.n} requests)"
            if params.condition == "error_rate":
                value = (group.errors or 0) / group.n
                summary = f"{dep_id} failed {value:.1%} of requests {window}"
            else:
                value = await _p95(conn, where, group)
                if value is None:
                    continue
                summary = f"{dep_id} p95 latency is {value:.0f} ms {window}"
            if value >= params.threshold:
                found.append(
                    Observation(
                        subject=dep_id,
                        summary=summary,
                        value=round(value, 4),
                        threshold=params.threshold,
                        detail={
                            "deployment": dep_id,
                            "condition": params.condition,
                            "threshold": params.threshold,
                            "requests": group.n,
                            "window_minutes": params.window_minutes,
                        },
                    )
                )
    return found


async def _p95(conn: AsyncConnection, where: list[Any], group: Any) -> float | None:
    """The nearest-rank 95th percentile, by one indexed ORDER BY ... OFFSET (both engines)."""
    if not group.timed:
        return None
    r = request_logs.c
    rank = max(0, math.ceil(0.95 * group.timed) - 1)
    return await conn.scalar(
        select(r.latency_ms)
        .where(*where, r.provider == group.provider, r.model == group.model)
        .where(r.latency_ms.is_not(None))
        .order_by(r.latency_ms)
        .offset(rank)
        .limit(1)
    )


def _probes(params: Any, sources: Sources) -> list[Observation]:
    found = []
    for dep_id, (rounds, error) in sources.probe_failures().items():
        if rounds >= params.consecutive and _wanted(dep_id, params):
            found.append(
                Observation(
                    subject=dep_id,
                    summary=f"the health check of {dep_id} failed {rounds} times in a row "
                    f"({error})",
                    value=rounds,
                    threshold=params.consecutive,
                    detail={"deployment": dep_id, "error": error, "threshold": params.consecutive},
                )
            )
    return found


async def _credits(conn: AsyncConnection, rule: Any, params: Any) -> list[Observation]:
    micros = await balance(conn, rule.workspace_id)
    usd = micros / 1_000_000
    if usd >= params.threshold_usd:
        return []
    return [
        Observation(
            subject="credits",
            summary=f"the credit balance is ${usd:,.2f}, below ${params.threshold_usd:,.2f}",
            value=round(usd, 6),
            threshold=params.threshold_usd,
            detail={"balance_usd": round(usd, 6), "threshold": params.threshold_usd},
        )
    ]


def spend_by_hour(workspace_id: str | None, hours: list[dt.datetime]) -> Select:
    """Cost per hour bucket, the workspace's or the platform's (read by the rollups'
    (dim, bucket) index when no workspace narrows it)."""
    u = usage_rollups.c
    where = [u.dim == "all", u.bucket.in_(hours)]
    if workspace_id is not None:
        where.append(u.workspace_id == workspace_id)
    return select(u.bucket, func.sum(u.cost_micros).label("cost")).where(*where).group_by(u.bucket)


async def _spend(
    conn: AsyncConnection, rule: Any, params: Any, now: dt.datetime
) -> list[Observation]:
    """This hour's spend so far against the same hour on the previous days."""
    hour = now.astimezone(dt.UTC).replace(minute=0, second=0, microsecond=0)
    earlier = [hour - dt.timedelta(days=d) for d in range(1, params.lookback_days + 1)]
    rows = (await conn.execute(spend_by_hour(rule.workspace_id, [hour, *earlier]))).all()
    by_hour = {_utc(row.bucket): int(row.cost or 0) for row in rows}
    current = by_hour.get(hour, 0) / 1_000_000
    average = sum(by_hour.get(h, 0) for h in earlier) / len(earlier) / 1_000_000
    threshold = max(params.factor * average, params.min_usd)
    if current < threshold:
        return []
    subject = "platform" if rule.workspace_id is None else "spend"
    return [
        Observation(
            subject=subject,
            summary=f"${current:,.2f} spent this hour ({hour:%H}:00 UTC), against an average "
            f"of ${average:,.2f} for that hour over {params.lookback_days} days",
            value=round(current, 6),
            threshold=round(threshold, 6),
            detail={
                "hour": hour.isoformat(),
                "spent_usd": round(current, 6),
                "average_usd": round(average, 6),
                "factor": params.factor,
                "threshold": round(threshold, 6),
            },
        )
    ]


def _utc(value: dt.datetime) -> dt.datetime:
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


async def _keys(
    conn: AsyncConnection, rule: Any, params: Any, now: dt.datetime
) -> list[Observation]:
    k = api_keys.c
    where = [
        k.revoked_at.is_(None),
        k.expires_at.is_not(None),
        k.expires_at > now,
        k.expires_at <= now + dt.timedelta(days=params.days),
    ]
    if rule.workspace_id is not None:
        where.append(k.workspace_id == rule.workspace_id)
    rows = (
        await conn.execute(
            select(k.id, k.workspace_id, k.name, k.prefix, k.expires_at).where(*where)
        )
    ).all()
    return [
        Observation(
            subject=row.id,
            summary=f"the API key {row.name} ({row.prefix}…) expires on "
            f"{_utc(row.expires_at):%Y-%m-%d %H:%M} UTC",
            value=round((_utc(row.expires_at) - now).total_seconds() / 86400, 3),
            threshold=params.days,
            detail={
                "key_id": row.id,
                "workspace_id": row.workspace_id,
                "expires_at": _utc(row.expires_at).isoformat(),
                "threshold": params.days,
            },
        )
        for row in rows
    ]


def routing_sources(db: Database, router: Any) -> Sources:
    """Sources reading a Router (routing/router.py): its breakers and health checks."""

    def platform() -> list[str]:
        return [d.id for alias in router.table.aliases.values() for d in alias.deployments]

    def probes() -> dict[str, tuple[int, str]]:
        return dict(router.checker.failing) if router.checker is not None else {}

    return Sources(db, router.state.snapshot, platform, probes)
