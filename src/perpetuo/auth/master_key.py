"""The bootstrap master key: from PERPETUO_MASTER_KEY, else generated once into the data dir."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

FILE_NAME = "master.key"


def master_key_file(data_dir: Path) -> Path:
    return data_dir / FILE_NAME


def read_master_key(data_dir: Path) -> str | None:
    try:
        return master_key_file(data_dir).read_text(encoding="utf-8").strip() or None
    except FileNotFoundError:
        return None


def ensure_master_key(data_dir: Path) -> tuple[str, bool]:
    """(key, created): reads the stored key or writes a new one, readable by the owner only."""
    existing = read_master_key(data_dir)
    if existing:
        return existing, False
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)  # private when we create it
    key = "pk_master_" + secrets.token_urlsafe(32)
    path = master_key_file(data_dir)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(key + "\n")
    return key, True
