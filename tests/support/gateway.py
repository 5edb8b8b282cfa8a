"""Run the real gateway as a separate process (`python -m perpetuo serve`) for tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import yaml

MASTER_KEY = "pk-test-master-key-0123456789"
# The test machine's own proxy settings would send the gateway's calls to the mocks through
# that proxy: a test that wants one passes it in `env`.
PROXY_VARIABLES = {"http_proxy", "https_proxy", "no_proxy", "all_proxy"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class GatewayProcess:
    def __init__(
        self,
        config: dict[str, Any],
        workdir: Path,
        env: dict[str, str] | None = None,
        args: list[str] | None = None,
    ) -> None:
        self.config = config
        self.workdir = workdir
        self.env = env or {}
        self.args = args or []
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = workdir / f"gateway-{self.port}.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def config_path(self) -> Path:
        return self.workdir / f"config-{self.port}.yaml"

    def start(self, timeout: float = 20.0) -> GatewayProcess:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(yaml.safe_dump(self.config, sort_keys=False))
        env = {
            **{k: v for k, v in os.environ.items() if k.lower() not in PROXY_VARIABLES},
            "PERPETUO_MASTER_KEY": MASTER_KEY,
            "PERPETUO_DATA_DIR": str(self.workdir / "data"),
            **self.env,
        }
        cmd = [
            sys.executable,
            "-m",
            "perpetuo",
            "serve",
            "--config",
            str(self.config_path),
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            *self.args,
        ]
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(cmd, env=env, stdout=self._log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gateway exited early:\n{self.log()}")
            try:
                if httpx.get(f"{self.url}/health/live", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"gateway did not become ready:\n{self.log()}")

    def write_config(self, config: dict[str, Any]) -> None:
        """Replace the config file (the running gateway reads it on reload)."""
        self.config = config
        self.config_path.write_text(yaml.safe_dump(config, sort_keys=False))

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        return self.proc.returncode

    def __enter__(self) -> GatewayProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
