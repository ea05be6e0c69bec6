"""Issue 21 item 4: queries that use the words over-redaction used to remove (headings, rule
titles, defined terms of real legal, financial and technical prose; bench/overredaction_queries.jsonl)
find their passages after a real sync: the passage must come back verbatim in the top ten, so a
word still replaced by ``<PERSON>`` fails it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
QUERIES = REPO / "bench" / "overredaction_queries.jsonl"


@pytest.mark.slow  # a real sync of six public documents (~150 kB of text), then 17 searches
def test_words_over_redaction_removed_find_their_passages(tmp_path, monkeypatch):
    from docsync.config import load_settings
    from docsync.evaluation.eval_set import load_eval_set
    from docsync.evaluation.evaluate import evaluate
    from docsync.pipeline import run_sync

    lines = [json.loads(line) for line in QUERIES.read_text(encoding="utf-8").splitlines() if line.strip()]
    assert len(lines) >= 15
    share = tmp_path / "share"
    share.mkdir()
    for document in {q["document"] for q in lines}:
        target = share / Path(document).name
        shutil.copy(REPO / document, target)
        Path(f"{target}.acl.json").write_text(json.dumps({"allow": ["group:legal"]}))
    eval_path = tmp_path / "lowpii.jsonl"
    eval_path.write_text("".join(json.dumps({
        "id": f"q{n}", "query": q["query"], "principals": ["group:legal"],
        "expected_paths": [Path(q["document"]).name], "passage": q["expected_passage"],
    }) + "\n" for n, q in enumerate(lines)), encoding="utf-8")

    monkeypatch.setenv("DOCSYNC_HOME", str(tmp_path / "home"))
    for var in ("DOCSYNC_STATE_URL", "DOCSYNC_QDRANT_URL", "DOCSYNC_STAGING", "DOCSYNC_QDRANT_PATH"):
        monkeypatch.delenv(var, raising=False)
    settings = load_settings().with_overrides(source_name="lowpii", fileshare_root=str(share))
    summary = run_sync(settings, root=str(share))
    assert summary["quarantined"] == 0 and summary["indexed"] == len({q["document"] for q in lines})

    for mode in ("dense", "hybrid"):
        report = evaluate(settings, load_eval_set(eval_path), "lowpii", mode)
        assert report["recall_at_10"] == 1.0, (mode, report["misses"])
        assert report["passage_hit_rate"] == 1.0, (mode, report["misses"])
        assert report["acl_violations"] == 0
