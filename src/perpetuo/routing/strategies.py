"""Routing strategies: each orders one priority group of an alias's deployments.

A strategy returns the whole group, best first: the later entries are the failover order.
Every strategy has the same signature, `(deployments, choice) -> list`, and reads what it
needs from `choice` (the routing state, the request's size, the time). Ties keep the
configured order unless the strategy says otherwise.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from perpetuo.routing.health import RoutingState
from perpetuo.routing.job import RouteJob
from perpetuo.routing.stats import Ewma
from perpetuo.routing.table import Deployment


@dataclass(slots=True)
class Choice:
    state: RoutingState
    job: RouteJob
    now: float
    group_key: str  # identifies the (alias, priority group) for stateful strategies


Strategy = Callable[[Sequence[Deployment], Choice], list[Deployment]]


def configured_order(deployments: Sequence[Deployment], choice: Choice) -> list[Deployment]:
    """`default` / `priority`: the order in the config file."""
    return list(deployments)


def weighted(deployments: Sequence[Deployment], choice: Choice) -> list[Deployment]:
    """Smooth weighted round-robin (nginx's): every deployment gains its weight each
    request, the one with the most is chosen and pays back the total. Over any run of
    Σweights requests each gets exactly its share, interleaved rather than in bursts."""
    ids = tuple(d.id for d in deployments)
    entry = choice.state.rotations.get(choice.group_key)
    if entry is None or entry[0] != ids:
        # A random starting phase, so that several gateway processes do not move in step.
        rng = choice.state.rng
        entry = (ids, [rng.random() * d.config.weight for d in deployments])
        choice.state.rotations[choice.group_key] = entry
    current = entry[1]
    total = 0.0
    best = 0
    for i, dep in enumerate(deployments):
        current[i] += dep.config.weight
        total += dep.config.weight
        if current[i] > current[best]:
            best = i
    current[best] -= total
    rest = sorted((i for i in range(len(deployments)) if i != best), key=lambda i: -current[i])
    return [deployments[best], *(deployments[i] for i in rest)]


def fastest(deployments: Sequence[Deployment], choice: Choice) -> list[Deployment]:
    """Lowest recent latency: the decaying average of whole responses, or of time to first
    token for streams. A deployment with no fresh measurement goes first when nothing is
    in flight to it (one probe at a time); now and then (`exploration_rate`) the longest-
    unmeasured of the others goes first, so a slow deployment that recovered is noticed."""
    state, now, stream = choice.state, choice.now, choice.job.stream
    settings = state.config.health
    measured: list[tuple[float, int, Deployment]] = []
    probe: Deployment | None = None
    unmeasured: list[Deployment] = []
    for i, dep in enumerate(deployments):
        health = state.health(dep.id)
        value = (health.ttft if stream else health.latency).fresh(now, settings.stale_after)
        if value is not None:
            measured.append((value, i, dep))
        elif probe is None and health.in_flight == 0:
            probe = dep
        else:
            unmeasured.append(dep)
    measured.sort(key=_first_two)
    ordered = [dep for _, _, dep in measured]
    if len(ordered) > 1 and state.rng.random() < settings.exploration_rate:
        stalest = min(ordered[1:], key=lambda d: _metric(state, d, stream).updated)
        ordered.remove(stalest)
        ordered.insert(0, stalest)
    if probe is not None:
        ordered.insert(0, probe)
    return ordered + unmeasured


def cheapest(deployments: Sequence[Deployment], choice: Choice) -> list[Deployment]:
    """Lowest price for this request's estimated prompt tokens and its output limit (or
    `routing.default_output_tokens`); deployments without a known price go last."""
    job = choice.job
    priced = []
    unpriced = []
    for i, dep in enumerate(deployments):
        if dep.price is None:
            unpriced.append(dep)
        else:
            priced.append((dep.price.estimate(job.prompt_tokens, job.output_tokens), i, dep))
    priced.sort(key=_first_two)
    return [dep for _, _, dep in priced] + unpriced


def reliable(deployments: Sequence[Deployment], choice: Choice) -> list[Deployment]:
    """Lowest error rate over the health window."""
    state, now = choice.state, choice.now
    rated = [(state.health(d.id).error_rate(now), i, d) for i, d in enumerate(deployments)]
    rated.sort(key=_first_two)
    return [dep for _, _, dep in rated]


def least_busy(deployments: Sequence[Deployment], choice: Choice) -> list[Deployment]:
    """Fewest requests in flight from this process; ties are broken at random."""
    state = choice.state
    rng = state.rng.random
    keyed = [(state.health(d.id).in_flight, rng(), d) for d in deployments]
    keyed.sort(key=_first_two)
    return [dep for _, _, dep in keyed]


STRATEGIES: dict[str, Strategy] = {
    "default": configured_order,
    "priority": configured_order,
    "weighted": weighted,
    "fastest": fastest,
    "cheapest": cheapest,
    "reliable": reliable,
    "least-busy": least_busy,
}
STRATEGY_NAMES = tuple(STRATEGIES)


def _first_two(item: tuple[float, float | int, Deployment]) -> tuple[float, float | int]:
    return item[0], item[1]


def _metric(state: RoutingState, dep: Deployment, stream: bool) -> Ewma:
    health = state.health(dep.id)
    return health.ttft if stream else health.latency
