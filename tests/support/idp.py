"""The identity provider the SSO tests sign in against: node-oidc-provider, configured by
tests/support/oidc_idp/server.js, in a process of its own on a loopback port.

Its packages are installed from the committed lock file (`npm ci`) the first time, and again
when the lock file changes; that install is the only thing that needs the network.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx

from tests.support.gateway import free_port

IDP_DIR = Path(__file__).resolve().parent / "oidc_idp"


def install() -> None:
    """`npm ci` unless node_modules already holds what package-lock.json says."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        raise RuntimeError("the SSO tests need Node.js 20+ and npm (on PATH)")
    digest = hashlib.sha256((IDP_DIR / "package-lock.json").read_bytes()).hexdigest()
    stamp = IDP_DIR / "node_modules" / ".perpetuo-lock"
    # Test workers running side by side install once: the others wait for the first.
    with (IDP_DIR / ".install.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if stamp.is_file() and stamp.read_text() == digest:
            return
        subprocess.run(
            ["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=IDP_DIR,
            check=True,
            timeout=600,
        )
        stamp.write_text(digest)


class IdentityProvider:
    """`users`: {username: {password, email, email_verified, name, groups}}."""

    def __init__(self, users: dict[str, dict[str, Any]], workdir: Path) -> None:
        self.users = users
        self.workdir = workdir
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = workdir / "idp.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> IdentityProvider:
        install()
        config = self.workdir / "idp.json"
        config.write_text(json.dumps({"users": self.users, "clients": []}))
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            ["node", str(IDP_DIR / "server.js"), str(config), str(self.port)],
            cwd=IDP_DIR,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the identity provider exited:\n{self.log()}")
            try:
                self.stats()
                return self
            except httpx.HTTPError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"the identity provider did not start:\n{self.log()}")

    def _post(self, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        response = httpx.post(f"{self.url}/__test/{path}", json=body or {}, timeout=10)
        response.raise_for_status()
        return response.json()

    def add_client(
        self, client_id: str, secret: str, redirect_uri: str, post_logout_uri: str
    ) -> None:
        self._post(
            "clients",
            {
                "client_id": client_id,
                "client_secret": secret,
                "redirect_uris": [redirect_uri],
                "post_logout_redirect_uris": [post_logout_uri],
            },
        )

    def rotate_keys(self) -> dict[str, Any]:
        """A new signing key signs from now on; the old one stays published."""
        return self._post("rotate")

    def spoil_tokens(self, **mode: Any) -> None:
        """The next ID tokens: audience="x", expired=True or unknown_key=True."""
        self._post("tokens", mode)

    def reset(self) -> None:
        self._post("reset")

    def stats(self) -> dict[str, Any]:
        """{"jwks": key-set fetches, "token": ID tokens issued, "kids": published keys}."""
        return httpx.get(f"{self.url}/__test/stats", timeout=5).json()

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc is not None:
            self._log.close()
