"""The control plane's long-lived parts, shared by the admin API, the CLI and the gateway."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from perpetuo.auth.credential_crypto import Keyring
from perpetuo.auth.secrets import DerivedKeys
from perpetuo.auth.throttle import LoginThrottle
from perpetuo.config.currency import CurrencyConfig
from perpetuo.config.keys import ApiKeysConfig
from perpetuo.control.changes import ChangeFeed
from perpetuo.control.mail import Mailer
from perpetuo.control.sso.directory import SsoDirectory
from perpetuo.store.database import Database
from perpetuo.transport.egress import EgressPolicy

if TYPE_CHECKING:
    from perpetuo.control.billing import Billing


@dataclass
class TokenPolicy:
    access_ttl: float = 15 * 60
    refresh_ttl: float = 30 * 24 * 3600
    invite_ttl: float = 7 * 24 * 3600
    rotation_grace: float = 24 * 3600  # default grace period of a rotated key's old secret


@dataclass
class ControlPlane:
    db: Database
    keys: DerivedKeys
    changes: ChangeFeed
    keyring: Keyring | None = None
    tokens: TokenPolicy = field(default_factory=TokenPolicy)
    signup_policy: str = "invite"  # open | invite | closed (the first account is always allowed)
    throttle: LoginThrottle = field(default_factory=LoginThrottle)  # in memory unless given
    # Told of every credit grant or adjustment (workspace id, micro-USD): the limits engine's
    # LimitEngine.credits_granted, so live balances move with the ledger.
    credit_listener: Callable[[str, int], Awaitable[None]] | None = None
    # Where tenant-supplied URLs may point (the operator's `egress` settings).
    egress: EgressPolicy = field(default_factory=EgressPolicy)
    # Mail (control/mail/): a Mailer without SMTP settings queues nothing.
    mail: Mailer = field(default_factory=Mailer)
    # Single sign-on providers: the config file's, and the way to workspaces' (control/sso/).
    sso: SsoDirectory = field(default_factory=SsoDirectory)
    require_email_verification: bool = False
    # Selling credits and plans (control/billing/): None on a server that sells nothing.
    billing: Billing | None = None
    # The config's api_keys section: the environments keys may be created in.
    api_keys: ApiKeysConfig = field(default_factory=ApiKeysConfig)
    # The config's currency section: exchange rates for showing costs (control/money.py).
    currency: CurrencyConfig = field(default_factory=CurrencyConfig)
