"""Plan tiers as data, how scopes resolve, workspace settings for limits (and who may set
which), the x-ratelimit-* header format, and choosing a backend from settings."""

from __future__ import annotations

import itertools

import pytest
from pydantic import ValidationError

from perpetuo.config.settings import Settings
from perpetuo.control import workspaces
from perpetuo.control.actor import Actor
from perpetuo.limits import PLANS, ScopeLimits, WorkspaceLimits, build_limit_engine
from perpetuo.limits.memory import MemoryBackend
from perpetuo.limits.planning import plan_checks
from perpetuo.limits.redis_backend import RedisBackend
from perpetuo.limits.refusals import duration
from perpetuo.schema.errors import GatewayError
from tests.limits.support import Clock, engine, make_request
from tests.support.people import make_user, make_workspace
from tests.support.plane import make_plane


def test_plan_tiers_are_the_offered_numbers():
    table = {name: (p.rpm, p.tpm, p.daily_tokens, p.monthly_tokens) for name, p in PLANS.items()}
    assert table == {
        "free": (10, 10_000, 600_000, 5_000_000),
        "starter": (60, 100_000, 6_000_000, 50_000_000),
        "pro": (200, 500_000, 30_000_000, 250_000_000),
        "enterprise": (1_000, 2_000_000, 120_000_000, 1_000_000_000),
    }


@pytest.mark.parametrize("name", list(PLANS))
def test_every_tier_nests_its_windows(name):
    """A quota never runs out before the rate it sits over could be used for a while: a day
    holds an hour at the full token rate, a month a week of full days."""
    plan = PLANS[name]
    assert plan.rpm and plan.tpm and plan.daily_tokens and plan.monthly_tokens
    assert plan.rpm <= plan.tpm  # a request is at least a token
    assert plan.daily_tokens >= 60 * plan.tpm
    assert plan.monthly_tokens >= 7 * plan.daily_tokens


def test_higher_tiers_never_allow_less():
    tiers = list(PLANS.values())
    for lower, higher in itertools.pairwise(tiers):
        for limit in ("rpm", "tpm", "daily_tokens", "monthly_tokens"):
            assert getattr(higher, limit) >= getattr(lower, limit), limit


def test_workspace_scope_is_plan_then_overrides_then_budget():
    workspace = WorkspaceLimits(
        plan="pro", limits={"rpm": 50, "max_parallel": 4}, budget_usd=20, budget_soft_usd=15
    )
    assert workspace.scope_limits() == ScopeLimits(
        rpm=50,
        tpm=500_000,
        daily_tokens=30_000_000,
        monthly_tokens=250_000_000,
        max_parallel=4,
        budget_usd=20,
        budget_soft_usd=15,
    )
    assert workspace.scope_limits().period == "monthly"  # the default budget period
    assert WorkspaceLimits().scope_limits().empty  # no plan: no limits
    assert ScopeLimits.from_mapping({"rpm": 5, "future_field": 1}) == ScopeLimits(rpm=5)


def test_checks_per_scope_with_keys_in_one_workspace_slot():
    workspace = WorkspaceLimits(plan="free", user_limits={"rpm": 3}, credits_required=True)
    request = make_request(
        key_limits={"rpm": 7, "max_parallel": 2}, user_id="usr_1", workspace=workspace
    )
    planned = plan_checks(request, Clock()(), 900)
    scopes = [(p.scope, p.code.value) for p in planned]
    assert scopes == [
        ("key", "rate_limit_requests"),
        ("key", "concurrency_limit"),
        ("workspace", "rate_limit_requests"),
        ("workspace", "rate_limit_tokens"),
        ("workspace", "quota_daily_tokens"),
        ("workspace", "quota_monthly_tokens"),
        ("user", "rate_limit_requests"),
        ("workspace", "insufficient_credits"),
    ]
    assert all(p.check.key.startswith("{ws_1}:") for p in planned)
    assert plan_checks(make_request(workspace=None), 0, 900) == []


def test_workspace_settings_convert_for_the_engine():
    settings = workspaces.effective_settings(
        {
            "plan": "starter",
            "limits": {"tpm": 5000},
            "user_limits": {"rpm": 2},
            "budget_usd": 12.5,
            "budget_period": "weekly",
            "credits_required": True,
            "alert_webhook_url": "https://hooks.example.com/x",
        }
    )
    converted = WorkspaceLimits.from_settings(settings)
    assert converted == WorkspaceLimits(
        plan="starter",
        limits={"tpm": 5000},
        user_limits={"rpm": 2},
        budget_usd=12.5,
        budget_period="weekly",
        credits_required=True,
        alert_webhook_url="https://hooks.example.com/x",
    )
    assert WorkspaceLimits.from_settings(workspaces.effective_settings({})) == WorkspaceLimits()


