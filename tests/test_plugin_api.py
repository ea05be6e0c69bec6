"""The docsync Airflow plugin's FastAPI app (docsync.webapi) on a real state store filled by a
real sync, behind Airflow's real SimpleAuthManager: its login route issues the JWTs and
Airflow's `get_user` checks them."""

from __future__ import annotations

import json
import re
import secrets
from pathlib import Path

import pytest

from docsync import metrics, state
from docsync.config import load_settings
from docsync.pipeline import run_sync

PASSWORDS = {"alice": secrets.token_urlsafe(12), "victor": secrets.token_urlsafe(12)}
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
    mp.setenv("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS", "alice:user,victor:viewer")
    mp.setenv("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS", "False")
    mp.setenv("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE", str(passwords))
    mp.setenv("AIRFLOW__API_AUTH__JWT_SECRET", secrets.token_hex(32))
    share = make_share(tmp / "share")
    settings = load_settings()
    run_sync(settings, root=str(share))
    yield {"settings": settings, "share": share}
    mp.undo()
    state.get_engine.cache_clear()


@pytest.fixture(scope="module")
def airflow_db(tmp_path_factory):
    """Point this process's Airflow ORM at a fresh SQLite metadata DB holding the table the
    token check reads (revoked tokens), created from Airflow's own model; restored after."""
    from airflow import settings
    from airflow.models.revoked_token import RevokedToken

    original = settings.SQL_ALCHEMY_CONN
    settings.dispose_orm(do_log=False)
    settings.SQL_ALCHEMY_CONN = f"sqlite:///{tmp_path_factory.mktemp('airflow-meta') / 'airflow.db'}"
    settings.configure_orm()
    RevokedToken.__table__.create(settings.engine)
    yield
    settings.dispose_orm(do_log=False)
    settings.SQL_ALCHEMY_CONN = original
    settings.configure_orm()


@pytest.fixture(scope="module")
def client(env, airflow_db):
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from airflow.api_fastapi.app import init_auth_manager, purge_cached_app
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
    assert {name for name, _, _ in samples} <= set(metrics.CATALOGUE)
    by = {(n, tuple(sorted(l.items()))): v for n, l, v in samples}
    src = (("source", "share"),)
    assert 0 <= by[("docsync_freshness_s", src)] < 600
    assert by[("docsync_freshness_slo_breached", src)] == 0
    assert by[("docsync_documents_indexed_total", src)] >= 1
    assert ("docsync_pii_entities", (("entity", "PERSON"), ("source", "share"))) in by
    stages = {l["stage"] for n, l, _ in samples if n == "docsync_stage_duration_s"}
    assert stages == set(metrics.STAGES)
    [source] = client.get("/docsync/api/sources", headers=victor).json()
    assert source["name"] == "share" and source["breached"] is False and source["last_success"]
    cookie = {"_token": victor["Authorization"].split()[1]}
    page = client.get("/docsync/monitoring", cookies=cookie)
    assert page.status_code == 200 and 'id="source-share"' in page.text
    assert page.text.count("<svg") == 4 and "Stage durations" in page.text
