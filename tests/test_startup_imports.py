"""A gateway loads what its configuration uses: start-up time and idle memory are targets
(docs/performance.md), and every module imported at start is paid by every process."""

from __future__ import annotations

import subprocess
import sys

PROBE = """
import sys, tempfile
import perpetuo.app
from perpetuo.store.database import Database
from perpetuo.providers.registry import ADAPTERS, adapter_for
Database(f"sqlite+aiosqlite:///{tempfile.mkdtemp()}/p.db")
adapter_for("openai")
print(" ".join(name for name in sys.argv[1:] if name in sys.modules))
names = sorted(ADAPTERS)
adapter_for("bedrock")
print(" ".join(names), "|", "perpetuo.providers.bedrock" in sys.modules)
"""

OPTIONAL = (
    "sqlalchemy.dialects.postgresql",
    "perpetuo.providers.bedrock",
    "perpetuo.providers.vertex",
    "perpetuo.providers.gemini",
    "perpetuo.providers.cohere",
)


def test_a_sqlite_gateway_with_openai_loads_no_other_dialect_or_adapter():
    out = subprocess.run(
        [sys.executable, "-c", PROBE, *OPTIONAL], capture_output=True, text=True, check=True
    )
    loaded, registry = out.stdout.splitlines()
    assert loaded == ""  # none of them
    names, bedrock_loaded = registry.split(" | ")
    # Every provider type is still known by name, and an optional one loads when looked up.
    assert {"openai", "azure", "anthropic", "gemini", "bedrock", "vertex", "cohere"} <= set(
        names.split()
    )
    assert bedrock_loaded == "True"
