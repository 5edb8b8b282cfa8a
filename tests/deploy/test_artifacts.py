"""The deployment artifacts (Dockerfile, docker-compose.yml, deploy/, the Helm chart,
docs/deployment.md) against the code they deploy.

No Docker engine or helm binary is needed: files are parsed and cross-checked (settings,
routes, timeouts, ports, users). Where helm or nginx happen to be installed, the chart is also
rendered and linted, and the nginx config tested.
"""

from __future__ import annotations

import inspect
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

import perpetuo
from perpetuo.api import health
from perpetuo.api.asgi import ROUTES
from perpetuo.cli import serve as serve_cli
from perpetuo.config.settings import Settings
from perpetuo.metering.writer import UsageWriter

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
COMPOSE = ROOT / "docker-compose.yml"
DEPLOY = ROOT / "deploy"
NGINX = DEPLOY / "nginx.conf"
COMPOSE_CONFIG = DEPLOY / "perpetuo.compose.yaml"
ENV_EXAMPLE = DEPLOY / "compose.env.example"
CHART = DEPLOY / "helm" / "perpetuo"
TEMPLATES = CHART / "templates"
DOCS = ROOT / "docs" / "deployment.md"

# Read outside Settings (perpetuo.auth.credential_crypto) or being added to it.
EXTRA_VARIABLES = {
    "PERPETUO_ENCRYPTION_KEYS",
    "PERPETUO_ENCRYPTION_KEYS_FILE",
    "PERPETUO_METRICS_TOKEN",
}
VARIABLE = re.compile(r"\bPERPETUO_[A-Z][A-Z0-9_]*\b")
INTERPOLATION = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(:[-?][^}]*)?\}")
SECRET_LOOKING = re.compile(r"\b(sk-[A-Za-z0-9_-]{16,}|pk_(live|test|master)_[A-Za-z0-9_-]{16,})")


