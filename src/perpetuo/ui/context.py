"""The workspace a page is about, taken from its URL, and the visitor's role in it.

Someone with no role in the workspace gets 404, exactly as the admin API answers. Pages use
`can()` to hide what the role cannot do; handlers call `require()` before acting, and the
services check the role again.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse

from perpetuo.control.actor import Actor, Role
from perpetuo.control.errors import forbidden, not_found
from perpetuo.control.plane import ControlPlane
from perpetuo.control.workspaces import WorkspaceSettings, effective_settings, get_row
from perpetuo.pipeline.runtime import Gateway
from perpetuo.ui.render import render
from perpetuo.ui.session import Visitor, VisitorDep, plane_of


@dataclass(frozen=True)
class NavItem:
    slug: str
    label: str
    minimum: Role = Role.VIEWER
    offer: str = ""  # shown only when the server offers it ("billing", "referrals")


NAV = (
    NavItem("", "Overview"),
    NavItem("playground", "Playground", Role.MEMBER),
    NavItem("models", "Models"),
    NavItem("providers", "Providers"),
    NavItem("keys", "API keys"),
    NavItem("logs", "Request logs"),
    NavItem("sessions", "Chat sessions"),
    NavItem("usage", "Usage and cost"),
    NavItem("limits", "Limits and plan"),
    NavItem("alerts", "Alerts"),
    NavItem("billing", "Billing", offer="billing"),
    NavItem("referrals", "Referrals", offer="referrals"),
    NavItem("members", "Members"),
    NavItem("teams", "Teams"),
    NavItem("audit", "Audit log", Role.ADMIN),
    NavItem("sso", "Single sign-on", Role.ADMIN),
    NavItem("settings", "Settings"),
)


@dataclass(frozen=True)
class WorkspacePage:
    request: Request
    visitor: Visitor
    workspace: Any  # the workspaces row
    role: Role

    @property
    def id(self) -> str:
        return self.workspace.id

    @property
    def name(self) -> str:
        return self.workspace.name

    @property
    def settings(self) -> WorkspaceSettings:
        return effective_settings(self.workspace.settings)

    @property
    def plane(self) -> ControlPlane:
        return plane_of(self.request)

    @property
    def gateway(self) -> Gateway:
        return self.request.app.state.gateway

    @property
    def actor(self) -> Actor:
        return self.visitor.actor

    @property
    def nav(self) -> list[NavItem]:
        return [item for item in NAV if self.role >= item.minimum and self.offers(item.offer)]

    def offers(self, offer: str) -> bool:
        billing = self.plane.billing
        if offer == "billing":
            return billing is not None
        if offer == "referrals":
            return billing is not None and billing.config.referrals.enabled
        return True

    def url(self, suffix: str = "") -> str:
        return f"/ui/w/{self.id}" + (f"/{suffix}" if suffix else "")

    def can(self, minimum: str) -> bool:
        return self.role >= Role.parse(minimum)

    def require(self, minimum: Role) -> None:
        if self.role < minimum:
            raise forbidden(f"This needs the {minimum.label} role or higher in this workspace.")


async def workspace_page(request: Request, workspace_id: str, visitor: VisitorDep) -> WorkspacePage:
    role = visitor.role_in(workspace_id)
    async with plane_of(request).db.connect() as conn:
        row = await get_row(conn, workspace_id)
    if row is not None and role is None and visitor.is_superadmin:
        role = Role.OWNER  # platform administrators act as owners everywhere
    if row is None or role is None:
        raise not_found("Workspace")
    return WorkspacePage(request, visitor, row, role)


PageDep = Annotated[WorkspacePage, Depends(workspace_page)]


def show(page: WorkspacePage, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    """A workspace page: the layout needs the page, the visitor and the CSRF token."""
    return render(
        page.request,
        template,
        status,
        page=page,
        visitor=page.visitor,
        csrf=page.visitor.csrf,
        **context,
    )
