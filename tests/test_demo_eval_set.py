"""The demo corpus' labelled evaluation set: shipped as generated, valid, covering every document
type, paraphrased (no 5-word run copied from its document), labelled consistently with the
corpus' ACLs; and one real sync of the demo corpus measured by it and by the canary."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from docsync.demo.eval_queries import DOCUMENTS, demo_eval_queries
from docsync.evaluation.eval_set import dump_lines, load_eval_set, shared_ngrams

SHIPPED = Path(__file__).resolve().parents[1] / "include" / "docsync" / "demo" / "eval_set.jsonl"


def test_shipped_set_is_the_generated_one_and_valid():
    assert SHIPPED.read_text(encoding="utf-8") == dump_lines(demo_eval_queries()), (
        "regenerate: docsync demo-corpus DIR --eval-set include/docsync/demo/eval_set.jsonl")
    queries = load_eval_set(SHIPPED).queries
    assert len(queries) >= 200
    assert sum(not q.labelled for q in queries) >= 40  # must-not-find queries
    assert len({(q.query, q.principals) for q in queries}) == len(queries)
    tags = {t for q in queries for t in q.tags}
    assert {"pdf", "mixed_pdf", "docx", "scanned_pdf", "txt", "image", "html", "markdown"} <= tags
    assert sum("scanned_pdf" in q.tags or "image" in q.tags for q in queries if q.labelled) >= 25  # OCR-only text


def test_labels_agree_with_the_corpus_acls(demo_corpus):
    _, manifest = demo_corpus
    files = manifest["files"]

    def may_read(principals: tuple[str, ...], path: str) -> bool:
        return bool(set(files[path]["principals"]) & {*principals, "everyone"})

    for q in demo_eval_queries():
        for path in q.expected_paths:
            assert files[path]["expect"] == "indexed" and may_read(q.principals, path), q.id
        for path in q.forbidden_paths:
            assert not may_read(q.principals, path), q.id
    indexed = {p for p, f in files.items() if f["expect"] == "indexed"}
    assert set(DOCUMENTS) == indexed  # every indexed document has queries


def _text_of(path: Path) -> str:
    """Text of the demo documents that need no OCR, as the parsers would see it."""
    if path.suffix == ".docx":
        import docx

        document = docx.Document(str(path))
        cells = [c.text for t in document.tables for row in t.rows for c in row.cells]
        return " ".join([p.text for p in document.paragraphs] + cells)
    if path.suffix == ".pdf":
        from pypdf import PdfReader

        return " ".join(page.extract_text() or "" for page in PdfReader(str(path)).pages)
    return re.sub(r"<[^>]+>", " ", path.read_text(encoding="utf-8"))


def test_queries_do_not_copy_their_documents_text(demo_corpus):
    """OCR-only documents are checked against their indexed text by the real run below."""
    root, _ = demo_corpus
    ocr_only = {"finance/expenses/expense-report-mixed.pdf", "hr/scans/onboarding-form-scan.pdf",
                "engineering/whiteboard-memo.png"}
    for q in demo_eval_queries():
        for path in set(q.expected_paths + q.forbidden_paths) - ocr_only:
            assert not shared_ngrams(q.query, _text_of(root / path)), (q.id, q.query)


@pytest.mark.slow  # a whole sync of the demo corpus (OCR of three pages), then 225 searches
def test_real_sync_of_the_demo_corpus_is_measured(demo_corpus, tmp_path, monkeypatch):
    from docsync import index, state
    from docsync.config import load_settings
    from docsync.evaluation.canary import run_canary
    from docsync.evaluation.evaluate import run_evaluation
    from docsync.pipeline import run_sync

    root = tmp_path / "corpus"
    shutil.copytree(demo_corpus[0], root)
    monkeypatch.setenv("DOCSYNC_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("DOCSYNC_ALLOWED_ROOTS", str(tmp_path))
    for var in ("DOCSYNC_STATE_URL", "DOCSYNC_QDRANT_URL", "DOCSYNC_STAGING", "DOCSYNC_QDRANT_PATH"):
        monkeypatch.delenv(var, raising=False)
    settings = load_settings().with_overrides(source_name="demo", fileshare_root=str(root))
    summary = run_sync(settings, root=str(root))
    assert summary["indexed"] == 8
    assert summary["canary_samples"] == 5 and summary["canary_hit_rate"] == 1.0, summary.get("canary_misses")

    report = run_evaluation(settings, "demo", SHIPPED, run_id="t1")  # the default mode: hybrid
    assert report["mode"] == "hybrid" and report["passed"], report["failures"]
    assert report["recall_at_10"] >= 0.9 and report["acl_violations"] == 0 and report["stale_hits"] == 0
    assert set(report["recall_at_10_by_tag"]) >= {"pdf", "scanned_pdf", "image", "mixed_pdf"}

    # paraphrased against what was indexed, OCR text included
    with index.open_index(settings) as client:
        texts: dict[str, str] = {}
        for point in index.scroll_all(client, settings.collection()):
            texts[point.payload["path"]] = texts.get(point.payload["path"], "") + " " + point.payload["text"]
        for q in demo_eval_queries():
            for path in q.expected_paths:
                assert not shared_ngrams(q.query, texts[path]), (q.id, q.query)
        # vectors written to the wrong points (a swapped model looks the same): the canary sees it
        points = list(client.scroll(settings.collection(), limit=100, with_payload=True, with_vectors=True)[0])
        shifted = points[1:] + points[:1]
        index.upsert(client, settings.collection(),
                     [(str(p.id), s.vector[""] if isinstance(s.vector, dict) else s.vector, p.payload)
                      for p, s in zip(points, shifted)])
    broken = run_canary(settings, "demo", summary["run_id"])
    assert broken["canary_hit_rate"] < 1.0 and broken["canary_misses"]
    assert state.latest_eval(state.get_engine(settings.state_url), "demo")["mode"] == "hybrid"