def load(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def compose() -> dict[str, Any]:
    return load(COMPOSE)


def services() -> dict[str, dict[str, Any]]:
    return compose()["services"]


def gateways() -> dict[str, dict[str, Any]]:
    return {name: s for name, s in services().items() if name.startswith("gateway")}


def values() -> dict[str, Any]:
    return load(CHART / "values.yaml")


def seconds(value: str | int) -> float:
    """'45s', '2m', '660s', 60 -> seconds."""
    if isinstance(value, int | float):
        return float(value)
    match = re.fullmatch(r"(\d+)\s*(ms|s|m|h)?", str(value).strip())
    assert match, f"not a duration: {value!r}"
    number, unit = float(match.group(1)), match.group(2) or "s"
    return number * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[unit]


def deployment_files() -> list[Path]:
    files = [DOCKERFILE, COMPOSE, DOCS, ROOT / ".dockerignore"]
    files += [p for p in DEPLOY.rglob("*") if p.is_file()]
    return files


def graceful_shutdown_seconds() -> float:
    """What `perpetuo serve` gives in-flight requests plus what the writer may take after."""
    drain = re.search(r"timeout_graceful_shutdown=(\d+)", inspect.getsource(serve_cli))
    assert drain, "perpetuo serve no longer sets timeout_graceful_shutdown"
    flush = inspect.signature(UsageWriter.stop).parameters["drain_seconds"].default
    return float(drain.group(1)) + float(flush)


# -- every file parses; nothing secret is committed ------------------------------------------


def test_every_yaml_file_parses():
    files = [COMPOSE, *DEPLOY.rglob("*.yaml"), *DEPLOY.rglob("*.yml")]
    files = [f for f in files if TEMPLATES not in f.parents]
    assert COMPOSE_CONFIG in files and CHART / "values.yaml" in files
    for path in files:
        assert isinstance(load(path), dict), path


def test_no_secret_values_are_committed():
    for path in deployment_files():
        text = path.read_text(encoding="utf-8")
        assert not SECRET_LOOKING.search(text), f"{path} contains what looks like a key"
    for line in ENV_EXAMPLE.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, value = line.partition("=")
            if re.search(r"KEY|SECRET|PASSWORD|TOKEN", name):
                assert value == "", f"{ENV_EXAMPLE.name}: {name} must be left empty"


def test_every_perpetuo_variable_is_a_real_setting():
    known = {f"PERPETUO_{name.upper()}" for name in Settings.model_fields} | EXTRA_VARIABLES
    source = (ROOT / "src" / "perpetuo" / "auth" / "credential_crypto.py").read_text()
    assert "PERPETUO_ENCRYPTION_KEYS" in source and "PERPETUO_ENCRYPTION_KEYS_FILE" in source
    used: dict[str, set[str]] = {}
    for path in deployment_files():
        for name in VARIABLE.findall(path.read_text(encoding="utf-8")):
            used.setdefault(name, set()).add(str(path.relative_to(ROOT)))
    unknown = {name: sorted(where) for name, where in used.items() if name not in known}
    assert not unknown, f"not settings of the gateway: {unknown}"
    assert {"PERPETUO_SECRET_KEY", "PERPETUO_DATABASE_URL", "PERPETUO_REDIS_URL"} <= set(used)


# -- Dockerfile ------------------------------------------------------------------------------


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with line continuations joined and comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def final_stage() -> list[tuple[str, str]]:
    steps = dockerfile_instructions()
    last_from = max(i for i, (word, _) in enumerate(steps) if word == "FROM")
    return steps[last_from:]


def test_dockerfile_is_multi_stage_from_the_lock_file():
    steps = dockerfile_instructions()
    froms = [rest for word, rest in steps if word == "FROM"]
    assert len(froms) >= 2 and any(" AS builder" in f for f in froms)
    args = dict(rest.split("=", 1) for word, rest in steps if word == "ARG" and "=" in rest)
    base = args.get("PYTHON_IMAGE", "")
    assert base.startswith("python:3.11-slim"), base
    assert all(f.split()[0] == "${PYTHON_IMAGE}" for f in froms), "stages must share one base"
    syncs = [
        re.split(r"&&|;", part)[0]
        for word, rest in steps
        if word == "RUN"
        for part in rest.split("uv sync")[1:]
    ]
    assert syncs and all("--frozen" in s and "--no-dev" in s for s in syncs), syncs
    assert any("uv.lock" in rest for word, rest in steps if word == "COPY")
    dev_script = (ROOT / "dev").read_text()
    uv_version = re.search(r'UV_VERSION="([^"]+)"', dev_script).group(1)
    assert args.get("UV_VERSION") == uv_version, "the image and ./dev must use the same uv"
    final = final_stage()
    assert any(w == "COPY" and "--from=builder" in r for w, r in final)
    assert not any(w == "RUN" and "uv " in r for w, r in final), "uv belongs to the builder"


def test_dockerfile_runs_as_a_non_root_user_owning_the_data_dir():
    final = final_stage()
    users = [rest for word, rest in final if word == "USER"]
    assert users, "the runtime stage must set USER"
    uid = users[-1].split(":")[0]
    assert uid.isdigit() and int(uid) != 0, "a numeric non-root uid (runAsNonRoot checks it)"
    env = " ".join(rest for word, rest in final if word == "ENV")
    data_dir = re.search(r"PERPETUO_DATA_DIR=(\S+)", env).group(1)
    runs = " ".join(rest for word, rest in final if word == "RUN")
    assert re.search(rf"install -d -o {uid} -g \d+ (-m \d+ )?{re.escape(data_dir)}\b", runs)
    assert values()["podSecurityContext"]["runAsUser"] == int(uid)


def test_dockerfile_serves_the_exposed_port_with_a_health_check():
    final = final_stage()
    exposed = [rest for word, rest in final if word == "EXPOSE"]
    assert exposed == ["8080"]
    entrypoint = json.loads(next(rest for word, rest in final if word == "ENTRYPOINT"))
    cmd = json.loads(next(rest for word, rest in final if word == "CMD"))
    assert entrypoint == ["perpetuo"]
    assert cmd[0] == "serve" and cmd[cmd.index("--host") + 1] == "0.0.0.0"
    assert cmd[cmd.index("--port") + 1] == exposed[0]
    check = next(rest for word, rest in final if word == "HEALTHCHECK")
    assert "curl" not in check and "python" in check
    assert f"127.0.0.1:{exposed[0]}/health/live" in check


def test_dockerignore_keeps_local_state_out_and_the_build_inputs_in():
    patterns = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    for needed in (".venv", ".git", "tests", ".perpetuo", ".env"):
        assert needed in patterns, needed
    sources = []
    for word, rest in dockerfile_instructions():
        if word == "COPY" and "--from" not in rest:
            sources += rest.split()[:-1]
    assert set(sources) >= {"pyproject.toml", "uv.lock", "README.md", "src"}
    for source in sources:
        assert source not in patterns and (ROOT / source).exists(), source


# -- docker-compose.yml ----------------------------------------------------------------------


def test_compose_has_the_topology():
    svc = services()
    assert {"postgres", "redis", "migrate", "lb"} <= set(svc)
    assert len(gateways()) >= 2
    assert svc["postgres"]["image"].startswith("postgres:16")
    assert svc["redis"]["image"].startswith("redis:7")
    for name in ("postgres", "redis", "lb", *gateways()):
        assert svc[name].get("healthcheck", {}).get("test"), f"{name} has no healthcheck"
    assert "pg_isready" in str(svc["postgres"]["healthcheck"]["test"])
    published = {name for name, s in svc.items() if s.get("ports")}
    assert published == {"lb"}, "only the load balancer is reachable from the host"
    assert any(str(p).endswith(":8080") for p in svc["lb"]["ports"])


def test_compose_starts_gateways_after_the_migration_and_healthy_stores():
    svc = services()
    migrate = svc["migrate"]
    assert migrate["command"] == ["db", "upgrade"]
    assert migrate["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert str(migrate.get("restart", "no")) == "no"
    for name, gateway in gateways().items():
        deps = gateway["depends_on"]
        assert deps["migrate"]["condition"] == "service_completed_successfully", name
        assert deps["postgres"]["condition"] == "service_healthy", name
        assert deps["redis"]["condition"] == "service_healthy", name
        assert gateway["build"]["dockerfile"] == "Dockerfile" and gateway["build"]["context"] == "."
        assert gateway["image"] == migrate["image"]
    for name in gateways():
        assert svc["lb"]["depends_on"][name]["condition"] == "service_healthy"


def test_compose_gateways_share_the_stores_and_keep_secrets_out():
    for name, gateway in gateways().items():
        env = gateway["environment"]
        assert env["PERPETUO_DATABASE_URL"].startswith("postgresql+asyncpg://"), name
        assert "@postgres:5432/" in env["PERPETUO_DATABASE_URL"]
        assert env["PERPETUO_REDIS_URL"].startswith("redis://redis:6379")
        for secret in ("PERPETUO_MASTER_KEY", "PERPETUO_SECRET_KEY", "PERPETUO_ENCRYPTION_KEYS"):
            assert re.fullmatch(rf"\$\{{{secret}:\?[^}}]+\}}", env[secret]), (name, secret)
        mounts = {m.split(":")[1]: m for m in gateway["volumes"]}
        config = mounts[env["PERPETUO_CONFIG"]]
        assert config.startswith("./deploy/perpetuo.compose.yaml:") and config.endswith(":ro")
        assert env["PERPETUO_DATA_DIR"] in mounts, "the spill directory must be a volume"
        assert gateway.get("read_only") is True
        grace = seconds(gateway["stop_grace_period"])
        assert grace > graceful_shutdown_seconds(), "SIGKILL would cut the graceful shutdown"


def strings(node: Any) -> list[str]:
    """Every string value in a parsed YAML document (comments are not values)."""
    if isinstance(node, dict):
        return [s for value in node.values() for s in strings(value)]
    if isinstance(node, list):
        return [s for value in node for s in strings(value)]
    return [node] if isinstance(node, str) else []


def test_compose_passes_every_variable_the_config_needs():
    needed = {name for s in strings(load(COMPOSE_CONFIG)) for name, _ in INTERPOLATION.findall(s)}
    assert needed, "the compose config should read provider keys from the environment"
    for name, gateway in gateways().items():
        missing = needed - set(gateway["environment"])
        assert not missing, f"{name} does not pass {sorted(missing)}"


def test_compose_required_variables_are_in_the_env_example():
    required = {
        name
        for s in strings(compose())
        for name, rule in INTERPOLATION.findall(s)
        if rule.startswith(":?")
    }
    listed = {
        line.split("=", 1)[0].lstrip("# ").strip()
        for line in ENV_EXAMPLE.read_text().splitlines()
        if "=" in line
    }
    assert required and required <= listed, sorted(required - listed)


def test_compose_config_passes_check_config():
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    result = subprocess.run(
        [sys.executable, "-m", "perpetuo", "check-config", str(COMPOSE_CONFIG)],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    assert "OK" in result.stdout


# -- probes and health checks ----------------------------------------------------------------


def probe_paths() -> dict[str, str]:
    """Where each health check points: compose healthchecks, the image's, the chart's probes."""
    paths: dict[str, str] = {}
    for name, gateway in gateways().items():
        found = re.findall(
            r"http://127\.0\.0\.1:8080(/[^'\"\s]*)", str(gateway["healthcheck"]["test"])
        )
        assert len(found) == 1, name
        paths[f"compose:{name}"] = found[0]
    healthcheck = next(rest for word, rest in final_stage() if word == "HEALTHCHECK")
    paths["Dockerfile"] = re.search(r"http://127\.0\.0\.1:\d+(/[^'\"\s]*)", healthcheck).group(1)
    for kind, probe in values()["probes"].items():
        paths[f"helm:{kind}"] = probe["path"]
    return paths


def test_probe_paths_are_routes_of_the_gateway():
    paths = probe_paths()
    assert {"helm:startup", "helm:readiness", "helm:liveness", "Dockerfile"} <= set(paths)
    for where, path in paths.items():
        assert "GET" in ROUTES.get(path, {}), f"{where}: GET {path} is not a route"
    assert paths["helm:liveness"] == "/health/live"
    assert paths["helm:readiness"] == "/health/ready"


def test_readiness_probe_waits_for_every_dependency_check():
    """/health/ready checks the store and Redis one after the other, each with a deadline:
    a probe timeout below their sum fails exactly when a dependency is merely slow."""
    ready = inspect.getsource(health.ready)
    deadline = re.search(r"asyncio\.timeout\(([\d.]+)\)", inspect.getsource(health._timed))
    assert deadline, "health._timed no longer bounds each check"
    worst = ready.count("_timed(") * float(deadline.group(1))
    assert values()["probes"]["readiness"]["timeoutSeconds"] > worst


# -- nginx -----------------------------------------------------------------------------------


def nginx_directives() -> list[str]:
    return [
        line.split("#", 1)[0].strip()
        for line in NGINX.read_text().splitlines()
        if line.split("#", 1)[0].strip()
    ]


def test_nginx_balances_every_gateway_without_buffering():
    text = "\n".join(nginx_directives())
    assert text.count("{") == text.count("}")
    for name in gateways():
        assert re.search(rf"server {name}:8080\b", text), f"{name} is not in the upstream"
    assert "listen 8080;" in text
    for directive in (
        "proxy_buffering off;",
        "proxy_http_version 1.1;",
        'proxy_set_header Connection "";',
        "proxy_set_header X-Forwarded-For $remote_addr;",
    ):
        assert directive in text, directive
    assert "$proxy_add_x_forwarded_for" not in text, "a client could forge its address"
    assert re.search(r"^\s*keepalive \d+;", text, re.M)
    config = load(COMPOSE_CONFIG)
    read = seconds(re.search(r"proxy_read_timeout (\S+);", text).group(1))
    assert read > config["routing"]["request_timeout"]
    body = re.search(r"client_max_body_size (\d+)m;", text).group(1)
    assert int(body) * 1024 * 1024 > config["server"]["max_request_body_bytes"]
    for name, gateway in gateways().items():
        assert gateway["environment"]["PERPETUO_TRUSTED_PROXIES"] == "*", name


@pytest.mark.skipif(shutil.which("nginx") is None, reason="nginx is not installed")
def test_nginx_config_is_accepted_by_nginx(tmp_path):
    # `resolve` needs nginx >= 1.27.3 and Docker's DNS: test the rest on loopback addresses.
    text = NGINX.read_text().replace(" resolve ", " ")
    text = re.sub(r"^\s*resolver .*$", "", text, flags=re.M)
    for i, name in enumerate(gateways()):
        text = text.replace(f"{name}:8080", f"127.0.0.1:{18081 + i}")
    conf = tmp_path / "nginx.conf"
    conf.write_text(text)
    result = subprocess.run(
        [
            "nginx",
            "-t",
            "-p",
            str(tmp_path),
            "-c",
            str(conf),
            "-e",
            str(tmp_path / "error.log"),
            "-g",
            f"pid {tmp_path}/nginx.pid;",
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr


# -- Helm chart ------------------------------------------------------------------------------

ACTION = re.compile(r"\{\{-?(.*?)-?\}\}", re.S)
OPENERS = {"if", "with", "range", "define", "block"}
VALUES_REF = re.compile(r"\$?\.Values((?:\.[A-Za-z_][A-Za-z0-9_]*)+)")


def template_files() -> list[Path]:
    files = sorted(p for p in TEMPLATES.iterdir() if p.suffix in {".yaml", ".tpl", ".txt"})
    assert files
    return files


def actions(path: Path) -> list[str]:
    return [a.strip() for a in ACTION.findall(path.read_text())]


def check_blocks(path: Path) -> None:
    text = path.read_text()
    assert text.count("{{") == text.count("}}"), f"{path.name}: unbalanced braces"
    stack: list[str] = []
    for action in actions(path):
        if action.startswith("/*"):
            assert action.endswith("*/"), f"{path.name}: unterminated comment"
            continue
        word = action.split()[0] if action.split() else ""
        word = word.lstrip("(")
        if word in OPENERS:
            stack.append(word)
        elif word == "else":
            assert stack and stack[-1] in {"if", "with", "range"}, f"{path.name}: stray else"
        elif word == "end":
            assert stack, f"{path.name}: end without an opening block"
            stack.pop()
    assert not stack, f"{path.name}: unclosed {stack}"


def test_check_blocks_catches_mistakes(tmp_path):
    bad = tmp_path / "bad.yaml"
    for text in ("{{- if .Values.a }}\nx: 1\n", "{{ end }}", "{{ .Values.a }", "{{ else }}"):
        bad.write_text(text)
        with pytest.raises(AssertionError):
            check_blocks(bad)


def test_templates_balance_their_blocks():
    for path in template_files():
        check_blocks(path)


def test_templates_reference_only_defined_values():
    defined = values()
    referenced: set[str] = set()
    for path in template_files():
        for action in actions(path):
            if action.startswith("/*"):
                continue
            for match in VALUES_REF.finditer(action):
                dotted = match.group(1).lstrip(".")
                referenced.add(dotted.split(".")[0])
                node: Any = defined
                for part in dotted.split("."):
                    assert isinstance(node, dict) and part in node, (
                        f"{path.name}: .Values.{dotted} is not in values.yaml"
                    )
                    node = node[part]
    unused = set(defined) - referenced
    assert not unused, f"values.yaml keys no template uses: {sorted(unused)}"


def test_templates_include_only_defined_helpers():
    defined = set()
    for path in template_files():
        defined.update(re.findall(r'\{\{-?\s*define "([^"]+)"', path.read_text()))
    for path in template_files():
        for name in re.findall(r'include "([^"]+)"', path.read_text()):
            assert name in defined, f"{path.name}: include of undefined {name!r}"


def test_chart_has_the_required_resources():
    kinds = {}
    for path in template_files():
        text = path.read_text()
        for api, kind in re.findall(r"^apiVersion: (\S+)\nkind: (\S+)", text, re.M):
            kinds[kind] = (api, path.name)
    assert kinds["Deployment"][0] == "apps/v1"
    assert kinds["HorizontalPodAutoscaler"][0] == "autoscaling/v2"
    assert kinds["PodDisruptionBudget"][0] == "policy/v1"
    assert kinds["Job"][0] == "batch/v1"
    assert {"Service", "ConfigMap", "ServiceAccount"} <= set(kinds)
    assert (TEMPLATES / "NOTES.txt").exists() and (TEMPLATES / "_helpers.tpl").exists()
    job = (TEMPLATES / kinds["Job"][1]).read_text()
    assert "helm.sh/hook: pre-install,pre-upgrade" in job and '["db", "upgrade"]' in job
    deployment = (TEMPLATES / kinds["Deployment"][1]).read_text()
    for needed in (
        "readinessProbe:",
        "livenessProbe:",
        "startupProbe:",
        "checksum/config:",
        "enableServiceLinks: false",
        "configMap:",
        "mountPath: /var/lib/perpetuo",
    ):
        assert needed in deployment, needed
    helpers = (TEMPLATES / "_helpers.tpl").read_text()
    assert "secretKeyRef:" in helpers
    hpa = (TEMPLATES / kinds["HorizontalPodAutoscaler"][1]).read_text()
    assert "name: cpu" in hpa


def test_chart_values_are_safe_defaults():
    v = values()
    chart = load(CHART / "Chart.yaml")
    assert chart["apiVersion"] == "v2" and chart["name"] == "perpetuo"
    assert chart["appVersion"] == perpetuo.__version__
    assert v["podSecurityContext"]["runAsNonRoot"] is True
    assert v["securityContext"]["readOnlyRootFilesystem"] is True
    assert v["securityContext"]["allowPrivilegeEscalation"] is False
    budget = v["terminationGracePeriodSeconds"] - v["preStopSleepSeconds"]
    assert budget > graceful_shutdown_seconds(), "SIGKILL would cut the graceful shutdown"
    scaling = v["autoscaling"]
    assert 0 < scaling["targetCPUUtilizationPercentage"] <= 100
    assert 2 <= scaling["minReplicas"] <= scaling["maxReplicas"]
    assert v["pdb"]["minAvailable"] < scaling["minReplicas"]
    assert v["resources"]["requests"]["cpu"] and v["resources"]["limits"]["memory"]
    for name in ("masterKey", "secretKey", "databaseUrl", "redisUrl"):
        assert v["secrets"][name]["name"] and v["secrets"][name]["key"], name
    annotations = v["ingress"]["annotations"]
    assert annotations["nginx.ingress.kubernetes.io/proxy-buffering"] == "off"
    read = int(annotations["nginx.ingress.kubernetes.io/proxy-read-timeout"])
    assert read > v["config"]["routing"]["request_timeout"]


def test_chart_config_passes_check_config(tmp_path):
    path = tmp_path / "perpetuo.yaml"
    path.write_text(yaml.safe_dump(values()["config"]))
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    result = subprocess.run(
        [sys.executable, "-m", "perpetuo", "check-config", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert result.returncode == 0, result.stderr


# -- docs ------------------------------------------------------------------------------------


def test_deployment_doc_names_files_that_exist():
    text = DOCS.read_text()
    for path in set(
        re.findall(r"`((?:deploy/|docs/)[\w./-]+|Dockerfile|docker-compose\.yml)`", text)
    ):
        assert (ROOT / path).exists(), path
    for link in re.findall(r"\]\(([\w./-]+\.md)(?:#[\w-]+)?\)", text):
        assert (DOCS.parent / link).exists(), link
    readme = (ROOT / "README.md").read_text()
    assert "(docs/deployment.md)" in readme
