"""The embedder (real all-MiniLM-L6-v2) and its background thread."""

from __future__ import annotations

import os

import numpy as np

from docsync.config import OFFLINE_ENV
from docsync.embed import VECTOR_SIZE, BackgroundEmbedder, embed_texts
from docsync.ocr import TESSERACT_ENV

TEXTS = [f"Paragraph {i}: the warehouse team counts pallets on dock {i % 4} every week." for i in range(70)]


def test_background_embedder_keeps_add_order_and_matches_direct_embedding():
    embedder = BackgroundEmbedder(flush_at=16)
    first = embedder.add(TEXTS[:40])
    second = embedder.add(TEXTS[40:])
    assert first == list(range(40)) and second == list(range(40, 70))
    vectors = np.array(embedder.vectors())
    direct = np.array(embed_texts(TEXTS))
    assert vectors.shape == (70, VECTOR_SIZE)
    assert np.allclose(vectors, direct, atol=1e-5)


def test_background_embedder_with_nothing_to_embed():
    assert BackgroundEmbedder().vectors() == []


def test_thread_limit_is_only_for_tesseract():
    """OMP_THREAD_LIMIT=1 in the process would cap torch's OpenMP pool to one thread."""
    assert "OMP_THREAD_LIMIT" not in OFFLINE_ENV
    assert TESSERACT_ENV == {"OMP_THREAD_LIMIT": "1"}
    assert os.environ.get("OMP_THREAD_LIMIT") in (None, "")
