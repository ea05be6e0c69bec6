"""End to end in a real browser: `airflow standalone` (project plugin and DAGs, SQLite) and
headless Debian Chromium driven over the DevTools protocol. A reviewer logs in to Airflow,
opens the docsync quarantine page from the Airflow UI, retries a document, and sees it
indexed after the next sync; the freshness page renders; the collection Asset the sync
DAG updates triggers a downstream DAG. Screenshots go to test-artifacts/ui/."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.support.airflow_env import AIRFLOW, REPO, airflow_env
from tests.support.cdp import Browser

ARTIFACTS = REPO / "test-artifacts" / "ui"
DOC = "handbook/travel-policy.txt"
DOWNSTREAM = '''
from datetime import datetime

from airflow.sdk import dag, task

from docsync.dagfactory import collection_asset


@dag(dag_id="docsync_downstream", schedule=[collection_asset("fileshare")], start_date=datetime(2026, 1, 1),
     catchup=False, tags=["test"])
def downstream():
    @task
    def consume() -> str:
        return "index updated"

    consume()


downstream()
'''


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def group_members(pgid: int) -> list[int]:
    """PIDs in a process group (the one `airflow standalone` leads), from /proc."""
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            pids.append(int(stat.parent.name))
    return pids


def stop_standalone(proc: subprocess.Popen) -> None:
    """SIGINT to standalone (it stops its components); then any straggler of its group, by PID."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.terminate()
            proc.wait(timeout=15)
    for sig in (signal.SIGTERM, signal.SIGKILL):
        leftover = group_members(proc.pid)
        for pid in leftover:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        if leftover:
            time.sleep(3)


def docsync_sync(env: dict, root: Path, **extra: str) -> dict:
    proc = subprocess.run(
        [str(Path(sys.executable).with_name("docsync")), "--json", "sync", "--root", str(root)],
        env=env | extra, capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout)


