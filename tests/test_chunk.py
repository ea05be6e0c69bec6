"""docsync.chunk: token limits measured with the real all-MiniLM-L6-v2 tokenizer."""

from __future__ import annotations

import random
import uuid

import pytest

from docsync.chunk import Chunk, assign_point_ids, chunk_blocks, count_tokens, point_id
from docsync.embed import MODEL_MAX_TOKENS, get_tokenizer
from docsync.parse import Block

LIMIT = MODEL_MAX_TOKENS - 2  # 254: the model's 256 minus [CLS] and [SEP]

WORDS = (
    "the team reviewed quarterly revenue forecasts and updated the staffing plan for "
    "warehouse operations while analysts reconciled invoices against purchase orders "
    "before the board meeting on customer retention pricing strategy and platform reliability"
).split()

# words that split into several word pieces: cutting windows inside them is the hard case
HARD_WORDS = (
    "antidisestablishmentarianism", "hyperparameterization", "Qdrant", "tesseract", "xylophonist",
    "internationalization", "pseudonymization", "ünïcödé", "naïveté", "3.14159", "ACME-42",
    "e-mail", "zzyzx", "floccinaucinihilipilification",
)


@pytest.fixture(scope="module", autouse=True)
def _tokenizer():
    return get_tokenizer()  # loads the model once per process


def _text(n_words: int, seed: int, vocab=WORDS) -> str:
    rng = random.Random(seed)
    return " ".join(rng.choice(vocab) for _ in range(n_words))


def _model_tokens(text: str) -> int:
    """Tokens the model sees, including its special tokens."""
    return len(get_tokenizer()(text)["input_ids"])


def test_long_text_no_chunk_over_model_limit():
    text = _text(6000, seed=1)
    assert count_tokens(text) > 5000
    chunks = chunk_blocks([Block(text=text, page=4)])
    assert len(chunks) > 20
    for chunk in chunks:
        assert chunk.token_count == count_tokens(chunk.text)
        assert 0 < chunk.token_count <= LIMIT
        assert _model_tokens(chunk.text) <= MODEL_MAX_TOKENS
        assert chunk.pages == [4]
    assert [c.index for c in chunks] == list(range(len(chunks)))


def test_max_tokens_above_model_limit_is_clamped():
    blocks = [Block(text=_text(12, seed=i)) for i in range(300)]
    chunks = chunk_blocks(blocks, max_tokens=1000, overlap=32)
    assert max(c.token_count for c in chunks) <= LIMIT
    assert max(c.token_count for c in chunks) > 200  # the clamp, not the default, applies


