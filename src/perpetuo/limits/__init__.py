"""Rate limits, token quotas, concurrency caps, USD budgets and prepaid credits.

`LimitEngine.admit` checks a request against every limit of its key, user, team and
workspace at once and reserves what it may use; `Admission.settle` corrects the reservations
to what it really used. Counters live in memory (one instance) or in Redis (shared by all
instances). See docs/limits.md.
"""

from perpetuo.limits.build import build_limit_engine
from perpetuo.limits.engine import Admission, LimitEngine
from perpetuo.limits.planning import LimitRequest
from perpetuo.limits.plans import PLANS, ScopeLimits, WorkspaceLimits

__all__ = [
    "PLANS",
    "Admission",
    "LimitEngine",
    "LimitRequest",
    "ScopeLimits",
    "WorkspaceLimits",
    "build_limit_engine",
]
