"""Large, cheap TXT/MD shares for throughput and incremental-sync benchmarks:
``generate_share`` writes one, ``modify_share`` modifies, deletes and adds a fraction of it."""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

from docsync.demo.render import FIXED_MTIME, _acl_path, _set_mtime

_DAY = 86400.0
_DEPTS = ("finance", "hr", "engineering", "sales", "support", "legal")
_USERS = ("alice", "bob", "carol", "dave", "erin", "frank")
_SUBJECTS = (
    "The data platform team", "Our finance group", "The customer success function",
    "The security working group", "Product management", "The people team",
    "The sales operations group", "The infrastructure squad", "Legal counsel",
    "The analytics guild", "The support organisation", "The procurement office",
)
_VERBS = (
    "reviewed", "streamlined", "documented", "automated", "audited", "redesigned",
    "consolidated", "prioritised", "piloted", "benchmarked", "simplified", "migrated",
)
_OBJECTS = (
    "the quarterly forecasting workflow", "the vendor onboarding checklist",
    "the incident response playbook", "the revenue recognition process",
    "the access review procedure", "the data retention schedule",
    "the customer health scoring model", "the release approval gate",
    "the expense reimbursement policy", "the warehouse cost dashboard",
    "the contract renewal pipeline", "the backup restore drill",
)
_QUALIFIERS = (
    "to reduce manual effort", "ahead of the next planning cycle",
    "after feedback from several customers", "with help from an external partner",
    "to close gaps found in the last audit", "without increasing headcount",
    "so that reporting becomes more consistent", "as part of the reliability program",
    "while keeping existing integrations stable", "to shorten approval times",
)
_FOLLOWUPS = (
    "Early results are encouraging, although adoption is uneven across regions.",
    "The change will be rolled out gradually and monitored closely.",
    "Open questions are tracked in the shared planning document.",
    "Stakeholders agreed to revisit the decision after one full cycle.",
    "Several teams volunteered to test the new approach first.",
    "Costs stayed within the approved budget for this initiative.",
    "A short training session will be offered to everyone affected.",
    "Metrics for success were defined before any work started.",
)
_TOPICS = (
    "Status update", "Process review", "Planning notes", "Meeting summary",
    "Policy draft", "Retrospective", "Project brief", "Decision record",
)


def _sentence(rng: random.Random) -> str:
    return (f"{rng.choice(_SUBJECTS)} {rng.choice(_VERBS)} {rng.choice(_OBJECTS)} "
            f"{rng.choice(_QUALIFIERS)}.")


def _paragraph(rng: random.Random) -> str:
    parts = [_sentence(rng) for _ in range(rng.randint(2, 4))]
    parts.insert(rng.randint(1, len(parts)), rng.choice(_FOLLOWUPS))
    return " ".join(parts)


def _share_doc(rng: random.Random, idx: int, ext: str) -> str:
    """A 100-400 word TXT/MD document with a unique reference code."""
    target = rng.randint(100, 360)
    title = f"{rng.choice(_TOPICS)} {idx:05d}: {rng.choice(_OBJECTS)}"
    ref = f"Reference NW-{idx:05d}."
    md = ext == ".md"
    blocks: list[str] = [f"# {title}" if md else title, ref]
    words = len(blocks[0].split()) + 1
    para: list[str] = []
    para_len = rng.randint(3, 5)
    while words < target:
        if not para and md and len(blocks) > 3 and rng.random() < 0.5:
            heading = f"## {rng.choice(_TOPICS)}"
            blocks.append(heading)
            words += len(heading.split())
        sentence = rng.choice(_FOLLOWUPS) if para and rng.random() < 0.25 else _sentence(rng)
        para.append(sentence)
        words += len(sentence.split())
        if len(para) >= para_len:
            blocks.append(" ".join(para))
            para, para_len = [], rng.randint(3, 5)
    if para:
        blocks.append(" ".join(para))
    return "\n\n".join(blocks) + "\n"


def _share_principals(rng: random.Random, dept: str, principals: list[str] | None) -> list[str]:
    if principals:
        return sorted(rng.sample(principals, min(len(principals), rng.randint(1, 2))))
    allow = [f"group:{dept}"]
    r = rng.random()
    if r < 0.15:
        allow.append("everyone")
    elif r < 0.45:
        allow.append(f"user:{rng.choice(_USERS)}")
    return allow


