"""The embedding backends (DOCSYNC_EMBED_BACKEND): torch (fp32) and ONNX Runtime with int8 weights
exported offline from the packaged all-MiniLM-L6-v2; vectors of the two never share a collection."""

from __future__ import annotations

import numpy as np
import pytest

from docsync import embed, fingerprint
from docsync.embed_onnx import OnnxEncoder

SENTENCES = [
    "Revenue growth and operating margin improved in the third quarter.",
    "The warehouse team counts pallets on dock 3 every week.",
    "Reset your VPN token from the self-service portal before travelling.",
    "Incident review: the backup job failed because the disk was full.",
    "ok",
]


def test_backend_setting_selects_the_encoder_and_changes_the_embedding_fingerprint(monkeypatch):
    monkeypatch.setenv("DOCSYNC_EMBED_BACKEND", "torch")
    fp32 = fingerprint.embedding_fingerprint()
    assert "backend" not in fp32  # collections recorded before the setting keep their fingerprint
    monkeypatch.setenv("DOCSYNC_EMBED_BACKEND", "onnx-int8")
    int8 = fingerprint.embedding_fingerprint()
    assert int8["backend"] == "onnx-int8" and "onnxruntime" in int8["exported_with"]
    assert {k: int8[k] for k in fp32} == fp32 and fingerprint.digest(int8) != fingerprint.digest(fp32)
    assert isinstance(embed.get_model(), OnnxEncoder)
    assert embed.get_model().tokenizer is not embed.get_tokenizer()  # the counting tokenizer stays separate
    monkeypatch.setenv("DOCSYNC_EMBED_BACKEND", "")
    assert fingerprint.embedding_fingerprint() == fp32  # the default: torch (switching re-embeds)
    monkeypatch.setenv("DOCSYNC_EMBED_BACKEND", "tensorrt")
    with pytest.raises(ValueError, match="DOCSYNC_EMBED_BACKEND must be"):
        fingerprint.embedding_fingerprint()


def test_int8_vectors_are_close_to_fp32(monkeypatch):
    monkeypatch.setenv("DOCSYNC_EMBED_BACKEND", "torch")
    fp32 = np.array(embed.embed_texts(SENTENCES))
    monkeypatch.setenv("DOCSYNC_EMBED_BACKEND", "onnx-int8")
    int8 = np.array(embed.embed_texts(SENTENCES))
    assert int8.shape == fp32.shape == (len(SENTENCES), embed.VECTOR_SIZE)
    assert np.allclose(np.linalg.norm(int8, axis=1), 1.0, atol=1e-5)
    cosines = (int8 * fp32).sum(axis=1)
    assert cosines.min() > 0.95, cosines
    # Batched and padded with longer texts, a text gets the vector it gets alone.
    alone = np.array(embed.embed_texts(SENTENCES[-1:]))
    assert np.allclose(alone[0], int8[-1], atol=1e-4)


def test_the_export_is_keyed_by_weights_and_config_and_reused(tmp_path, monkeypatch):
    from tests.test_fingerprint import variant_model

    base = embed.onnx_export_path()
    assert (base / "model_int8.onnx").is_file()  # exported by `make setup` (or a first use before)
    assert embed.export_onnx() == base / "model_int8.onnx"  # reused, not exported again
    monkeypatch.setenv("DOCSYNC_EMBED_MODEL", str(variant_model(tmp_path)))  # same weights, other window
    assert embed.onnx_export_path() == base
    monkeypatch.setenv("DOCSYNC_EMBED_ONNX_DIR", str(tmp_path / "elsewhere"))
    assert embed.onnx_export_path().parent == tmp_path / "elsewhere"


def test_onnx_runs_on_the_workers_share_of_the_cores_and_gives_the_same_vectors(monkeypatch):
    from docsync.embed_onnx import intra_op_threads

    monkeypatch.setenv("DOCSYNC_EMBED_BACKEND", "onnx-int8")
    directory, onnx_file = embed.model_path(), embed.export_onnx()
    max_tokens = embed.get_model().max_seq_length
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # a batch worker's share (pipeline._init_worker)
    assert intra_op_threads() == 1
    one = OnnxEncoder(directory, onnx_file, max_tokens)
    assert one.session.get_session_options().intra_op_num_threads == 1
    monkeypatch.delenv("OMP_NUM_THREADS")
    assert intra_op_threads() == 0  # not a worker: ORT's default (all physical cores)
    monkeypatch.setenv("OMP_NUM_THREADS", "many")
    assert intra_op_threads() == 0
    default = OnnxEncoder(directory, onnx_file, max_tokens)
    assert np.allclose(one.encode(SENTENCES), default.encode(SENTENCES), atol=1e-5)
