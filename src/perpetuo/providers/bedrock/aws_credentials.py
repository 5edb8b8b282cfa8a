"""Where a Bedrock provider's AWS credentials come from, in the order AWS's SDKs look.

1. Keys written in the config (`aws_access_key_id`, `aws_secret_access_key`, and
   `aws_session_token` for temporary ones).
2. `aws_profile`: that profile of the shared files (`~/.aws/credentials`, then
   `~/.aws/config`; `AWS_SHARED_CREDENTIALS_FILE` / `AWS_CONFIG_FILE` move them).
3. With `credential_chain: true` only (an operator's choice, never a tenant's): the
   environment (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`), the
   shared files' `AWS_PROFILE` (or `default`) profile, the container credentials endpoint
   (ECS, EKS Pod Identity: `AWS_CONTAINER_CREDENTIALS_RELATIVE_URI` or `_FULL_URI`, with
   `AWS_CONTAINER_AUTHORIZATION_TOKEN[_FILE]`), and the EC2 instance role through IMDSv2
   (`AWS_EC2_METADATA_SERVICE_ENDPOINT` moves it; `AWS_EC2_METADATA_DISABLED=true` skips it).

Keys found in the config, the environment or the files are read when the config is loaded;
container and instance credentials are fetched on first use and refreshed before they expire
(providers/credentials.py). Profiles that assume roles, use SSO or run a process are not
read: such credentials can reach the gateway through the environment or a container role.
"""

from __future__ import annotations

import configparser
import os
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from perpetuo.providers.base import CredentialSource
from perpetuo.providers.bedrock.sigv4 import AwsCredentials
from perpetuo.providers.credentials import (
    FETCH_CAPS,
    FETCH_TIMEOUTS,
    RefreshingCredentials,
    fetch_json,
    fingerprint,
)
from perpetuo.schema.errors import UpstreamError, UpstreamErrorKind
from perpetuo.transport.url import URL

if TYPE_CHECKING:
    from perpetuo.transport.client import HTTPClient

CONTAINER_HOST = "http://169.254.170.2"
IMDS_ENDPOINT = "http://169.254.169.254"
IMDS_TOKEN_TTL = "21600"  # noqa: S105 (seconds, not a secret)


class StaticAwsCredentials:
    """Keys that do not expire in the gateway's hands: nothing to fetch."""

    def __init__(self, credentials: AwsCredentials) -> None:
        self._credentials = credentials

    async def ready(self, client: HTTPClient) -> None:
        return None

    def current(self) -> AwsCredentials:
        return self._credentials


class RemoteAwsCredentials(RefreshingCredentials[AwsCredentials]):
    """A container credentials endpoint, else the instance metadata service (IMDSv2)."""

    what = "AWS role credentials"

    def __init__(self, env: Mapping[str, str]) -> None:
        self.container_url, self.container_token = _container(env)
        self.imds = None
        if env.get("AWS_EC2_METADATA_DISABLED", "").lower() != "true":
            self.imds = env.get("AWS_EC2_METADATA_SERVICE_ENDPOINT") or IMDS_ENDPOINT
        super().__init__(fingerprint("aws-remote", self.container_url or "", self.imds or ""))

    @property
    def available(self) -> bool:
        return bool(self.container_url or self.imds)

    async def fetch(self, client: HTTPClient) -> tuple[AwsCredentials, float | None]:
        if self.container_url:
            headers = [("accept", "application/json")]
            if self.container_token:
                headers.append(("authorization", self.container_token))
            data = await fetch_json(
                client, "GET", self.container_url, headers, what="AWS container credentials"
            )
        else:
            assert self.imds is not None
            data = await self._from_imds(client, self.imds.rstrip("/"))
        return _parse(data)

    @staticmethod
    async def _from_imds(client: HTTPClient, base: str) -> dict[str, object]:
        response = await client.request(
            "PUT",
            URL.parse(f"{base}/latest/api/token"),
            [("x-aws-ec2-metadata-token-ttl-seconds", IMDS_TOKEN_TTL)],
            b"",
            FETCH_TIMEOUTS,
            caps=FETCH_CAPS,
        )
        token = (await response.read()).decode("ascii", "replace").strip()
        if response.status >= 300 or not token:
            status = response.status
            raise _missing(f"the instance metadata service refused a token (HTTP {status})")
        auth = [("x-aws-ec2-metadata-token", token)]
        roles = await client.request(
            "GET",
            URL.parse(f"{base}/latest/meta-data/iam/security-credentials/"),
            auth,
            timeouts=FETCH_TIMEOUTS,
            caps=FETCH_CAPS,
        )
        names = (await roles.read()).decode("utf-8", "replace").split()
        if roles.status >= 300 or not names:
            raise _missing("this instance has no IAM role")
        return await fetch_json(
            client,
            "GET",
            f"{base}/latest/meta-data/iam/security-credentials/{names[0]}",
            auth,
            what="AWS instance credentials",
        )


