"""From a fresh clone to a first answer, as the README tells a new user: run its first
command (`./dev serve`) in a clean copy of the repository, then its first request, on a
machine with no provider keys. The time it takes is written to test-artifacts/."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import httpx

from tests.support.gateway import free_port

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
PROVIDER_KEYS = ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GEMINI_API_KEY")


def readme_first_request() -> str:
    """The shell block under "A first request"."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## A first request", 1)[1]
    return re.search(r"```bash\n(.*?)```", section, re.S).group(1)


def test_readme_first_command_then_first_request(tmp_path):
    started = time.monotonic()
    clone = tmp_path / "perpetuo"
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(clone)], check=True, timeout=60)
    port = free_port()
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in PROVIDER_KEYS and not k.startswith("PERPETUO_")
    }
    log = (tmp_path / "serve.log").open("wb")
    serve = subprocess.Popen(
        ["./dev", "serve", "--port", str(port)],
        cwd=clone,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 240
        while True:
            assert serve.poll() is None, (tmp_path / "serve.log").read_text()
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, (tmp_path / "serve.log").read_text()
            time.sleep(0.2)
        command = readme_first_request().replace("127.0.0.1:8080", f"127.0.0.1:{port}")
        answer = subprocess.run(
            ["bash", "-c", command], cwd=clone, capture_output=True, text=True, timeout=30
        )
        elapsed = time.monotonic() - started
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(serve.pid, signal.SIGTERM)
        serve.wait(30)
        log.close()
    assert '"content":"[demo]' in answer.stdout, answer.stdout + answer.stderr
    said = (tmp_path / "serve.log").read_text()
    # It said what it was doing, what it loaded, and where things are.
    assert "perpetuo: installing the runtime packages from uv.lock" in said
    assert re.search(r"config: +\S*examples/perpetuo\.example\.yaml \(\d+ model aliases\)", said)
    assert f"dashboard:  http://127.0.0.1:{port}/ui" in said
    assert "OPENAI_API_KEY is not set" in said
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "first-run.txt").write_text(
        f"clone to first answer: {elapsed:.1f} s (git clone, ./dev serve with a fresh .venv, "
        "the README's curl)\n"
    )
    assert elapsed < 180, f"clone to first answer took {elapsed:.0f} s"
