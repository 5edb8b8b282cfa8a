"""The admin API application (FastAPI), mounted by the gateway under /api, /docs, /openapi.json."""

from __future__ import annotations

from fastapi import FastAPI

from perpetuo import __version__
from perpetuo.api.admin.error_handlers import install_error_handlers
from perpetuo.api.admin.routes import (
    account_mail,
    alerts,
    audit,
    auth,
    billing,
    billing_plans,
    cache,
    catalog,
    chat_sessions,
    credentials,
    credits,
    guardrails,
    invites,
    keys,
    members,
    models,
    operations,
    roles,
    sso,
    teams,
    usage,
    users,
    workspaces,
)
from perpetuo.pipeline.runtime import Gateway

BILLING_ROUTERS = [billing.router, billing_plans.router]

ROUTERS = [
    auth.router,
    account_mail.router,
    workspaces.router,
    members.router,
    roles.router,
    teams.router,
    invites.router,
    keys.router,
    credentials.router,
    credits.router,
    cache.router,
    guardrails.router,
    models.router,
    audit.router,
    operations.router,
    usage.router,
    chat_sessions.router,
    sso.router,
    users.router,
    catalog.router,
    alerts.router,
]


def create_admin_app(gateway: Gateway) -> FastAPI:
    app = FastAPI(
        title="Perpetuo admin API",
        version=__version__,
        description="Accounts, workspaces, members, API keys, provider credentials, "
        "workspace models, prepaid credits and the audit log. Authenticate with "
        "`Authorization: Bearer <access token>` (from /api/auth/login) or the master key.",
        docs_url="/docs",
        redoc_url="/redoc",
        openapi_url="/openapi.json",
    )
    app.state.plane = gateway.plane
    app.state.master_key = gateway.master_key.encode() if gateway.master_key else None
    app.state.http = gateway.client
    app.state.workspace_routes = gateway.workspace_routes
    app.state.gateway = gateway
    for router in ROUTERS:
        app.include_router(router)
    if gateway.plane.billing is not None:  # a server that sells nothing has no billing API
        for router in BILLING_ROUTERS:
            app.include_router(router)
    install_error_handlers(app)
    return app
