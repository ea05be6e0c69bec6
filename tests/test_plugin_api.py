"""The docsync Airflow plugin's FastAPI app (docsync.webapi) on a real state store filled by
real syncs, behind Airflow's real SimpleAuthManager: its login route issues the JWTs and
Airflow's `get_user` checks them.

Airflow runs in multi-team mode, the FAB-less way to give a user access to some DAGs only:
the fileshare_sync DAG (source "share") belongs to team "files", the sharepoint_sync DAG
(source "sharepoint") to team "sites"; a third source, "scratch", has no DAG at all.
alice (user) and victor (viewer) are in "files", sam (user) in "sites"."""

from __future__ import annotations

import json
import re
import secrets
from pathlib import Path

import pytest

from docsync import metrics, state
from docsync.config import load_settings
from docsync.pipeline import run_sync
from docsync.ui import access

PASSWORDS = {name: secrets.token_urlsafe(12) for name in ("alice", "victor", "sam")}
REPO = Path(__file__).resolve().parents[1]
PII_NAME, PII_EMAIL = "Margaret Holloway", "margaret.holloway@example.com"


def make_share(root: Path) -> Path:
    """One good document, one with broken text encoding (quality check, overridable) and one
    whose ACL sidecar is not JSON (access: never overridable)."""
    root.mkdir(parents=True)
    (root / "good.txt").write_text(
        "The quarterly budget review covers cloud spending and vendor contracts. "
        f"Questions go to {PII_NAME} at {PII_EMAIL}.\n"
    )
    (root / "mangled.txt").write_text(
        f"Invoice dispute raised by {PII_NAME} ({PII_EMAIL}) about delivery 4471. "
        + "\ufffd" * 12 + " The totals did not match the purchase order.\n"
    )
    (root / "secret.txt").write_text("Board minutes about the reorganisation plan.\n")
    for name in ("good.txt", "mangled.txt"):
        (root / f"{name}.acl.json").write_text(json.dumps({"allow": ["group:staff"]}))
    (root / "secret.txt.acl.json").write_text("{not json")
    return root


def make_other_share(root: Path, name: str) -> Path:
    """A source's folder with one document quarantined at stage access."""
    root.mkdir(parents=True)
    (root / f"{name}.txt").write_text(f"Salary bands of the {name} department for next year.\n")
    (root / f"{name}.txt.acl.json").write_text("{not json")
    return root


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    """DOCSYNC_HOME with one real sync done, and Airflow's simple auth manager with two users."""
    tmp = tmp_path_factory.mktemp("plugin")
    mp = pytest.MonkeyPatch()
    mp.setenv("DOCSYNC_HOME", str(tmp / "docsync"))
    mp.setenv("DOCSYNC_SOURCE_NAME", "share")
    for var in ("DOCSYNC_STATE_URL", "DOCSYNC_QDRANT_URL", "DOCSYNC_STAGING", "DOCSYNC_QDRANT_PATH"):
        mp.delenv(var, raising=False)
    passwords = tmp / "passwords.json"
    passwords.write_text(json.dumps(PASSWORDS))
    mp.setenv("AIRFLOW__CORE__AUTH_MANAGER",
              "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager")
    mp.setenv("AIRFLOW__CORE__MULTI_TEAM", "True")
    mp.setenv("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS", "alice:user:files,victor:viewer:files,sam:user:sites")
    mp.setenv("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS", "False")
    mp.setenv("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE", str(passwords))
    mp.setenv("AIRFLOW__API_AUTH__JWT_SECRET", secrets.token_hex(32))
    share = make_share(tmp / "share")
    mp.setenv("DOCSYNC_FILESHARE_ROOT", str(share))  # a run's root must be the configured (or an allowed) one
    settings = load_settings()
    run_sync(settings, root=str(share))
    # What is authorised is the source's DAG, whatever kind of source fills it: plain folders here.
    for name in ("sharepoint", "scratch"):
        other = make_other_share(tmp / name, name)
        run_sync(settings.with_overrides(source_name=name, fileshare_root=str(other)), root=str(other))
    yield {"settings": settings, "share": share}
    mp.undo()
    state.get_engine.cache_clear()


