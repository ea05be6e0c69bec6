"""Structure-aware chunking: sections start at titles, chunks stay under a token limit
measured with the embedding model's tokenizer (its own instance per thread, never the one the
background embedder encodes with: see :func:`docsync.embed.get_tokenizer`), with overlap
inside long blocks."""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from docsync.embed import get_tokenizer
from docsync.embed import max_tokens as model_max_tokens

if TYPE_CHECKING:
    from docsync.parse import Block

POINT_NAMESPACE = uuid.UUID("6f1c1b9e-3d7a-5c38-9a43-2f0d0c6f8e11")


@dataclass
class Chunk:
    index: int
    text: str
    pages: list[int] = field(default_factory=list)
    heading: str = ""
    token_count: int = 0

    @property
    def text_hash(self) -> str:
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()


def point_id(doc_id: str, text_hash: str, occurrence: int) -> str:
    """Deterministic Qdrant point ID: the same chunk text of a document keeps its ID
    wherever it moves in the document, so unchanged chunks are never re-embedded."""
    return str(uuid.uuid5(POINT_NAMESPACE, f"{doc_id}:{text_hash}:{occurrence}"))


def assign_point_ids(doc_id: str, chunks: list[Chunk]) -> list[str]:
    seen: dict[str, int] = {}
    ids = []
    for chunk in chunks:
        h = chunk.text_hash
        ids.append(point_id(doc_id, h, seen.get(h, 0)))
        seen[h] = seen.get(h, 0) + 1
    return ids


def count_tokens(text: str) -> int:
    return len(get_tokenizer()(text, add_special_tokens=False)["input_ids"])


def _windows(text: str, limit: int, overlap: int) -> list[str]:
    """Split one long text into token windows (cut at token offsets, so no word is lost)."""
    encoded = get_tokenizer()(text, add_special_tokens=False, return_offsets_mapping=True)
    offsets = encoded["offset_mapping"]
    if len(offsets) <= limit:
        return [text]
    parts, start = [], 0
    step = max(1, limit - overlap)
    while start < len(offsets):
        end = min(start + limit, len(offsets))
        part = text[offsets[start][0] : offsets[end - 1][1]].strip()
        # Re-tokenizing a slice can yield a token more than the window (word pieces at the
        # cut); shrink until the slice itself is within the limit.
        while end - start > 1 and count_tokens(part) > limit:
            end -= 1
            part = text[offsets[start][0] : offsets[end - 1][1]].strip()
        parts.append(part)
        if end == len(offsets):
            break
        start += min(step, end - start)
    return [p for p in parts if p]


def _cells(text: str, limit: int, overlap: int) -> list[str]:
    """Split a table row (``Header: value; ...``, see docsync.parsers.sheets) between cells:
    a chunk never ends inside a cell; only a single cell over the limit is cut in windows."""
    parts: list[str] = []
    current: list[str] = []
    for cell in text.split("; "):
        if current and count_tokens("; ".join([*current, cell])) > limit:
            parts.append("; ".join(current))
            current = []
        if count_tokens(cell) > limit:
            parts.extend(_windows(cell, limit, overlap))
            continue
        current.append(cell)
    if current:
        parts.append("; ".join(current))
    return parts


def chunk_blocks(blocks: list[Block], max_tokens: int = 200, overlap: int = 32) -> list[Chunk]:
    """Group blocks into chunks of at most ``max_tokens`` tokens (< the model's window)."""
    max_tokens = min(max_tokens, model_max_tokens() - 2)
    min_tokens = max_tokens // 4
    chunks: list[Chunk] = []
    current: list[str] = []
    pages: list[int] = []
    tokens = 0
    heading = ""

    def flush() -> None:
        nonlocal current, pages, tokens
        if current:
            text = "\n\n".join(current)
            chunks.append(Chunk(index=len(chunks), text=text, pages=sorted(set(pages)), heading=heading))
        current, pages, tokens = [], [], 0

    for block in blocks:
        text = block.text.strip()
        if not text:
            continue
        n = count_tokens(text)
        if block.kind == "title":
            # A title opens a new section, unless the current one is still tiny (parsers
            # label short lines such as table cells as titles; tiny chunks retrieve badly).
            if tokens >= min_tokens:
                flush()
            if not current:
                heading = text[:200]
        if n > max_tokens:
            flush()
            parts = _cells(text, max_tokens, overlap) if block.kind == "row" else _windows(text, max_tokens, overlap)
            for part in parts:
                current, pages, tokens = [part], [block.page] if block.page else [], 0
                flush()
            continue
        if tokens + n + 1 > max_tokens:
            flush()
        current.append(text)
        if block.page:
            pages.append(block.page)
        tokens += n + 1
    flush()
    for chunk in chunks:
        chunk.token_count = count_tokens(chunk.text)
    return chunks
