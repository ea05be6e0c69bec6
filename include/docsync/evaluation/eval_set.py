"""Evaluation sets: labelled queries per source, one JSON object per line (JSONL).

Each line::

    {"id": "q001",                                # optional; default "line<N>"
     "query": "how much did recurring revenue grow",
     "principals": ["user:fiona", "group:finance"],   # who searches (as a RAG app would pass them)
     "expected_paths": ["finance/annual-report-2025.pdf"],   # documents that answer; [] = none readable
     "forbidden_paths": ["finance/acquisition-memo.md"],     # optional: must never appear for them
     "passage": "48.2 million dollars",           # optional: text one retrieved chunk must contain
     "tags": ["pdf"]}                             # optional: per-tag recall in the report

Paths are the source's document paths as the index payload holds them (relative to the root).
A query with no ``expected_paths`` must name ``forbidden_paths``: it checks that a document the
principals may not read never comes back. The set of a source lives at
``$DOCSYNC_EVAL_DIR/<source>.jsonl`` (default ``$DOCSYNC_HOME/eval``) or wherever ``--set`` says.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path

FIELDS = {"id", "query", "principals", "expected_paths", "forbidden_paths", "passage", "tags"}
MAX_ERRORS = 20


class EvalSetError(ValueError):
    """An evaluation set that cannot be used; the message lists every problem with its line."""


@dataclass(frozen=True)
class EvalQuery:
    id: str
    query: str
    principals: tuple[str, ...]
    expected_paths: tuple[str, ...]
    forbidden_paths: tuple[str, ...] = ()
    passage: str = ""
    tags: tuple[str, ...] = ()

    @property
    def labelled(self) -> bool:
        """A query with expected documents (counted by recall, MRR, nDCG)."""
        return bool(self.expected_paths)

    def to_json(self) -> dict:
        out: dict = {"id": self.id, "query": self.query, "principals": list(self.principals),
                     "expected_paths": list(self.expected_paths)}
        if self.forbidden_paths:
            out["forbidden_paths"] = list(self.forbidden_paths)
        if self.passage:
            out["passage"] = self.passage
        if self.tags:
            out["tags"] = list(self.tags)
        return out


@dataclass(frozen=True)
class EvalSet:
    path: str
    sha: str  # content hash: a changed set starts a new baseline
    queries: tuple[EvalQuery, ...]


def _strings(value: object, name: str, allow_empty: bool) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise ValueError(f"'{name}' must be a list of non-empty strings")
    if not value and not allow_empty:
        raise ValueError(f"'{name}' must not be empty")
    return tuple(v.strip() for v in value)


def parse_query(obj: object, default_id: str) -> EvalQuery:
    """One line's object as an :class:`EvalQuery`; raises ValueError saying what is wrong."""
    from docsync.principals import InvalidPrincipal, canonical_principals

    if not isinstance(obj, dict):
        raise ValueError("each line must be a JSON object")
    unknown = sorted(set(obj) - FIELDS)
    if unknown:
        raise ValueError(f"unknown field(s) {unknown}; allowed: {sorted(FIELDS)}")
    query = obj.get("query")
    if not isinstance(query, str) or not query.strip():
        raise ValueError("'query' must be a non-empty string")
    principals = _strings(obj.get("principals"), "principals", allow_empty=False)
    try:
        canonical_principals(principals)
    except InvalidPrincipal as exc:
        raise ValueError(str(exc)) from None
    expected = _strings(obj.get("expected_paths", []), "expected_paths", allow_empty=True)
    forbidden = _strings(obj.get("forbidden_paths", []), "forbidden_paths", allow_empty=True)
    if not expected and not forbidden:
        raise ValueError("a query needs 'expected_paths' (what answers it) or 'forbidden_paths' (what must not)")
    if set(expected) & set(forbidden):
        raise ValueError(f"paths both expected and forbidden: {sorted(set(expected) & set(forbidden))}")
    passage = obj.get("passage", "")
    if not isinstance(passage, str):
        raise ValueError("'passage' must be a string")
    if passage and not expected:
        raise ValueError("'passage' needs 'expected_paths'")
    tags = _strings(obj.get("tags", []), "tags", allow_empty=True)
    qid = obj.get("id", default_id)
    if not isinstance(qid, str) or not qid.strip():
        raise ValueError("'id' must be a non-empty string")
    return EvalQuery(qid.strip(), query.strip(), principals, expected, forbidden, passage.strip(), tags)


def parse_lines(lines: list[str], where: str) -> tuple[EvalQuery, ...]:
    """Every query of a set's lines (blank lines and ``#`` comments skipped); raises
    :class:`EvalSetError` listing each bad line (up to MAX_ERRORS)."""
    queries: list[EvalQuery] = []
    errors: list[str] = []
    seen: dict[str, int] = {}
    for number, line in enumerate(lines, start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        try:
            query = parse_query(json.loads(line), f"line{number}")
            if query.id in seen:
                raise ValueError(f"duplicate id {query.id!r} (first on line {seen[query.id]})")
            seen[query.id] = number
            queries.append(query)
        except ValueError as exc:  # json.JSONDecodeError is one
            errors.append(f"{where}:{number}: {exc}")
    if not queries and not errors:
        errors.append(f"{where}: no queries (one JSON object per line)")
    if errors:
        more = f"\n  ... and {len(errors) - MAX_ERRORS} more" if len(errors) > MAX_ERRORS else ""
        raise EvalSetError(
            f"evaluation set {where} is invalid ({len(errors)} problem(s)); fix these lines "
            "(format: README, 'Retrieval evaluation'):\n  " + "\n  ".join(errors[:MAX_ERRORS]) + more
        )
    return tuple(queries)


def load_eval_set(path: Path) -> EvalSet:
    """Read and validate a set; raises :class:`EvalSetError` (missing file, bad lines)."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise EvalSetError(
            f"cannot read evaluation set {path}: {exc.strerror or exc}. Write one (README, 'Retrieval "
            "evaluation'), put it at $DOCSYNC_EVAL_DIR/<source>.jsonl or pass --set PATH."
        ) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise EvalSetError(f"evaluation set {path} is not UTF-8 text ({exc}); save it as UTF-8") from None
    return EvalSet(str(path), hashlib.sha256(raw).hexdigest(), parse_lines(text.splitlines(), str(path)))


def dump_lines(queries: list[EvalQuery] | tuple[EvalQuery, ...]) -> str:
    """A set's JSONL text (one object per line, keys in a fixed order)."""
    return "".join(json.dumps(q.to_json(), ensure_ascii=False) + "\n" for q in queries)


_WORD = re.compile(r"[a-z0-9]+")


def shared_ngrams(query: str, text: str, n: int = 5) -> set[tuple[str, ...]]:
    """Word n-grams the query shares with a document's text: a query that repeats the text
    verbatim measures string matching, not retrieval (the demo set has none of length 5)."""
    def grams(value: str) -> set[tuple[str, ...]]:
        words = _WORD.findall(value.lower())
        return {tuple(words[i : i + n]) for i in range(len(words) - n + 1)}

    return grams(query) & grams(text)
