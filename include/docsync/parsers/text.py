"""Text in any common encoding, NDJSON, and the markup/junk measure of the document suite.

Decoding order: a byte-order mark; UTF-32/UTF-16 without one (told by where the NUL bytes
fall); strict UTF-8; then charset detection (cp1252, ISO-8859-x, Shift-JIS, ...). A wrong
guess would smuggle PII past the analyzer (UTF-16 read as UTF-8 puts NULs between the
characters), so an encoding that cannot be decided fails the document with that reason.
"""

from __future__ import annotations

import json
import re

from docsync.errors import Stage
from docsync.parse import Block, ParsedDocument, parse_failure

_BOMS = (
    (b"\xef\xbb\xbf", "utf-8-sig"),
    (b"\xff\xfe\x00\x00", "utf-32"),
    (b"\x00\x00\xfe\xff", "utf-32"),
    (b"\xff\xfe", "utf-16"),
    (b"\xfe\xff", "utf-16"),
)
SAMPLE = 4096


def _nul_encoding(data: bytes) -> str | None:
    """UTF-32/UTF-16 without a BOM, from the positions of NUL bytes in mostly-ASCII text."""
    sample = data[:SAMPLE]
    if len(sample) < 4 or sample.count(0) < len(sample) // 4:
        return None
    by_position = [sample[i::4].count(0) / max(len(sample[i::4]), 1) for i in range(4)]
    if by_position[1] > 0.9 and by_position[2] > 0.9 and by_position[3] > 0.9:
        return "utf-32-le"
    if by_position[0] > 0.9 and by_position[1] > 0.9 and by_position[2] > 0.9:
        return "utf-32-be"
    odd = sample[1::2].count(0) / max(len(sample[1::2]), 1)
    even = sample[0::2].count(0) / max(len(sample[0::2]), 1)
    if odd > 0.6 and even < 0.2:
        return "utf-16-le"
    if even > 0.6 and odd < 0.2:
        return "utf-16-be"
    return None


def text_encoding(data: bytes) -> str | None:
    """The encoding of ``data`` as text, or None when it cannot be decided (binary, or no
    encoding fits well enough)."""
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            return encoding
    nul = _nul_encoding(data)
    if nul:
        return nul
    if b"\x00" in data[:SAMPLE]:
        return None  # NULs without a UTF-16/32 pattern: binary
    try:
        data.decode("utf-8")
        return "utf-8"
    except UnicodeDecodeError:
        pass
    from charset_normalizer import from_bytes

    best = from_bytes(data[: 1 << 20]).best()
    if best is None or best.chaos > 0.3:
        return None
    return best.encoding


def decode_text(data: bytes, path: str = "document") -> str:
    """Text bytes to str, or ParseError (stage ``parse``) when the encoding is undecidable."""
    encoding = text_encoding(data)
    if encoding is None:
        raise parse_failure(
            Stage.PARSE,
            f"cannot tell the text encoding of {path}: it is neither UTF-8/16/32 nor a legacy encoding "
            "docsync recognises with confidence (or it is binary); save it as UTF-8 and sync again",
        )
    text = data.decode(encoding, errors="replace")
    return text.lstrip("\ufeff").replace("\x00", "")


def looks_like_text(data: bytes) -> bool:
    """True when bytes typed as generic binary are text after all (UTF-16 without a BOM, say)."""
    encoding = text_encoding(data[:SAMPLE * 4])
    if encoding is None:
        return False
    sample = data[: SAMPLE * 4].decode(encoding, errors="replace")
    printable = sum(1 for c in sample if c.isprintable() or c in "\r\n\t")
    return printable >= 0.95 * max(len(sample), 1)