@pytest.fixture()
def stack(tmp_path):
    """A running `airflow standalone` with the docsync plugin, and a synced DOCSYNC_HOME whose
    only document is quarantined (no ACL sidecar while DOCSYNC_ACL_MODE=sidecar)."""
    share = tmp_path / "share"
    (share / "handbook").mkdir(parents=True)
    (share / DOC).write_text(
        "Travel policy. Economy class for flights under six hours. Hotels are booked through the "
        "travel desk, and receipts are submitted within thirty days of the trip.\n"
    )
    dags = tmp_path / "dags"
    dags.mkdir()
    shutil.copy(REPO / "dags" / "fileshare_sync.py", dags)
    (dags / "docsync_downstream.py").write_text(DOWNSTREAM)
    airflow_home = tmp_path / "airflow"
    password = secrets.token_urlsafe(12)
    airflow_home.mkdir()
    (airflow_home / "passwords.json").write_text(json.dumps({"reviewer": password}))
    port = free_port()
    env = airflow_env(
        airflow_home, tmp_path / "docsync", share,
        AIRFLOW__CORE__DAGS_FOLDER=str(dags),
        AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION="True",
        AIRFLOW__CORE__PARALLELISM="2",
        AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS="reviewer:admin",
        AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE=str(airflow_home / "passwords.json"),
        AIRFLOW__API_AUTH__JWT_SECRET=secrets.token_hex(32),
        AIRFLOW__API__HOST="127.0.0.1",
        AIRFLOW__API__PORT=str(port),
        AIRFLOW__API__WORKERS="1",
        DOCSYNC_ACL_MODE="sidecar",
        PATH=f"{Path(AIRFLOW).parent}:{os.environ.get('PATH', '/usr/bin:/bin')}",
    )
    log_path = tmp_path / "standalone.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([AIRFLOW, "standalone"], env=env, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
    try:
        first = docsync_sync(env, share)  # while Airflow starts
        assert first["quarantined"] == 1 and first["indexed"] == 0
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 240
        while True:
            try:
                if httpx.get(f"{base}/api/v2/monitor/health", timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None, f"airflow standalone exited:\n{log_path.read_text()[-4000:]}"
            assert time.monotonic() < deadline, f"airflow standalone not healthy:\n{log_path.read_text()[-4000:]}"
            time.sleep(1)
        yield {"base": base, "env": env, "share": share, "password": password, "log": log_path}
    finally:
        stop_standalone(proc)


@pytest.fixture()
def browser(tmp_path):
    chrome = Browser(tmp_path / "chromium-profile", tmp_path / "chromium.log")
    yield chrome
    chrome.close()


FRAME = "document.querySelector('iframe').contentDocument"


def test_review_quarantine_in_airflow_ui(stack, browser):
    shutil.rmtree(ARTIFACTS, ignore_errors=True)
    try:
        review_scenario(stack, browser)
    except BaseException:
        browser.screenshot(ARTIFACTS / "failure.png")  # what the page showed when it failed
        (ARTIFACTS / "failure.txt").write_text(f"{browser.eval('location.href')}\n{browser.eval('document.body.innerText')}")
        raise


def review_scenario(stack: dict, browser: Browser) -> None:
    base = stack["base"]

    # The plugin app refuses anonymous callers on the real API server.
    assert httpx.get(f"{base}/docsync/api/quarantine").status_code == 401

    # 1. Log in through Airflow's own login page.
    browser.goto(f"{base}/docsync/quarantine")
    browser.wait_for("location.pathname.startsWith('/auth/login') && document.querySelector('input[name=password]')",
                     what="the Airflow login form")
    browser.type_into("input[name=username]", "reviewer")
    browser.type_into("input[name=password]", stack["password"])
    browser.screenshot(ARTIFACTS / "01-airflow-login.png")
    browser.eval("document.querySelector('button[type=submit]').click()")
    browser.wait_for("document.querySelector('#entries')", what="the quarantine page after login")

    plugins = browser.eval("fetch('/api/v2/plugins').then(r => r.json())")
    [plugin] = [p for p in plugins["plugins"] if p["name"] == "docsync"]
    assert {v["url_route"] for v in plugin["external_views"]} == {"docsync-quarantine", "docsync-monitoring"}

    # 2. The quarantine page, embedded in the Airflow UI.
    browser.goto(f"{base}/plugin/docsync-quarantine")
    browser.wait_for(f"{FRAME}.querySelector('#entries tbody tr[data-id]')", what="quarantine rows in the iframe")
    row = browser.eval(f"{FRAME}.querySelector('#entries tbody tr[data-id]').innerText")
    assert DOC in row and "access" in row and "no ACL sidecar" in row
    assert browser.eval(f"{FRAME}.querySelector('#user').textContent") == "reviewer"
    browser.screenshot(ARTIFACTS / "02-quarantine-in-airflow.png")

    # 3. Open the entry and retry it.
    browser.eval(f"{FRAME}.querySelector('#entries a').click()")
    browser.wait_for(f"{FRAME}.querySelector('#retry')", what="the entry page with its actions")
    assert "No preview" in browser.eval(f"{FRAME}.querySelector('#preview').textContent")
    browser.screenshot(ARTIFACTS / "03-entry.png")
    browser.eval(f"{FRAME}.querySelector('#retry').click()")
    browser.wait_for(f"{FRAME}.querySelector('#status') && {FRAME}.querySelector('#status').textContent === 'retry'",
                     what="status 'retry' after the reload")
    history = browser.eval(f"{FRAME}.querySelector('#history tbody').innerText")
    assert "retry" in history and "reviewer" in history
    browser.screenshot(ARTIFACTS / "04-retried.png")

    # 4. The next sync (the administrator has since set default principals) indexes it.
    summary = docsync_sync(stack["env"], stack["share"], DOCSYNC_DEFAULT_PRINCIPALS="group:staff")
    assert summary["retried"] == 1 and summary["indexed"] == 1 and summary["quarantined"] == 0
    browser.eval("document.querySelector('iframe').contentWindow.location.reload()")
    browser.wait_for(f"{FRAME}.querySelector('#status') && {FRAME}.querySelector('#status').textContent === 'resolved'",
                     what="status 'resolved' after the sync")
    assert "indexed at" in browser.eval(f"{FRAME}.querySelector('#document').textContent")
    browser.screenshot(ARTIFACTS / "05-indexed-after-sync.png")

    # 5. Freshness and lag page.
    browser.goto(f"{base}/plugin/docsync-monitoring")
    browser.wait_for(f"{FRAME}.querySelectorAll('#source-fileshare svg').length === 7", what="the seven charts (four of the syncs, three of retrieval quality)")
    assert "ok" in browser.eval(f"{FRAME}.querySelector('#source-fileshare .card b').className")
    browser.screenshot(ARTIFACTS / "06-freshness.png")

    # 6. /metrics and the Asset, with a bearer token from Airflow's token endpoint.
    token = httpx.post(f"{base}/auth/token", json={"username": "reviewer", "password": stack["password"]}).json()
    api = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token['access_token']}"}, timeout=30)
    scraped = api.get("/docsync/metrics")
    assert scraped.status_code == 200 and 'docsync_indexed{source="fileshare"} 1.0' in scraped.text
    assert_asset_triggers_downstream(api)


def assert_asset_triggers_downstream(api: httpx.Client) -> None:
    """The sync DAG's finalize task produces the collection Asset; an event on it (what a
    successful finalize emits) queues a run of a DAG scheduled on it."""
    deadline = time.monotonic() + 90
    asset = None
    while time.monotonic() < deadline:
        found = api.get("/api/v2/assets", params={"name_pattern": "docsync_fileshare"}).json()["assets"]
        if found and found[0]["scheduled_dags"] and found[0]["producing_tasks"]:
            asset = found[0]
            break
        time.sleep(1)
    assert asset, "the DAG processor did not register the docsync_fileshare asset with producer and consumer"
    assert asset["uri"] == "qdrant://docsync/docsync_fileshare"
    assert {(t["dag_id"], t["task_id"]) for t in asset["producing_tasks"]} == {("fileshare_sync", "finalize")}
    assert [d["dag_id"] for d in asset["scheduled_dags"]] == ["docsync_downstream"]
    assert api.patch("/api/v2/dags/docsync_downstream", json={"is_paused": False}).status_code == 200
    assert api.post("/api/v2/assets/events", json={"asset_id": asset["id"]}).status_code == 200
    while time.monotonic() < deadline:
        runs = api.get("/api/v2/dags/docsync_downstream/dagRuns").json()["dag_runs"]
        if runs:
            assert runs[0]["run_type"] == "asset_triggered"
            return
        time.sleep(1)
    raise AssertionError("no asset-triggered run of docsync_downstream within 90 s")
