"""GX Data Docs of each run (docsync.data_docs): real Great Expectations, real suites.

The site must exist after a run, list the run's document and chunk validations, keep
only the newest runs, turn off with DOCSYNC_DATA_DOCS=0, and never contain text that
may be PII (unexpected chunk text is withheld; numbers are capped at MAX_VALUES).
Validation itself writes nothing: the results are recorded by data_docs.record."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from docsync import data_docs
from docsync.config import load_settings
from docsync.validate import Validation, validate_chunks, validate_documents

EMAIL = "jane.roe@example.com"
SECRET = "Zebulon Quarterfield"


def doc_row(doc_id: str, **changes) -> dict:
    row = {"doc_id": doc_id, "mime": "application/pdf", "text_length": 900, "replacement_ratio": 0.0,
           "ocr_confidence": None, "allowed_count": 1, "pii_rescan_hits": 0, "markup_ratio": 0.0}
    return row | changes


def chunk_row(point_id: str, doc_id: str, text: str = "A clean chunk.", token_count: int = 4) -> dict:
    return {"point_id": point_id, "doc_id": doc_id, "token_count": token_count, "text": text}


def all_text(directory: Path) -> str:
    return "\n".join(p.read_text(errors="replace") for p in directory.rglob("*") if p.is_file()
                     and p.suffix in (".html", ".json", ".yml", ".js"))


def run_pages(settings, source: str) -> set[str]:
    root = data_docs.site_dir(settings, source) / "site" / "validations"
    return {run.name for suite in root.iterdir() for run in suite.iterdir()} if root.exists() else set()


def test_run_site_lists_both_suites_and_withholds_chunk_text(settings):
    docs = ("share", "manual__2026-02-01T10:00:00+00:00", "batch-00000")
    doc_failures = validate_documents([doc_row("d-ok"), doc_row("d-blurry", ocr_confidence=12.5)], settings)
    chunk_failures = validate_chunks(
        [chunk_row("p1", "d-ok"), chunk_row("p2", "d-leak", f"Write to {EMAIL} or ask {SECRET}."),
         chunk_row("p3", "d-long", f"{SECRET} wrote this", token_count=999)],
        settings,
    )
    assert set(doc_failures.failures) == {"d-blurry"} and set(chunk_failures.failures) == {"d-leak", "d-long"}
    assert not data_docs.site_dir(settings, "share").exists()  # validating alone writes nothing
    data_docs.record(settings, *docs, doc_failures)
    data_docs.record(settings, *docs, chunk_failures)

    index = data_docs.build(settings, "share", docs[1])
    assert index == data_docs.index_page(settings, "share") and index.exists()
    site = index.parent
    pages = {p.relative_to(site).parts[1] for p in site.rglob("*.html") if p.parts[-1] != "index.html"}
    assert {"docsync_documents", "docsync_chunks"} <= pages
    assert run_pages(settings, "share") == {"manual__2026-02-01T10_00_00_00_00"}
    html = index.read_text()
    assert "docsync_chunks" in html and "docsync_documents" in html

    everything = all_text(data_docs.site_dir(settings, "share"))  # pages and the stored results
    assert EMAIL not in everything and SECRET not in everything and "Write to" not in everything
    assert data_docs.WITHHELD in everything  # the failing text is reported, without the text
    assert "999" in everything and "12.5" in everything  # numbers of failing rows are shown


def test_unexpected_values_capped(settings):
    docs = ("share", "run-cap", "batch-00000")
    rows = [chunk_row(f"p{i}", f"d{i}", token_count=300 + i) for i in range(30)]
    validation = validate_chunks(rows, settings)
    assert len(validation.failures) == 30
    data_docs.record(settings, *docs, validation)
    data_docs.build(settings, "share", "run-cap")
    stored = data_docs.site_dir(settings, "share") / "gx" / "uncommitted" / "validations" / "docsync_chunks"
    (result_file,) = stored.rglob("*.json")
    result = json.loads(result_file.read_text())
    (token_result,) = [r["result"] for r in result["results"]
                       if r["expectation_config"]["kwargs"].get("column") == "token_count" and not r["success"]]
    assert token_result["unexpected_count"] == 30
    assert len(token_result["partial_unexpected_list"]) <= data_docs.MAX_VALUES
    assert "unexpected_list" not in token_result and "unexpected_index_list" not in token_result


def test_only_the_newest_runs_are_kept(settings):
    settings = settings.replace(data_docs_keep_runs=2)
    for n in range(3):
        run = f"run-{n}"
        data_docs.record(settings, "share", run, "batch-00000", validate_documents([doc_row("d")], settings))
        assert data_docs.build(settings, "share", run) is not None
    assert run_pages(settings, "share") == {"run-1", "run-2"}
    assert "run-0" not in data_docs.index_page(settings, "share").read_text()


@pytest.mark.parametrize(
    ("value", "enabled"), [("", True), ("1", True), ("0", False), ("false", False), ("off", False)]
)
def test_switch(monkeypatch, docsync_env, value, enabled):
    monkeypatch.setenv("DOCSYNC_DATA_DOCS", value)
    assert load_settings().sync.data_docs is enabled


def test_switched_off_writes_nothing(monkeypatch, docsync_env):
    monkeypatch.setenv("DOCSYNC_DATA_DOCS", "0")
    settings = load_settings()
    failures = validate_chunks([chunk_row("p", "d", f"mail {EMAIL}")], settings)
    data_docs.record(settings, "share", "r", "batch-00000", failures)
    assert set(failures) == {"d"}  # validation itself is unaffected
    assert data_docs.build(settings, "share", "r") is None
    assert not (Path(settings.home) / "data_docs").exists()


def test_validation_is_pure_and_an_empty_one_records_nothing(settings):
    validation = validate_documents([doc_row("d-ok"), doc_row("d-blurry", ocr_confidence=12.5)], settings)
    assert isinstance(validation, Validation) and set(validation.failures) == {"d-blurry"}
    assert validation.result is not None and validation.result.suite_name == "docsync_documents"
    assert not (Path(settings.home) / "data_docs").exists()
    data_docs.record(settings, "share", "run-empty", "batch-00000", validate_chunks([], settings))
    assert validate_chunks([], settings) == Validation() and Validation().result is None
    assert not (Path(settings.home) / "data_docs").exists()


def test_sync_run_publishes_its_data_docs(settings, tmp_path):
    from docsync.pipeline import run_sync

    share = tmp_path / "share"
    share.mkdir()
    (share / "hr.txt").write_text(f"Onboarding notes.\n\nContact {SECRET} at {EMAIL} about the laptop.\n")
    (share / "hr.txt.acl.json").write_text(json.dumps({"allow": ["group:hr"]}))
    summary = run_sync(settings.with_overrides(fileshare_root=str(share)), root=str(share), run_id="manual__docs-test")
    assert summary["indexed"] == 1 and summary["quarantined"] == 0
    index = data_docs.index_page(settings, settings.source.name)
    assert index.exists()
    assert run_pages(settings, settings.source.name) == {"manual__docs-test"}
    everything = all_text(data_docs.site_dir(settings, settings.source.name))
    assert EMAIL not in everything and SECRET not in everything
