"""Team and user budgets in the one hierarchy (workspace → team → user → key): 200 requests
at once admit exactly what the tightest level fits, over two instances sharing a store; a
team's budget is shared by all its members and keys; a member's own limits override the
workspace's per-user default; a team's spend starts from the usage history after a restart."""

from __future__ import annotations

import asyncio

from perpetuo.limits import WorkspaceLimits
from perpetuo.limits.history import NoHistory
from perpetuo.schema.errors import ErrorCode
from tests.limits.support import Clock, admit_all, engine, make_request

X = 10_000  # micro-USD: the most one request may cost


def in_team(n: int, **limits) -> object:
    """Request n of four members of team_a, each with two keys; generous key budgets."""
    user = f"usr_{n % 4}"
    return make_request(
        key_id=f"key_{n % 8}",
        user_id=user,
        team_id="team_a",
        key_limits={"budget_usd": 1.0},
        max_cost_micros=X,
        **limits,
    )


async def test_200_concurrent_requests_fill_a_team_budget_exactly(backends):
    clock = Clock()
    engines = [engine(backends(), clock), engine(backends(), clock)]  # two gateway instances
    team = {"budget_usd": 30 * X / 1_000_000, "budget_period": "daily"}
    workspace = WorkspaceLimits(budget_usd=1.0)
    batch = [in_team(n, team_limits=team, workspace=workspace) for n in range(200)]
    admitted, refused = await admit_all(engines, batch)
    assert (len(admitted), len(refused)) == (30, 170)
    assert {(e.status, e.code) for e in refused} == {(402, ErrorCode.BUDGET_EXCEEDED)}
    assert "this team" in refused[0].message and "$0.30 per UTC day" in refused[0].message
    # Settled at a third of the maximum: two thirds come back, room for exactly 20 more.
    await asyncio.gather(*(a.settle(10, X // 3) for a in admitted))
    batch = [in_team(n, team_limits=team, workspace=workspace) for n in range(200)]
    admitted, _ = await admit_all(engines, batch)
    assert len(admitted) == 20
    # Another team of the same workspace is untouched by team_a's spend.
    other = [
        make_request(key_id="key_x", team_id="team_b", team_limits=team, max_cost_micros=X)
        for _ in range(200)
    ]
    admitted, _ = await admit_all(engines, other)
    assert len(admitted) == 30


async def test_200_concurrent_requests_fill_each_user_budget_exactly(backends):
    clock = Clock()
    engines = [engine(backends(), clock), engine(backends(), clock)]
    # The workspace gives each user $0.10 a day; usr_0 has $0.05 of their own.
    workspace = WorkspaceLimits(user_limits={"budget_usd": 0.1, "budget_period": "daily"})
    team = {"budget_usd": 1.0}

    def request(n: int):
        own = {"budget_usd": 0.05} if n % 4 == 0 else None
        return in_team(n, team_limits=team, user_limits=own, workspace=workspace)

    admitted, refused = await admit_all(engines, [request(n) for n in range(200)])
    by_user: dict[str, int] = {}
    for admission in admitted:
        user = admission._request.user_id  # which member was admitted
        by_user[user] = by_user.get(user, 0) + 1
    assert by_user == {"usr_0": 5, "usr_1": 10, "usr_2": 10, "usr_3": 10}
    assert {e.code for e in refused} == {ErrorCode.BUDGET_EXCEEDED}
    assert all("this user" in e.message for e in refused)


async def test_the_tightest_level_decides_and_a_refusal_reserves_nothing(backends):
    clock = Clock()
    limits = engine(backends(), clock)
    team = {"rpm": 50, "budget_usd": 100 * X / 1_000_000}
    workspace = WorkspaceLimits(user_limits={"rpm": 1000})
    # 200 at once against a team rpm of 50: exactly 50, refused for requests per minute.
    batch = [in_team(n, team_limits=team, workspace=workspace) for n in range(200)]
    admitted, refused = await admit_all([limits], batch)
    assert len(admitted) == 50
    assert {e.code for e in refused} == {ErrorCode.RATE_LIMIT_REQUESTS}
    assert "this team allows 50 requests per minute" in refused[0].message
    # The 150 refused reserved nothing of the team's budget: after the minute, exactly 50
    # more fit (the budget holds 100 maxima, 50 of them are held by the first admissions).
    clock.advance(60)
    batch = [in_team(n, team_limits={**team, "rpm": 1000}, workspace=workspace) for n in range(200)]
    admitted, refused = await admit_all([limits], batch)
    assert len(admitted) == 50 and {e.code for e in refused} == {ErrorCode.BUDGET_EXCEEDED}


class TeamHistory(NoHistory):
    """team_a already spent $0.25 today, by the store's rollups."""

    async def usage(self, workspace_id, dim, value, since, until):
        return (0, 250_000) if (dim, value) == ("team", "team_a") else (0, 0)


async def test_a_team_budget_starts_from_the_usage_history(backends):
    limits = engine(backends(), Clock(), history=TeamHistory())
    team = {"budget_usd": 0.3, "budget_period": "daily"}
    batch = [in_team(n, team_limits=team) for n in range(200)]
    admitted, _ = await admit_all([limits], batch)
    assert len(admitted) == 5  # $0.05 left of $0.30