@pytest.mark.parametrize(
    ("settings", "field"),
    [
        ({"plan": "platinum"}, "plan"),
        ({"limits": {"rpm": 0}}, "limits"),
        ({"limits": {"budget_usd": 5}}, "limits"),
        ({"user_limits": {"rpm": "ten"}}, "user_limits"),
        ({"budget_usd": 0}, "budget_usd"),
        ({"budget_period": "yearly"}, "budget_period"),
        ({"alert_webhook_url": "file:///etc/passwd"}, "alert_webhook_url"),
        ({"credits_required": "yes"}, "credits_required"),
    ],
)
def test_limit_settings_are_validated(settings, field):
    with pytest.raises(ValidationError) as exc:
        workspaces.WorkspaceUpdate.model_validate({"settings": settings})
    assert exc.value.errors()[0]["loc"][:2] == ("settings", field)


async def test_plan_overrides_and_credits_are_for_platform_admins(store_url):
    plane = await make_plane(store_url)
    try:
        owner = await make_user(plane)
        workspace_id = await make_workspace(plane, {owner: "owner"})
        person = Actor(kind="user", user_id=owner)
        for patch in (
            {"plan": "enterprise"},
            {"credits_required": False},
            {"limits": {"rpm": 100_000}},
        ):
            spec = workspaces.WorkspaceUpdate.model_validate({"settings": patch})
            with pytest.raises(GatewayError) as refused:
                await workspaces.update_workspace(plane, person, workspace_id, spec)
            assert refused.value.status == 403
            with pytest.raises(GatewayError):
                await workspaces.create_workspace(
                    plane, person, workspaces.WorkspaceCreate(name="x", settings=patch)
                )
        # The workspace's own budget, alerts and per-user limits are its admins' to set.
        own = workspaces.WorkspaceUpdate.model_validate(
            {
                "settings": {
                    "budget_usd": 50,
                    "budget_soft_usd": 40,
                    "user_limits": {"rpm": 5},
                    "alert_webhook_url": "https://example.com/hook",
                }
            }
        )
        view = await workspaces.update_workspace(plane, person, workspace_id, own)
        assert view["settings"]["user_limits"]["rpm"] == 5
        root = Actor(kind="master", is_superadmin=True)
        plan = workspaces.WorkspaceUpdate.model_validate(
            {"settings": {"plan": "pro", "limits": {"rpm": 20}, "credits_required": True}}
        )
        view = await workspaces.update_workspace(plane, root, workspace_id, plan)
        settings = view["settings"]
        assert (settings["plan"], settings["limits"]["rpm"], settings["budget_usd"]) == (
            "pro",
            20,
            50.0,
        )
        async with plane.db.connect() as conn:
            row = await workspaces.get_row(conn, workspace_id)
        assert row.settings["limits"] == {"rpm": 20}  # stored without the unset fields
    finally:
        await plane.db.dispose()


def test_reset_durations_read_like_openais():
    assert [
        duration(ms) for ms in (0, 20.2, 999, 1000, 1500, 59_999, 60_000, 360_000, 3_723_000)
    ] == ["0ms", "21ms", "999ms", "1s", "1.5s", "59.999s", "1m0s", "6m0s", "1h2m3s"]


async def test_headers_name_the_most_constraining_limits():
    limits = engine(MemoryBackend())
    admission = await limits.admit(
        make_request(
            key_limits={"rpm": 100, "tpm": 5000},
            workspace=WorkspaceLimits(limits={"rpm": 20}),
            prompt_tokens=1000,
            max_output_tokens=1000,
        )
    )
    assert admission.headers == [
        ("x-ratelimit-limit-requests", "20"),
        ("x-ratelimit-remaining-requests", "19"),
        ("x-ratelimit-reset-requests", "3s"),
        ("x-ratelimit-limit-tokens", "5000"),
        ("x-ratelimit-remaining-tokens", "3000"),
        ("x-ratelimit-reset-tokens", "24s"),
    ]


def test_the_backend_follows_the_settings(tmp_path):
    def built(**values):
        return build_limit_engine(Settings(data_dir=tmp_path, **values), None)

    assert isinstance(built().backend, MemoryBackend)
    on_redis = built(redis_url="redis://127.0.0.1:1/0", limits_redis_failure="closed")
    assert isinstance(on_redis.backend, RedisBackend)
    assert isinstance(on_redis.guard.fallback, MemoryBackend)
    assert on_redis.guard.policy == "closed"
    assert isinstance(
        built(redis_url="redis://x:1/0", limits_backend="memory").backend, MemoryBackend
    )
    with pytest.raises(ValueError, match="redis_url"):
        built(limits_backend="redis")