def test_many_short_blocks_are_packed_under_the_limit():
    rng = random.Random(3)
    blocks = [Block(text=_text(rng.randint(3, 25), seed=i), page=1 + i // 50) for i in range(600)]
    chunks = chunk_blocks(blocks, max_tokens=200, overlap=32)
    assert 10 < len(chunks) < 600  # packed, not one chunk per block
    for chunk in chunks:
        assert chunk.token_count <= 200
        assert _model_tokens(chunk.text) <= MODEL_MAX_TOKENS
    # no block is lost or duplicated, order is kept
    joined = [part for chunk in chunks for part in chunk.text.split("\n\n")]
    assert joined == [b.text for b in blocks]
    # pages of a chunk are those of its blocks
    position = 0
    for chunk in chunks:
        n = len(chunk.text.split("\n\n"))
        assert chunk.pages == sorted({b.page for b in blocks[position : position + n]})
        position += n


def test_hard_text_stays_under_model_limit_with_default_settings():
    chunks = chunk_blocks([Block(text=_text(3000, seed=1, vocab=HARD_WORDS), page=1)])
    assert max(count_tokens(c.text) for c in chunks) <= LIMIT


@pytest.mark.parametrize(
    ("vocab", "max_tokens"),
    [(WORDS, LIMIT), (HARD_WORDS, LIMIT), (HARD_WORDS, 200)],
    ids=["english-254", "pieces-254", "pieces-200"],
)
def test_windows_never_exceed_max_tokens(vocab, max_tokens):
    """Windows cut inside a word re-tokenize into more pieces ("invoices" -> "ices" = 2 pieces);
    the slice itself, not the window of original tokens, must respect the limit."""
    text = _text(4000, seed=2, vocab=vocab)
    chunks = chunk_blocks([Block(text=text, page=1)], max_tokens=max_tokens, overlap=32)
    assert max(count_tokens(c.text) for c in chunks) <= max_tokens


def test_long_block_windows_overlap():
    text = _text(3000, seed=5)
    chunks = chunk_blocks([Block(text=text, page=1)], max_tokens=200, overlap=32)
    assert len(chunks) > 5
    starts = []
    position = 0
    for chunk in chunks:
        start = text.index(chunk.text, position)  # each window is a verbatim slice, in order
        starts.append((start, start + len(chunk.text)))
        position = start + 1
    assert starts[0][0] == 0 and starts[-1][1] == len(text)  # nothing lost at either end
    for (_s1, end1), (s2, _e2) in zip(starts, starts[1:]):
        assert s2 < end1, "consecutive windows must overlap"
        assert 20 <= count_tokens(text[s2:end1]) <= 40  # ~ the 32 requested tokens


def test_no_overlap_when_zero():
    text = _text(2000, seed=6)
    chunks = chunk_blocks([Block(text=text)], max_tokens=100, overlap=0)
    position = 0
    for chunk in chunks:
        start = text.index(chunk.text, position)
        assert start >= position
        position = start + len(chunk.text)


def _section(seed: int, n_words: int = 70) -> str:
    return _text(n_words, seed=seed) + "."


def test_titles_start_new_chunks_and_become_heading():
    blocks = [
        Block(_section(10), page=1),
        Block("Introduction", page=1, kind="title"),
        Block(_section(11, 40), page=1),
        Block(_section(12, 40), page=2),
        Block("Financial results", page=3, kind="title"),
        Block(_section(13), page=3),
        Block("Outlook", page=4, kind="title"),
        Block(_section(14), page=4),
    ]
    chunks = chunk_blocks(blocks, max_tokens=200, overlap=32)
    assert [c.heading for c in chunks] == ["", "Introduction", "Financial results", "Outlook"]
    assert chunks[0].text == blocks[0].text and chunks[0].pages == [1]
    assert chunks[1].text.startswith("Introduction\n\n")
    assert chunks[1].pages == [1, 2]
    assert chunks[2].text.startswith("Financial results\n\n") and chunks[2].pages == [3]
    assert chunks[3].text.startswith("Outlook\n\n") and chunks[3].pages == [4]


def test_tiny_title_sections_are_merged():
    """Short lines labelled as titles (table cells) do not each open a chunk."""
    blocks = [Block("Metric", kind="title"), Block("36.8"), Block("Gross margin", kind="title"), Block("71%"),
              Block("Free cash flow", kind="title"), Block("3.9")]
    chunks = chunk_blocks(blocks, max_tokens=200)
    assert len(chunks) == 1
    assert chunks[0].heading == "Metric"
    assert chunks[0].text.split("\n\n") == [b.text for b in blocks]


def test_heading_carries_over_to_windowed_and_following_chunks():
    blocks = [Block("Appendix", page=7, kind="title"), Block(_text(1500, seed=7), page=7), Block("Short tail.", page=8)]
    chunks = chunk_blocks(blocks, max_tokens=150, overlap=20)
    assert len(chunks) > 3
    assert all(c.heading == "Appendix" for c in chunks)
    assert chunks[-1].text == "Short tail." and chunks[-1].pages == [8]


def test_blocks_without_pages_and_blank_blocks():
    chunks = chunk_blocks([Block("   "), Block("Some text."), Block("")])
    assert len(chunks) == 1 and chunks[0].pages == [] and chunks[0].text == "Some text."
    assert chunk_blocks([]) == []


# --- point ids --------------------------------------------------------------------------


def _chunks(*texts: str) -> list[Chunk]:
    return [Chunk(index=i, text=t) for i, t in enumerate(texts)]


def test_assign_point_ids_deterministic_and_valid_uuids():
    chunks = _chunks("alpha", "bravo", "charlie")
    first = assign_point_ids("doc-1", chunks)
    assert first == assign_point_ids("doc-1", _chunks("alpha", "bravo", "charlie"))
    assert len(set(first)) == 3
    for pid in first:
        assert str(uuid.UUID(pid)) == pid


def test_duplicate_texts_get_distinct_ids():
    ids = assign_point_ids("doc-1", _chunks("same", "same", "other", "same"))
    assert len(set(ids)) == 4
    assert ids[0] == point_id("doc-1", Chunk(0, "same").text_hash, 0)
    assert ids[3] == point_id("doc-1", Chunk(0, "same").text_hash, 2)


def test_ids_follow_text_not_position_and_depend_on_document():
    a = dict(zip(["alpha", "bravo"], assign_point_ids("doc-1", _chunks("alpha", "bravo"))))
    b = dict(zip(["new", "bravo", "alpha"], assign_point_ids("doc-1", _chunks("new", "bravo", "alpha"))))
    assert a["alpha"] == b["alpha"] and a["bravo"] == b["bravo"]
    assert set(assign_point_ids("doc-2", _chunks("alpha", "bravo"))).isdisjoint(a.values())