@pytest.fixture(scope="module")
def airflow_db(tmp_path_factory):
    """Point this process's Airflow ORM at a fresh SQLite metadata DB holding the tables the
    token check (revoked tokens) and the DAG-to-team lookup read, created from Airflow's own
    models, with the two DAGs in their teams' bundles (what the DAG processor and
    `airflow teams create` would have recorded); restored after."""
    import sqlalchemy as sa
    from airflow import settings
    from airflow.models.dag import DagModel
    from airflow.models.dagbundle import DagBundleModel
    from airflow.models.revoked_token import RevokedToken
    from airflow.models.team import Team, dag_bundle_team_association_table

    original = settings.SQL_ALCHEMY_CONN
    settings.dispose_orm(do_log=False)
    settings.SQL_ALCHEMY_CONN = f"sqlite:///{tmp_path_factory.mktemp('airflow-meta') / 'airflow.db'}"
    settings.configure_orm()
    tables = [RevokedToken.__table__, Team.__table__, DagBundleModel.__table__, dag_bundle_team_association_table,
              DagModel.__table__]
    RevokedToken.metadata.create_all(settings.engine, tables=tables)
    with settings.engine.begin() as conn:
        for team, dag_id in (("files", "fileshare_sync"), ("sites", "sharepoint_sync")):
            conn.execute(sa.insert(Team.__table__).values(name=team))
            conn.execute(sa.insert(DagBundleModel.__table__).values(name=f"{team}-dags"))
            conn.execute(sa.insert(dag_bundle_team_association_table).values(dag_bundle_name=f"{team}-dags",
                                                                             team_name=team))
            conn.execute(sa.insert(DagModel.__table__).values(
                dag_id=dag_id, bundle_name=f"{team}-dags", max_active_tasks=16, max_consecutive_failed_dag_runs=0,
                has_task_concurrency_limits=False))
    yield
    settings.dispose_orm(do_log=False)
    settings.SQL_ALCHEMY_CONN = original
    settings.configure_orm()


@pytest.fixture(scope="module")
def client(env, airflow_db):
    from airflow.api_fastapi.app import init_auth_manager, purge_cached_app
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from docsync.webapi import create_app

    root = FastAPI()
    root.mount("/docsync", create_app())
    init_auth_manager(root)  # Airflow's auth manager and its /auth app (login, tokens)
    with TestClient(root) as test_client:
        yield test_client
    purge_cached_app()


def token(client, user: str) -> str:
    response = client.post("/auth/token", json={"username": user, "password": PASSWORDS[user]})
    assert response.status_code == 201, response.text
    return response.json()["access_token"]


@pytest.fixture(scope="module")
def alice(client) -> dict:
    return {"Authorization": f"Bearer {token(client, 'alice')}"}


@pytest.fixture(scope="module")
def victor(client) -> dict:
    return {"Authorization": f"Bearer {token(client, 'victor')}"}


@pytest.fixture(scope="module")
def sam(client) -> dict:
    return {"Authorization": f"Bearer {token(client, 'sam')}"}


def entry_id(client, headers, path: str) -> int:
    [entry] = [e for e in client.get("/docsync/api/quarantine?status=all", headers=headers).json() if e["path"] == path]
    return entry["id"]


def test_everything_needs_an_airflow_login(client):
    for url in ("/docsync/api/quarantine", "/docsync/api/quarantine/1", "/docsync/api/sources", "/docsync/metrics"):
        assert client.get(url).status_code == 401, url
    assert client.post("/docsync/api/quarantine/1/retry", json={}).status_code == 401
    bad = {"Authorization": "Bearer not-a-jwt"}
    assert client.get("/docsync/api/quarantine", headers=bad).status_code == 403
    assert client.post("/docsync/api/quarantine/1/dismiss", json={}, headers=bad).status_code == 403
    page = client.get("/docsync/quarantine", follow_redirects=False)
    assert page.status_code == 302 and page.headers["location"].startswith("/auth/login?next=")


def test_list_and_filter(client, victor):
    entries = client.get("/docsync/api/quarantine", headers=victor).json()
    assert {e["path"]: e["stage"] for e in entries} == {"mangled.txt": "validate", "secret.txt": "access"}
    for e in entries:
        assert e["source"] == "share" and e["attempts"] == 1 and e["first_seen"] and e["last_seen"] and e["reason"]
        assert "preview" not in e
    assert [e["path"] for e in client.get("/docsync/api/quarantine?stage=access", headers=victor).json()] == ["secret.txt"]
    assert [e["path"] for e in client.get("/docsync/api/quarantine?q=MANGLED", headers=victor).json()] == ["mangled.txt"]
    assert client.get("/docsync/api/quarantine?source=other", headers=victor).json() == []
    assert client.get("/docsync/api/quarantine?status=resolved", headers=victor).json() == []


