"""Over-redaction of docsync.pii on real public documents with little or no personal data.

The documents are excerpts shipped under ``bench/lowpii/`` (sources and licences in its
README): federal rules and statutes, an SEC 10-K, a language reference, policies, a
licence, a paper. Each document is split into blocks at blank lines (as a parser would),
anonymized with ``anonymize_many`` and compared word by word with the original: a word
that is gone and was not a real person's name (``allowed.json``) was over-redacted.

Run: ``python -m bench.overredaction`` (``--show`` lists every removed span with its
entity type and context; ``--json`` writes the figures).
"""

from __future__ import annotations

import argparse
import difflib
import json
import re
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from docsync.config import apply_offline_env

apply_offline_env()

CORPUS = Path(__file__).resolve().parent / "lowpii"
TARGET = 0.005  # share of words removed as PII on this corpus
_TOKEN = re.compile(r"<[A-Z_]+(?:_[0-9a-f]{8})?>|\w+")
_TAG = re.compile(r"<([A-Z_]+?)(?:_[0-9a-f]{8})?>")


@dataclass
class DocResult:
    name: str
    words: int = 0
    removed: int = 0  # words replaced by an entity tag that are not allowed PII
    allowed: int = 0  # words of real names (allowed.json) that were removed: correct, not counted
    by_entity: Counter = field(default_factory=Counter)
    spans: list = field(default_factory=list)  # (entity, removed text, context)
    pii: int = 0  # mentions of the listed PII values (allowed.json) in the original
    leaked: list = field(default_factory=list)  # listed values still there, verbatim, after

    @property
    def share(self) -> float:
        return self.removed / max(self.words, 1)


def blocks(text: str) -> list[str]:
    return [b.strip() for b in re.split(r"\n\s*\n", text) if b.strip()]


def load_corpus(root: Path = CORPUS) -> dict[str, str]:
    return {p.stem: p.read_text(encoding="utf-8") for p in sorted(root.glob("*.txt"))}


def allowed_values(root: Path = CORPUS) -> dict[str, list[str]]:
    """Per document, the PII it really holds: real persons named in it, their e-mail
    addresses and phone numbers (removing them is right; keeping them is a leak)."""
    path = root / "allowed.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}


def allowed_words(root: Path = CORPUS) -> dict[str, set[str]]:
    """Per document, the words of its real PII (:func:`allowed_values`)."""
    return {doc: {w for name in names for w in re.findall(r"\w+", name)} for doc, names in allowed_values(root).items()}


def leaks(before: list[str], after: list[str], values: list[str]) -> tuple[int, list[str]]:
    """Mentions of the listed values in ``before``, and those still there verbatim in ``after``."""
    def find(value: str, texts: list[str]) -> int:
        pattern = re.compile(rf"(?<![\w@.-]){re.escape(value)}(?![\w@-])")
        return sum(len(pattern.findall(t)) for t in texts)

    total, left = 0, []
    for value in values:
        total += find(value, before)
        left += [value] * find(value, after)
    return total, left


def compare(name: str, before: list[str], after: list[str], allowed: set[str]) -> DocResult:
    """Words of ``before`` that ``after`` replaced by a tag, per entity type."""
    result = DocResult(name)
    for original, clean in zip(before, after):
        old = [m.group(0) for m in _TOKEN.finditer(original)]
        new = [m.group(0) for m in _TOKEN.finditer(clean)]
        result.words += len(old)
        matcher = difflib.SequenceMatcher(a=old, b=new, autojunk=False)
        for op, i1, i2, j1, j2 in matcher.get_opcodes():
            if op == "equal" or i1 == i2:
                continue
            tags = [_TAG.fullmatch(t).group(1) for t in new[j1:j2] if _TAG.fullmatch(t)]
            entity = tags[0] if tags else "OTHER"
            gone = old[i1:i2]
            ok = [w for w in gone if w in allowed]
            result.allowed += len(ok)
            counted = len(gone) - len(ok)
            if counted:
                result.removed += counted
                result.by_entity[entity] += counted
                context = " ".join(old[max(0, i1 - 4) : i1] + ["[" + " ".join(gone) + "]"] + old[i2 : i2 + 4])
                result.spans.append((entity, " ".join(gone), context))
    return result


def measure(settings, corpus: dict[str, str] | None = None, root: Path = CORPUS) -> list[DocResult]:
    from docsync import pii

    corpus = load_corpus(root) if corpus is None else corpus
    allowed, values = allowed_words(root), allowed_values(root)
    results = []
    for name, text in corpus.items():
        before = [pii.normalize_text(b) for b in blocks(text)]
        after, _counts = pii.anonymize_many(before, settings)
        result = compare(name, before, after, allowed.get(name, set()))
        result.pii, result.leaked = leaks(before, after, values.get(name, []))
        results.append(result)
    return results


def report(results: list[DocResult], show: bool = False) -> str:
    lines = ["| document | words | removed | share | by entity |", "|---|---:|---:|---:|---|"]
    total = DocResult("all")
    for r in results:
        kinds = ", ".join(f"{k} {n}" for k, n in r.by_entity.most_common()) or "-"
        lines.append(f"| {r.name} | {r.words:,} | {r.removed} | {r.share:.2%} | {kinds} |")
        total.words += r.words
        total.removed += r.removed
        total.allowed += r.allowed
        total.by_entity.update(r.by_entity)
        total.pii += r.pii
        total.leaked += r.leaked
    kinds = ", ".join(f"{k} {n}" for k, n in total.by_entity.most_common()) or "-"
    lines.append(f"| **all** | {total.words:,} | {total.removed} | **{total.share:.2%}** | {kinds} |")
    lines.append(f"\nreal names removed (allowed, not counted): {total.allowed} words; target <= {TARGET:.1%}")
    if total.pii:
        lines.append(f"real PII mentions (allowed.json) left verbatim: {len(total.leaked)} of {total.pii}")
    if show:
        for r in results:
            for entity, gone, context in r.spans:
                lines.append(f"  {r.name}: {entity}: {gone!r} in ... {context} ...")
            lines += [f"  {r.name}: LEAK: {value!r}" for value in r.leaked]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--show", action="store_true", help="list every removed span with its context")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--corpus", type=Path, default=CORPUS,
                        help="a folder of *.txt documents and allowed.json (default bench/lowpii; the held-out "
                             "set written for issue 21 is bench/prose_heldout)")
    args = parser.parse_args(argv)

    from docsync import pii
    from docsync.config import load_settings

    settings = load_settings()
    pii.get_analyzer()
    started = time.perf_counter()
    results = measure(settings, root=args.corpus)
    seconds = time.perf_counter() - started
    print(f"## Over-redaction on {len(results)} low-PII documents of {args.corpus.name} ({seconds:.1f} s)\n")
    print(report(results, args.show))
    words = sum(r.words for r in results)
    share = sum(r.removed for r in results) / max(words, 1)
    if args.json:
        args.json.write_text(json.dumps({
            "words": words, "share": share, "seconds": round(seconds, 1),
            "pii": sum(r.pii for r in results), "leaked": sum(len(r.leaked) for r in results),
            "documents": [{"name": r.name, "words": r.words, "removed": r.removed, "share": r.share,
                           "by_entity": dict(r.by_entity)} for r in results],
        }, indent=2))
    ok = share <= TARGET
    print("\ntarget met" if ok else "\ntarget MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
