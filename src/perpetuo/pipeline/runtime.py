"""The gateway's long-lived parts, built once at start-up and shared by every request."""

from __future__ import annotations

from dataclasses import dataclass

from perpetuo.auth.authenticator import Authenticator
from perpetuo.auth.principal import Principal
from perpetuo.config.model import GatewayConfig
from perpetuo.routing.router import Router
from perpetuo.routing.table import Alias, RoutingTable
from perpetuo.schema.errors import ErrorCode, forbidden, model_not_found
from perpetuo.transport.client import HTTPClient


@dataclass(slots=True)
class Gateway:
    config: GatewayConfig
    table: RoutingTable
    client: HTTPClient
    router: Router
    authenticator: Authenticator

    def resolve_alias(self, principal: Principal, name: str) -> Alias:
        """The alias `name` if it exists and the principal may use it; 404 otherwise.

        A key restricted to other models gets the same 404 as for a missing alias, so
        a key cannot probe which aliases exist."""
        alias = self.table.get(name)
        if alias is None or not principal.may_use_model(name):
            raise model_not_found(name)
        return alias

    def visible_aliases(self, principal: Principal) -> list[Alias]:
        return [a for a in self.table.aliases.values() if principal.may_use_model(a.name)]

    @staticmethod
    def require_scope(principal: Principal, scope: str) -> None:
        if not principal.has_scope(scope):
            raise forbidden(
                f"This API key does not have the `{scope}` scope.", ErrorCode.INSUFFICIENT_SCOPE
            )

    async def aclose(self) -> None:
        await self.client.aclose()