def test_detail_shows_anonymized_preview_and_error_never_raw_text(client, victor):
    mangled = client.get(f"/docsync/api/quarantine/{entry_id(client, victor, 'mangled.txt')}", headers=victor).json()
    assert "encoding" in mangled["reason"] and "Invoice dispute" in mangled["preview"]
    assert "<PERSON>" in mangled["preview"] and "<EMAIL_ADDRESS>" in mangled["preview"]
    assert mangled["document"]["status"] == "quarantined"
    secret = client.get(f"/docsync/api/quarantine/{entry_id(client, victor, 'secret.txt')}", headers=victor).json()
    assert secret["preview"] == "" and "not valid JSON" in secret["reason"]
    cookie = {"_token": victor["Authorization"].split()[1]}  # the Airflow UI's session cookie
    page = client.get(f"/docsync/quarantine/{mangled['id']}", cookies=cookie)
    assert page.status_code == 200 and "Invoice dispute" in page.text
    assert "&lt;PERSON&gt;" in page.text, "preview must be escaped text"
    listing = client.get("/docsync/quarantine?status=all", cookies=cookie).text
    for html in (page.text, listing):
        assert PII_NAME not in html and PII_EMAIL not in html
        assert "Board minutes" not in html  # raw content of a document is never shown
    assert "may view but not act" in page.text and 'id="retry"' not in page.text


def test_viewer_cannot_act(client, victor):
    target = entry_id(client, victor, "secret.txt")
    response = client.post(f"/docsync/api/quarantine/{target}/dismiss", json={}, headers=victor)
    assert response.status_code == 403 and "run DAGs" in response.json()["detail"]


def test_actions_are_audited_with_the_airflow_user(client, alice, env):
    target = entry_id(client, alice, "mangled.txt")
    url = f"/docsync/api/quarantine/{target}"
    release = client.post(f"{url}/release", json={"note": "  "}, headers=alice)
    assert release.status_code == 400 and "note" in release.json()["detail"]
    assert client.post(f"{url}/explode", json={}, headers=alice).status_code == 404
    assert client.post("/docsync/api/quarantine/999999/retry", json={}, headers=alice).status_code == 404
    form = client.post(f"{url}/retry", data={"note": "x"}, headers=alice)  # what a cross-site form could send
    assert form.status_code == 415
    assert client.post(f"{url}/retry", json={}, headers=alice).json()["status"] == "retry"
    released = client.post(f"{url}/release", json={"note": "encoding checked by hand"}, headers=alice)
    assert released.status_code == 200 and released.json()["status"] == "released"
    history = client.get(url, headers=alice).json()["history"]
    assert [(h["action"], h["actor"], h["note"]) for h in history] == [
        ("retry", "alice", ""), ("release", "alice", "encoding checked by hand")]
    assert all(h["at"] for h in history)
    secret = entry_id(client, alice, "secret.txt")
    assert client.post(f"/docsync/api/quarantine/{secret}/dismiss", json={}, headers=alice).json()["status"] == "dismissed"

    summary = run_sync(env["settings"], root=str(env["share"]))  # the next run picks the release up
    assert summary["retried"] == 1 and summary["indexed"] == 1
    shown = client.get(url, headers=alice).json()
    assert shown["status"] == "resolved" and shown["document"]["status"] == "indexed"
    assert [e["path"] for e in client.get("/docsync/api/quarantine", headers=alice).json()] == []


def parse_exposition(text: str) -> list[tuple[str, dict, float]]:
    samples = []
    for line in text.splitlines():
        if line.startswith("#") or not line:
            continue
        match = re.fullmatch(r'([a-z_0-9]+)\{(.*)\} (\S+)', line)
        assert match, line
        labels = dict(re.findall(r'(\w+)="([^"]*)"', match.group(2)))
        samples.append((match.group(1), labels, float(match.group(3))))
    return samples


