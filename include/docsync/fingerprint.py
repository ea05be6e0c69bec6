"""Processing fingerprints: what produced a document's points.

Two fingerprints, each a small JSON object and its digest (what the state store records per
document, and per collection for the embedding one):

- the **embedding** fingerprint: the model's identity and revision, vector dimension,
  normalisation and token window. Vectors of two of them never share a collection: a sync
  whose embedding fingerprint differs from its collection's refuses to write
  (:class:`EmbeddingChanged`) until `docsync reindex` built a collection for it.
- the **text** fingerprint: everything that decides a chunk's anonymized text (parser and OCR
  settings and versions, PII entities, threshold and recognizer version, the pseudonymisation
  key's id, chunk size/overlap, the GX suites). A document recorded with another one is
  re-processed progressively (``DOCSYNC_REPROCESS_BUDGET``), PII-stricter changes first.

Computing them is cheap (file metadata, package versions, one `tesseract --version`): the plan
step computes them on every run without loading a model or Presidio.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.metadata
import importlib.util
import json
import re
import subprocess
import sys
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from docsync.config import Settings

# Bump when docsync's own parsing, normalisation or chunking code changes the text a document
# yields (library versions and settings are in the fingerprint already).
TEXT_PIPELINE_VERSION = 1
# Libraries whose version changes what text (or which quarantine decision) a document yields.
TEXT_PACKAGES = ("unstructured", "pypdfium2", "python-magic", "charset-normalizer", "presidio-analyzer",
                 "presidio-anonymizer", "spacy", "en-core-web-sm", "great-expectations")


class EmbeddingChanged(RuntimeError):
    """The configured embedding model is not the one that produced the collection's vectors."""


def digest(fingerprint: dict) -> str:
    """The short, stable id of a fingerprint (what documents and collections record)."""
    return hashlib.sha256(json.dumps(fingerprint, sort_keys=True).encode()).hexdigest()[:16]


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return ""


@lru_cache(maxsize=1)
def tesseract_version() -> str:
    """The installed tesseract's version ("" when it is not installed: OCR then quarantines)."""
    try:
        out = subprocess.run(["tesseract", "--version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    match = re.search(r"tesseract\s+(\S+)", out.stdout + out.stderr)
    return match.group(1) if match else ""


def recognizer_version() -> int:
    """``docsync.pii.RECOGNIZER_VERSION``, read from the module's source unless it is loaded
    already: importing docsync.pii loads Presidio and spaCy (~7 s), which a plan must not."""
    loaded = sys.modules.get("docsync.pii")
    if loaded is not None:
        return int(loaded.RECOGNIZER_VERSION)
    spec = importlib.util.find_spec("docsync.pii")
    tree = ast.parse(Path(spec.origin).read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "RECOGNIZER_VERSION" for t in node.targets):
            return int(ast.literal_eval(node.value))
    raise LookupError("docsync.pii defines no RECOGNIZER_VERSION")


def key_id(key: str | None) -> str:
    """An id of the pseudonymisation key that reveals nothing of it ("" without a key)."""
    if not key:
        return ""
    return "hmac-sha256:" + hashlib.sha256(b"docsync key id\0" + key.encode()).hexdigest()[:12]


def _suite_hashes(directory: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest()[:16] for p in sorted(Path(directory).glob("*.json"))}


def text_fingerprint(settings: Settings) -> dict:
    """What decides the anonymized chunks of a document (see the module's docstring)."""
    from docsync.embed import model_identity

    return {
        "pipeline": TEXT_PIPELINE_VERSION,
        "packages": {p: _version(p) for p in TEXT_PACKAGES},
        "ocr": {"engine": f"tesseract {tesseract_version()}", "dpi": settings.ocr.dpi, "lang": settings.ocr.lang,
                "min_confidence": settings.ocr.min_confidence, "min_page_chars": settings.ocr.min_page_chars,
                "confidence_scope": settings.ocr.confidence_scope, "max_page_pixels": settings.ocr.max_page_pixels},
        "pii": {"entities": sorted(settings.pii.entities), "threshold": settings.pii.score_threshold,
                "recognizer_version": recognizer_version(), "key_id": key_id(settings.pii.hmac_key)},
        # Chunks are cut with the embedding model's tokenizer: its identity is part of the text too.
        "chunk": {"tokens": settings.sync.chunk_tokens, "overlap": settings.sync.chunk_overlap,
                  "tokenizer": model_identity()["model"]},
        "gx_suites": _suite_hashes(settings.sync.expectations_dir),
    }


def embedding_fingerprint() -> dict:
    """The configured embedding model (DOCSYNC_EMBED_MODEL) as the index sees it."""
    from docsync.embed import model_identity

    return model_identity() | {"normalized": True}


@dataclass(frozen=True)
class Fingerprints:
    """The current configuration's fingerprints and their digests."""

    text: dict
    embedding: dict

    @property
    def text_id(self) -> str:
        return digest(self.text)

    @property
    def embedding_id(self) -> str:
        return digest(self.embedding)


def current(settings: Settings) -> Fingerprints:
    return Fingerprints(text_fingerprint(settings), embedding_fingerprint())


def stricter_pii(old: dict | None, new: dict) -> bool:
    """True when ``new`` removes PII that ``old`` may have left: an entity added, a lower
    threshold, newer recognizers. Unknown ``old`` (indexed before fingerprints): False; such
    documents are re-processed within the budget."""
    if not old or "pii" not in old:
        return False
    before, after = old["pii"], new["pii"]
    return (
        bool(set(after["entities"]) - set(before["entities"]))
        or after["threshold"] < before["threshold"]
        or after["recognizer_version"] > before["recognizer_version"]
    )


@dataclass(frozen=True)
class Budget:
    """``DOCSYNC_REPROCESS_BUDGET``: documents (``200``) or seconds (``900s``, ``30m``, ``2h``)
    of re-processing per run; ``unlimited`` for no limit, ``0`` for none."""

    documents: int | None = None
    seconds: float | None = None

    @classmethod
    def parse(cls, value: str) -> Budget:
        text = value.strip().lower()
        if text in ("unlimited", "all", "inf", "-1"):
            return cls()
        match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*(s|m|h|docs?|documents?)?", text)
        if not match:
            raise ValueError(f"DOCSYNC_REPROCESS_BUDGET must be a number of documents (200), of seconds "
                             f"(900s, 30m, 2h) or 'unlimited', not {value!r}")
        number, unit = float(match.group(1)), match.group(2) or "docs"
        if unit in ("s", "m", "h"):
            return cls(seconds=number * {"s": 1, "m": 60, "h": 3600}[unit])
        return cls(documents=int(number))

    def documents_for(self, seconds_per_document: float) -> int | None:
        """How many documents fit (None: no limit); a time budget uses the measured cost."""
        if self.documents is not None:
            return self.documents
        if self.seconds is not None:
            return int(self.seconds // max(seconds_per_document, 0.01))
        return None
