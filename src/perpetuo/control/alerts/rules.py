"""What an alert rule may watch, and the parameters each kind takes.

A rule belongs to a workspace (it sees that workspace's deployments, spend, keys and
credits) or to the platform (every deployment of the config file, all traffic). Parameters
are validated per kind here, so the evaluator (conditions.py) can trust them.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

DEPLOYMENT_DEGRADED = "deployment_degraded"
HEALTH_CHECK_FAILING = "health_check_failing"
BUDGET_THRESHOLD = "budget_threshold"
CREDIT_BALANCE_BELOW = "credit_balance_below"
SPEND_ANOMALY = "spend_anomaly"
KEY_EXPIRING = "key_expiring"


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DeploymentDegraded(_Params):
    condition: Literal["circuit_open", "error_rate", "p95_latency"] = Field(
        description="circuit_open: a circuit breaker opened; error_rate: the share of 5xx "
        "answers; p95_latency: the 95th percentile latency in milliseconds"
    )
    threshold: Annotated[float, Field(gt=0)] | None = Field(
        default=None, description="error_rate: a fraction (0.2 = 20%); p95_latency: ms"
    )
    window_minutes: Annotated[int, Field(ge=1, le=1440)] = Field(
        default=5, description="error_rate and p95_latency are measured over this window"
    )
    min_requests: Annotated[int, Field(ge=1, le=1_000_000)] = Field(
        default=20, description="Fewer requests in the window prove nothing: no alert"
    )
    deployments: list[Annotated[str, Field(max_length=300)]] | None = Field(
        default=None, description="provider/model ids to watch; default: all"
    )

    @model_validator(mode="after")
    def _threshold(self) -> DeploymentDegraded:
        if self.condition != "circuit_open" and self.threshold is None:
            raise ValueError(f"threshold is required for {self.condition}")
        if self.condition == "error_rate" and self.threshold is not None and self.threshold > 1:
            raise ValueError("an error_rate threshold is a fraction between 0 and 1")
        return self


class HealthCheckFailing(_Params):
    consecutive: Annotated[int, Field(ge=1, le=100)] = Field(
        default=2, description="Failed health-check rounds in a row before alerting"
    )
    deployments: list[Annotated[str, Field(max_length=300)]] | None = None


class BudgetThreshold(_Params):
    scopes: list[Literal["workspace", "team", "key", "user"]] | None = Field(
        default=None, description="Which budgets; default: all (their soft thresholds)"
    )


class CreditBalanceBelow(_Params):
    threshold_usd: Annotated[float, Field(ge=0, le=1e9)]


class SpendAnomaly(_Params):
    factor: Annotated[float, Field(gt=1, le=1000)] = Field(
        default=3.0, description="Fire when this hour's spend exceeds factor x the average"
    )
    min_usd: Annotated[float, Field(ge=0, le=1e9)] = Field(
        default=1.0, description="The floor: spend below this never fires"
    )
    lookback_days: Annotated[int, Field(ge=1, le=60)] = Field(
        default=7, description="The average is of the same hour on this many previous days"
    )


class KeyExpiring(_Params):
    days: Annotated[int, Field(ge=1, le=365)] = 7


PARAMS: dict[str, type[_Params]] = {
    DEPLOYMENT_DEGRADED: DeploymentDegraded,
    HEALTH_CHECK_FAILING: HealthCheckFailing,
    BUDGET_THRESHOLD: BudgetThreshold,
    CREDIT_BALANCE_BELOW: CreditBalanceBelow,
    SPEND_ANOMALY: SpendAnomaly,
    KEY_EXPIRING: KeyExpiring,
}
KINDS = tuple(PARAMS)
# A workspace's own credentials have no active health checks; budgets and credits are a
# workspace's (the platform sees them through each workspace's rules).
WORKSPACE_ONLY = frozenset({BUDGET_THRESHOLD, CREDIT_BALANCE_BELOW})
PLATFORM_ONLY = frozenset({HEALTH_CHECK_FAILING})
# Raised by the limits engine as spend crosses a soft threshold, not by the evaluator.
EVENT_KINDS = frozenset({BUDGET_THRESHOLD})


class KindError(ValueError):
    """The kind is unknown, or not one this scope (workspace or platform) may have."""


def parse_params(kind: str, params: dict[str, Any], *, platform: bool) -> dict[str, Any]:
    """The validated parameters as stored (defaults filled in); ValueError naming the
    problem for a kind this scope cannot have or a bad parameter."""
    model = PARAMS.get(kind)
    if model is None:
        raise KindError(f"unknown kind (known: {', '.join(KINDS)})")
    if platform and kind in WORKSPACE_ONLY:
        raise KindError(f"{kind} rules belong to a workspace")
    if not platform and kind in PLATFORM_ONLY:
        raise KindError(f"{kind} rules are the platform's (workspace credentials have no probes)")
    try:
        return model.model_validate(params).model_dump()
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ValueError(f"{where + ': ' if where else ''}{first['msg']}") from None


def typed(kind: str, params: dict[str, Any]) -> Any:
    return PARAMS[kind].model_validate(params)
