"""A referral link (`/ui/signup?ref=CODE`, control/billing/referrals.py) followed to its end:
the sign-up page keeps the code in a cookie, and the first workspace its visitor then creates
names it as the referrer (rewards come with that workspace's first payment). Nothing is kept
while the server offers no referrals."""

from __future__ import annotations

import logging
import re

from fastapi import Request
from fastapi.responses import Response

from perpetuo.control.actor import Actor
from perpetuo.control.billing import Billing, referrals
from perpetuo.schema.errors import GatewayError
from perpetuo.ui.security import clear_cookie, set_cookie
from perpetuo.ui.session import plane_of

log = logging.getLogger("perpetuo.ui")
REFERRAL_COOKIE = "perpetuo_ref"
CODE = re.compile(r"^[A-Za-z0-9]{4,32}$")
KEPT_FOR = 30 * 24 * 3600  # seconds: time to sign up and make a first workspace


def _offered(request: Request) -> Billing | None:
    billing = plane_of(request).billing
    return billing if billing is not None and billing.config.referrals.enabled else None


def remember(request: Request, response: Response, code: str | None) -> Response:
    if code and CODE.match(code) and _offered(request) is not None:
        set_cookie(response, request, REFERRAL_COOKIE, code.upper(), max_age=KEPT_FOR)
    return response


async def name_referrer(
    request: Request, response: Response, actor: Actor, workspace_id: str
) -> Response:
    """After a workspace is made: the kept code becomes its referrer, once."""
    code = request.cookies.get(REFERRAL_COOKIE)
    billing = _offered(request)
    if not code or billing is None:
        return response
    try:
        await referrals.attach(billing, actor, workspace_id, code)
    except GatewayError as exc:  # an unknown or own code: the workspace stands without it
        log.info("referral code not applied to workspace %s: %s", workspace_id, exc.message)
    clear_cookie(response, request, REFERRAL_COOKIE)
    return response
