"""docsync.storage: local paths and object storage URLs (Airflow ObjectStoragePath,
exercised with file:// — s3:// etc. take the same code path with their fsspec backend)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from docsync import storage
from docsync.records import RunFiles
from docsync.steps.finalize import finalize
from docsync.steps.plan import plan
from docsync.steps.process import process_batch
from docsync.steps.write import write_batch


@pytest.fixture(params=["path", "url"])
def staging(request, tmp_path) -> str:
    base = tmp_path / "staging"
    return str(base) if request.param == "path" else f"file://{base}"


def test_refs_round_trip_and_cleanup(settings, staging, tmp_path):
    s = settings.with_overrides(staging_dir=staging)
    directory = storage.run_dir(s, "src", "manual__2026-01-01T00:00:00+00:00")
    ref = storage.write_json(directory / "batch-00000.json", {"items": [1, 2]})
    vref = storage.write_vectors(directory / "result-00000.npy", [[0.5, 1.5], [2.0, 3.0]])
    empty = storage.write_vectors(directory / "result-00001.npy", [])
    assert isinstance(ref, str) and ref.startswith(staging) and ":" not in ref[len(staging):]
    assert ref.startswith("file://") == staging.startswith("file://")
    assert storage.read_json(ref) == {"items": [1, 2]}
    np.testing.assert_array_equal(storage.read_vectors(vref), np.array([[0.5, 1.5], [2.0, 3.0]], dtype=np.float32))
    assert storage.read_vectors(empty).shape == (0, 0)
    # the names the steps stage under (records.RunFiles is the one place that names them)
    files = RunFiles(s, "src", "manual__2026-01-01T00:00:00+00:00")
    assert (files.batch(0), files.vectors(0)) == (ref, vref)
    assert files.plan == str(directory / "plan.json")
    local = tmp_path / "staging" / "src" / "manual__2026-01-01T00_00_00_00_00"
    assert sorted(p.name for p in local.iterdir()) == ["batch-00000.json", "result-00000.npy", "result-00001.npy"]
    storage.cleanup_run(s, "src", "manual__2026-01-01T00:00:00+00:00")
    assert not local.exists()


def test_pipeline_stages_through_object_storage_url(settings, demo_corpus, tmp_path):
    from docsync import index

    corpus, manifest = demo_corpus
    root = tmp_path / "share"
    shutil.copytree(corpus / "public", root / "public")
    s = settings.with_overrides(staging_dir=f"file://{tmp_path / 'staging'}")
    planned = plan(s, "run1", str(root))
    refs = [planned.plan, *planned.batches]
    assert all(r.startswith(f"file://{tmp_path}/staging/") for r in refs)
    json.dumps(planned.to_json())  # XCom-safe: strings and counts only
    result_ref = process_batch(s, planned.batches[0])
    assert result_ref.startswith("file://") and storage.read_json(result_ref)["vectors"].startswith("file://")
    assert write_batch(s, result_ref).counts["indexed"] == 2
    finalize(s, planned.plan, [])
    with index.open_index(s) as client:
        paths = {p.payload["path"] for p in index.scroll_all(client, s.collection())}
    assert paths == {p for p in manifest["files"] if p.startswith("public/")}
    storage.cleanup_run(s, "fileshare", "run1")
    assert not (tmp_path / "staging" / "fileshare" / "run1").exists()
