"""What the gateway writes to its data directory is readable by its own account only: the
directory 0700, the SQLite database with its WAL and shared-memory files, the server secret,
the master key and the spill directory."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import httpx

from perpetuo.auth.master_key import ensure_master_key
from tests.support.gateway import GatewayProcess


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_fresh_data_directory_is_private(tmp_path):
    with GatewayProcess({"models": {}}, tmp_path, env={"PERPETUO_SIGNUP": "open"}) as gateway:
        signed = httpx.post(
            f"{gateway.url}/api/auth/signup",
            json={"email": "root@example.com", "password": "correct horse battery 9"},
            timeout=30,
        )
        assert signed.status_code == 201, signed.text  # a write: the WAL is in use
        data = tmp_path / "data"
        files = ["perpetuo.db", "perpetuo.db-wal", "perpetuo.db-shm", "secret.key"]
        for name in files:
            assert mode(data / name) == 0o600, name
        assert mode(data) == 0o700
        assert mode(data / "spill") == 0o700


def test_files_left_readable_by_an_older_version_are_tightened(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    with GatewayProcess({"models": {}}, tmp_path):
        pass
    os.chmod(data / "perpetuo.db", 0o644)
    with GatewayProcess({"models": {}}, tmp_path) as gateway:
        assert httpx.get(f"{gateway.url}/health/live").status_code == 200
        assert mode(data / "perpetuo.db") == 0o600
        assert all(mode(p) == 0o600 for p in data.glob("perpetuo.db-*"))


def test_the_generated_master_key_is_private(tmp_path):
    key, created = ensure_master_key(tmp_path / "fresh")
    assert created and key.startswith("pk_master_")
    assert mode(tmp_path / "fresh") == 0o700
    assert mode(tmp_path / "fresh" / "master.key") == 0o600