def _parse(data: Mapping[str, object]) -> tuple[AwsCredentials, float | None]:
    key, secret = data.get("AccessKeyId"), data.get("SecretAccessKey")
    token = data.get("Token")
    if not isinstance(key, str) or not isinstance(secret, str) or not key or not secret:
        raise UpstreamError(
            UpstreamErrorKind.BAD_RESPONSE, "the AWS credentials endpoint sent no keys"
        )
    expires = None
    if isinstance(data.get("Expiration"), str):
        try:
            when = str(data["Expiration"]).replace("Z", "+00:00")
            expires = datetime.fromisoformat(when).timestamp()
        except ValueError:
            expires = None
    return AwsCredentials(key, secret, token if isinstance(token, str) and token else None), expires


def _container(env: Mapping[str, str]) -> tuple[str | None, str | None]:
    relative = env.get("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI")
    full = env.get("AWS_CONTAINER_CREDENTIALS_FULL_URI")
    url = f"{CONTAINER_HOST}{relative}" if relative else full
    token = env.get("AWS_CONTAINER_AUTHORIZATION_TOKEN")
    token_file = env.get("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE")
    if token_file and not token:
        try:
            token = Path(token_file).read_text().strip()
        except OSError:
            token = None
    return url or None, token or None


def _missing(why: str) -> UpstreamError:
    error = UpstreamError(UpstreamErrorKind.NOT_CONFIGURED, f"no AWS credentials: {why}")
    error.cause = f"no AWS credentials: {why}"
    return error


# --- keys read when the config loads ----------------------------------------------------------


def from_environment(env: Mapping[str, str]) -> AwsCredentials | None:
    key, secret = env.get("AWS_ACCESS_KEY_ID"), env.get("AWS_SECRET_ACCESS_KEY")
    if key and secret:
        return AwsCredentials(key, secret, env.get("AWS_SESSION_TOKEN") or None)
    return None


def from_profile(profile: str, env: Mapping[str, str]) -> AwsCredentials | None:
    """The profile's keys from the shared credentials file, else the config file."""
    home = Path(env.get("HOME") or Path.home())
    files = (
        (Path(env.get("AWS_SHARED_CREDENTIALS_FILE") or home / ".aws" / "credentials"), profile),
        (
            Path(env.get("AWS_CONFIG_FILE") or home / ".aws" / "config"),
            profile if profile == "default" else f"profile {profile}",
        ),
    )
    for path, section in files:
        parser = configparser.RawConfigParser()
        try:
            parser.read(path, encoding="utf-8")
        except (configparser.Error, OSError):
            continue
        if not parser.has_section(section):
            continue
        values = dict(parser.items(section))
        key, secret = values.get("aws_access_key_id"), values.get("aws_secret_access_key")
        if key and secret:
            return AwsCredentials(key, secret, values.get("aws_session_token") or None)
    return None


def profile_region(profile: str, env: Mapping[str, str]) -> str | None:
    home = Path(env.get("HOME") or Path.home())
    parser = configparser.RawConfigParser()
    try:
        parser.read(Path(env.get("AWS_CONFIG_FILE") or home / ".aws" / "config"), encoding="utf-8")
    except (configparser.Error, OSError):
        return None
    section = profile if profile == "default" else f"profile {profile}"
    return parser.get(section, "region", fallback=None) or None


def resolve(
    *,
    key_id: str | None,
    secret: str | None,
    token: str | None,
    profile: str | None,
    chain: bool,
    env: Mapping[str, str] | None = None,
) -> tuple[CredentialSource | None, str | None]:
    """(the credential source, None) or (None, why there is none)."""
    env = os.environ if env is None else env
    if key_id and secret:
        return StaticAwsCredentials(AwsCredentials(key_id, secret, token or None)), None
    if profile:
        found = from_profile(profile, env)
        if found is None:
            return None, f"no AWS keys in profile {profile!r} of the shared credentials files"
        return StaticAwsCredentials(found), None
    if not chain:
        return None, (
            "no AWS credentials configured (set aws_access_key_id and aws_secret_access_key, "
            "aws_profile, api_key, or credential_chain: true)"
        )
    found = from_environment(env) or from_profile(env.get("AWS_PROFILE") or "default", env)
    if found is not None:
        return StaticAwsCredentials(found), None
    remote = RemoteAwsCredentials(env)
    if remote.available:
        return remote, None
    return None, "no AWS credentials found in the environment, shared files or instance roles"