def generate_share(
    out_dir: Path, n: int, *, seed: int = 0, principals: list[str] | None = None
) -> list[Path]:
    """Write ``n`` small TXT/MD documents (+ ``.acl.json`` sidecars) under ``out_dir``.

    Layout: ``<dept>/vol-XXX/batch-XXXX/doc-XXXXX.{txt,md}``, 100 documents per
    leaf folder. ACLs draw 1-2 entries from ``principals`` when given, otherwise
    ``group:<dept>`` plus sometimes ``everyone`` or a ``user:``. Returns the
    document paths (not sidecars) in index order. Deterministic for a given seed.
    """
    out_dir = Path(out_dir)
    rng = random.Random(f"share-{seed}")
    docs: list[Path] = []
    made_dirs: set[Path] = set()
    for i in range(n):
        folder = i // 100
        dept = _DEPTS[folder % len(_DEPTS)]
        d = out_dir / dept / f"vol-{folder // 10:03d}" / f"batch-{folder:04d}"
        if d not in made_dirs:
            d.mkdir(parents=True, exist_ok=True)
            made_dirs.add(d)
        ext = ".md" if rng.random() < 0.35 else ".txt"
        path = d / f"doc-{i:05d}{ext}"
        path.write_text(_share_doc(rng, i, ext), encoding="utf-8")
        acl = _acl_path(path)
        acl.write_text(json.dumps({"allow": _share_principals(rng, dept, principals)}) + "\n",
                       encoding="utf-8")
        os.utime(path, (FIXED_MTIME, FIXED_MTIME))
        os.utime(acl, (FIXED_MTIME, FIXED_MTIME))
        docs.append(path)
    return docs


def modify_share(paths: list[Path], fraction: float, *, seed: int) -> dict[str, list[Path]]:
    """Modify, delete and add ``fraction`` of the documents each (for incremental benchmarks).

    ``k = round(len(existing) * fraction)`` (at least 1 when fraction > 0, at most
    half the documents so modified and deleted stay disjoint). Modified documents
    get an extra paragraph and their mtime bumped by one day; deleted documents
    lose their sidecar too; added documents land in existing folders with a copy
    of a neighbour's sidecar. Returns ``{"modified", "deleted", "added"}``.
    """
    if not 0.0 <= fraction <= 1.0:
        raise ValueError("fraction must be within [0, 1]")
    rng = random.Random(f"modify-{seed}")
    existing = [Path(p) for p in paths if Path(p).exists()]
    k = round(len(existing) * fraction)
    if fraction > 0 and existing:
        k = max(1, k)
    k = min(k, len(existing) // 2)
    chosen = rng.sample(existing, 2 * k)
    modified, deleted = chosen[:k], chosen[k:]
    gone = set(deleted)
    neighbours = [p for p in existing if p not in gone] or existing

    for p in modified:
        text = p.read_text(encoding="utf-8")
        sep = "" if text.endswith("\n") else "\n"
        p.write_text(f"{text}{sep}\nRevision note (seed {seed}): {_paragraph(rng)}\n", encoding="utf-8")
        old = p.stat().st_mtime
        os.utime(p, (old + _DAY, old + _DAY))

    for p in deleted:
        p.unlink()
        _acl_path(p).unlink(missing_ok=True)

    added: list[Path] = []
    for j in range(k):
        near = rng.choice(neighbours)
        ext = near.suffix if near.suffix in (".txt", ".md") else ".txt"
        n = 0
        while True:
            path = near.with_name(f"added-s{seed}-{j:05d}{f'-{n}' if n else ''}{ext}")
            if not path.exists():
                break
            n += 1
        path.write_text(_share_doc(rng, 90000 + j, ext), encoding="utf-8")
        near_acl = _acl_path(near)
        allow = (json.loads(near_acl.read_text(encoding="utf-8")).get("allow", ["everyone"])
                 if near_acl.exists() else ["everyone"])
        _acl_path(path).write_text(json.dumps({"allow": allow}) + "\n", encoding="utf-8")
        t = FIXED_MTIME + _DAY
        _set_mtime([path, _acl_path(path)], t)
        added.append(path)

    return {"modified": modified, "deleted": deleted, "added": added}