def test_metrics_endpoint_and_sources(client, victor, env):
    response = client.get("/docsync/metrics", headers=victor)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    samples = parse_exposition(response.text)
    assert {metrics.family(name) for name, _, _ in samples} <= set(metrics.CATALOGUE)
    by = {(n, tuple(sorted(labels.items()))): v for n, labels, v in samples}
    src = (("source", "share"),)
    assert ("docsync_propagation_lag_seconds_count", src) in by  # a histogram, cumulative over runs
    assert ("docsync_propagation_lag_seconds_bucket", (("le", "+Inf"), *src)) in by
    assert by[("docsync_backlog_documents", src)] == 0 and by[("docsync_unfinished_runs", src)] == 0
    assert 0 <= by[("docsync_freshness_s", src)] < 600
    assert by[("docsync_freshness_slo_breached", src)] == 0
    assert by[("docsync_documents_indexed_total", src)] >= 1
    assert ("docsync_pii_entities", (("entity", "PERSON"), ("source", "share"))) in by
    stages = {labels["stage"] for n, labels, _ in samples if n == "docsync_stage_duration_s"}
    assert stages == set(metrics.STAGES)
    [source] = client.get("/docsync/api/sources", headers=victor).json()
    assert source["name"] == "share" and source["breached"] is False and source["last_success"]
    cookie = {"_token": victor["Authorization"].split()[1]}
    page = client.get("/docsync/monitoring", cookies=cookie)
    assert page.status_code == 200 and 'id="source-share"' in page.text
    # four sync charts, three retrieval-quality charts (evaluations, violations, canary)
    assert page.text.count("<svg") == 7 and "Stage durations" in page.text
    assert "Canary hit rate per run" in page.text and "Retrieval evaluation<b>none yet" in page.text


# --- per-source authorisation (issue 13, item 14) ---------------------------------------


def paths(client, headers, query: str = "?status=all") -> set[tuple[str, str]]:
    return {(e["source"], e["path"]) for e in client.get(f"/docsync/api/quarantine{query}", headers=headers).json()}


def test_each_user_sees_only_the_sources_of_dags_they_may_read(client, victor, sam):
    assert paths(client, sam) == {("sharepoint", "sharepoint.txt")}
    assert {source for source, _ in paths(client, victor)} == {"share"}  # never sharepoint, never scratch
    assert paths(client, victor, "?status=all&source=sharepoint") == set()  # a filter does not widen it
    assert paths(client, sam, "?status=all&q=secret") == set()
    assert [s["name"] for s in client.get("/docsync/api/sources", headers=sam).json()] == ["sharepoint"]
    sources = {labels["source"] for _, labels, _ in parse_exposition(client.get("/docsync/metrics", headers=sam).text)}
    assert sources == {"sharepoint"}

    cookie = {"_token": sam["Authorization"].split()[1]}
    listing = client.get("/docsync/quarantine?status=all", cookies=cookie).text
    assert "sharepoint.txt" in listing
    for other in ("secret.txt", "mangled.txt", "scratch.txt", "<option>share</option>", "<option>scratch</option>"):
        assert other not in listing, other
    monitoring = client.get("/docsync/monitoring", cookies=cookie).text
    assert 'id="source-sharepoint"' in monitoring and 'id="source-share"' not in monitoring
    assert 'id="source-scratch"' not in monitoring


def test_entries_of_other_sources_cannot_be_opened_or_acted_on(client, alice, victor, sam):
    secret = entry_id(client, victor, "secret.txt")
    theirs = entry_id(client, sam, "sharepoint.txt")
    cookie = {"_token": sam["Authorization"].split()[1]}
    for headers, other in ((sam, secret), (alice, theirs), (victor, theirs)):
        assert client.get(f"/docsync/api/quarantine/{other}", headers=headers).status_code == 404
        for action in ("retry", "dismiss"):
            response = client.post(f"/docsync/api/quarantine/{other}/{action}", json={}, headers=headers)
            assert response.status_code == 404, (action, response.text)
    assert client.get(f"/docsync/quarantine/{secret}", cookies=cookie).status_code == 404
    for headers, entry in ((victor, secret), (sam, theirs)):  # nobody acted across sources
        history = client.get(f"/docsync/api/quarantine/{entry}", headers=headers).json()["history"]
        assert {h["actor"] for h in history} <= ({"alice"} if entry == secret else set())
    page = client.get(f"/docsync/quarantine/{theirs}", cookies=cookie)
    assert page.status_code == 200 and 'id="dismiss"' in page.text  # sam runs sharepoint_sync: may act
    dismissed = client.post(f"/docsync/api/quarantine/{theirs}/dismiss", json={"note": "test"}, headers=sam)
    assert dismissed.status_code == 200 and dismissed.json()["status"] == "dismissed"