def plain_blocks(text: str) -> list[Block]:
    """Plain text as unstructured's ``partition_text`` reads it (issue 14 item 3): paragraphs
    split the same way, but the costly per-paragraph classification (spaCy sentence
    tokenisation and POS tagging, minutes on a 1,000-page book) runs only for paragraphs it can
    change: docsync keeps a paragraph's text and whether it is a title, and unstructured never
    makes a title of more than ``UNSTRUCTURED_TITLE_MAX_WORD_LENGTH`` (12) space-separated
    words. Longer ones are text, with bullets cleaned as unstructured cleans a list item.
    The same blocks as ``partition_text`` (tests/test_parsers.py compares them)."""
    import os

    from unstructured.cleaners.core import auto_paragraph_grouper, clean_bullets
    from unstructured.partition.text import _is_empty_bullet, _split_by_paragraph, element_from_text
    from unstructured.partition.text_type import is_bulleted_text

    from docsync.parse import elements_to_blocks

    if not text.strip():
        return []
    max_title_words = int(os.environ.get("UNSTRUCTURED_TITLE_MAX_WORD_LENGTH", 12))
    blocks: list[Block] = []
    for paragraph in _split_by_paragraph(auto_paragraph_grouper(text)):
        paragraph = paragraph.strip()
        if not paragraph or _is_empty_bullet(paragraph):
            continue
        if len(paragraph.split(" ")) <= max_title_words:  # could be a title: unstructured decides
            blocks += elements_to_blocks([element_from_text(paragraph)])
            continue
        paragraph = clean_bullets(paragraph).strip() if is_bulleted_text(paragraph) else paragraph
        if paragraph:
            blocks.append(Block(paragraph))
    return blocks


def parse_ndjson(data: bytes, path: str, mime: str) -> ParsedDocument:
    """NDJSON / JSON Lines: one block per record, its fields as ``key: value`` lines (a line
    that is not JSON is kept as it is)."""
    blocks = []
    for line in decode_text(data, path).splitlines():
        line = line.strip()
        if not line:
            continue
        try:
            record = json.loads(line)
        except ValueError:
            blocks.append(Block(line))
            continue
        blocks.append(Block(_flatten(record) or line))
    return ParsedDocument(mime=mime, blocks=blocks, pages=1 if blocks else 0)


def _flatten(value: object, prefix: str = "") -> str:
    if isinstance(value, dict):
        return "\n".join(filter(None, (_flatten(v, f"{prefix}{k}.") for k, v in value.items())))
    if isinstance(value, list):
        return "\n".join(filter(None, (_flatten(v, prefix) for v in value)))
    if value is None or value == "":
        return ""
    return f"{prefix.rstrip('.')}: {value}" if prefix else str(value)


# --- markup / junk --------------------------------------------------------------------------
_TAG = re.compile(r"</?[A-Za-z][\w:.-]*(?:\s[^<>]{0,2000})?/?>|<!--.*?-->|<\?xml[^>]*\?>", re.S)
_CSS = re.compile(  # declarations of common CSS properties (not "Header: value;" of a table row)
    r"\b(?:font(?:-[a-z]+)?|margin(?:-[a-z]+)?|padding(?:-[a-z]+)?|color|background(?:-[a-z]+)?|border(?:-[a-z]+)*"
    r"|(?:min-|max-)?width|(?:min-|max-)?height|text-[a-z]+|display|line-height|vertical-align|white-space|position"
    r"|float|clear|overflow|letter-spacing|word-spacing|page-break-[a-z]+|list-style(?:-[a-z]+)?|top|left|right|bottom)"
    r"\s*:\s*[^;{}<>\n\"]{1,80};?"
)
_BASE64 = re.compile(r"[A-Za-z0-9+/]{60,}={0,2}")


def markup_ratio(text: str) -> float:
    """The share of ``text`` (extracted, before anonymization) that is markup rather than
    prose: tags, CSS declarations and base64 runs. A parser that read a document as plain
    text when it is HTML/XML comes out near 1; prose near 0."""
    if not text:
        return 0.0
    rest = text
    for pattern in (_TAG, _CSS, _BASE64):  # in turn: CSS inside a style attribute counts once
        rest = pattern.sub("", rest)
    return round((len(text) - len(rest)) / len(text), 4)