def test_a_source_without_a_dag_is_shown_to_nobody(client, alice, victor, sam):
    engine = state.get_engine(load_settings().state_url)
    [scratch] = state.quarantine_entries(engine, source="scratch", status=None)
    for headers in (alice, victor, sam):
        assert "scratch" not in {source for source, _ in paths(client, headers)}
        assert client.get(f"/docsync/api/quarantine/{scratch['id']}", headers=headers).status_code == 404


def test_source_dag_registry(monkeypatch, env):
    settings = env["settings"]
    assert access.source_dags(settings) == {"share": "fileshare_sync", "sharepoint": "sharepoint_sync"}
    monkeypatch.setenv(access.SOURCE_DAGS_ENV, " scratch = scratch_sync ,, hr=hr_sync")
    assert access.source_dags(settings) == {
        "share": "fileshare_sync", "sharepoint": "sharepoint_sync", "scratch": "scratch_sync", "hr": "hr_sync"}
    monkeypatch.setenv(access.SOURCE_DAGS_ENV, "scratch")
    with pytest.raises(ValueError, match="source=dag_id"):
        access.source_dags(settings)


def test_source_dag_registry_matches_the_dag_files():
    """dags/*.py: fileshare_sync syncs DOCSYNC_SOURCE_NAME, sharepoint_sync the source "sharepoint"."""
    import ast

    found = {}
    for path in (REPO / "dags").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "build_sync_dag":
                source = next(k.value for k in node.keywords if k.arg == "source_name")
                found[node.args[0].value] = source.value if isinstance(source, ast.Constant) else ast.unparse(source)
    assert found == {
        access.FILESHARE_DAG: "os.environ.get('DOCSYNC_SOURCE_NAME', 'fileshare')",
        access.SHAREPOINT_DAG: access.SHAREPOINT_SOURCE,
    }


# --- templates ----------------------------------------------------------------------------


def test_pages_come_from_template_files_and_escape_everything():
    """HTML lives in include/docsync/ui/templates (shipped as package data), not in Python
    strings; chart titles, series names and labels are escaped like the rest of a page."""
    import tomllib
    from fnmatch import fnmatch

    from docsync.ui.charts import line_chart
    from docsync.ui.pages import TEMPLATES, render

    package = REPO / "include" / "docsync"
    for module in (package / "webapi.py", package / "data_docs.py", *(package / "ui").glob("*.py")):
        assert "{% block" not in module.read_text() and "<!doctype" not in module.read_text().lower(), module
    globs = tomllib.loads((REPO / "include" / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    for template in TEMPLATES.glob("*.html"):
        relative = template.relative_to(package).as_posix()
        assert any(fnmatch(relative, g) for g in globs["docsync"]), f"{relative} is not package data"

    hostile = "<script>alert(1)</script>"
    chart = line_chart(hostile, ["01-01 00:00", hostile], {hostile: [1.0, 2.0], "ok": [None, 3.0]}, hostile)
    view = {"name": hostile, "freshness": "1 s", "slo": "1 d", "breached": False, "last_success": None,
            "quarantine_open": 0, "documents_indexed": 0, "charts": [chart, line_chart("empty", [], {})],
            "unfinished_runs": 0, "backlog": 0, "revocation_backlog": 0,
            "stale_processing": 2, "stale_embedding": 1, "reprocessed": 1,
            "propagation": {"count": 0, "p50": "–", "p95": "–"}, "revocation": {"count": 0, "p50": "–", "p95": "–"},
            "ages": {"backlog_oldest_s": "0 s", "revocation_backlog_oldest_s": "0 s", "quarantine_oldest_s": "0 s"}}
    html = render("monitoring", title=hostile, root="/docsync", user=hostile, sources=[view])
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "On stale processing<b class=\"bad\">2</b>" in html and "<code>docsync reindex</code>" in html
    assert html.count("<svg") == 2 and "no runs with this metric yet" in html and "<polyline" in html
