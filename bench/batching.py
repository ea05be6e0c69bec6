"""Batches by count vs by estimated work (issue 14 item 3) on a real-format corpus with a few
large documents, synced by ``run_sync`` with 2 worker processes.

The corpus: the real files of ``tests/data/formats`` (every supported type) copied
``--batching-copies`` times, a long plain-text book (``--book-pages`` pages of 2,400 characters,
chapters and paragraphs of the demo generator's sentences) and a long PDF (``--pdf-pages``,
``bench.corpus.long_pdf``: digital pages and a few scanned ones). Each mode syncs the same share
into its own home:

- ``count``: the old plan, static batches of ``DOCSYNC_BATCH_SIZE`` (25) documents in plan order;
- ``work``: ``docsync.steps.plan.work_batches`` (the default).

Both switches are bench-only: the child replaces ``plan.work_batches`` for ``count`` and wraps
``process_batch`` to record each batch's start/end (epoch) and worker pid in a timeline file
(the pool pickles the wrapper by name, so the spawned workers run it too). From the timeline:
idle worker time = ``workers`` x the time any batch ran - the batches' summed durations (a worker
without a batch while another still works), the tail, and the spread of work per batch.

``--batching-parse`` also times the book alone through the parse stage: unstructured's
``partition_text`` (what plain text went through) and ``docsync.parsers.text`` when it has a
plain-text parser (``parse_plain``), each in its own process, side by side.

``python -m bench.batching child|parse ...`` are the children.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import threading
import time
from pathlib import Path

from bench.child import emit, timed

FORMATS = Path(__file__).resolve().parents[1] / "tests" / "data" / "formats"
PAGE_CHARS = 2400  # a printed book page of prose
MODES = ("count", "work")
ACL = json.dumps({"allow": ["group:staff"]})


# --- corpus ----------------------------------------------------------------------------------
def book_text(pages: int, seed: int = 0) -> str:
    """A long plain-text book: chapters ("CHAPTER 7" and a title line) of paragraphs of 3-6
    sentences from the demo share generator, about ``pages`` x 2,400 characters."""
    from docsync.demo.share import _FOLLOWUPS, _TOPICS, _sentence

    rng = random.Random(f"book-{seed}")
    parts: list[str] = []
    size, chapter, target = 0, 0, pages * PAGE_CHARS
    while size < target:
        if size >= chapter * 20 * PAGE_CHARS:  # a chapter every ~20 pages
            chapter += 1
            head = f"CHAPTER {chapter}\n\n{rng.choice(_TOPICS)} of the year {1900 + chapter}"
            parts.append(head)
            size += len(head) + 2
        sentences = [rng.choice(_FOLLOWUPS) if k and rng.random() < 0.25 else _sentence(rng)
                     for k in range(rng.randint(3, 6))]
        para = " ".join(sentences)
        parts.append(para)
        size += len(para) + 2
    return "\n\n".join(parts) + "\n"


def build_corpus(share: Path, copies: int, book_pages: int, pdf_pages: int) -> dict:
    """Write the share (with ``group:staff`` ACL sidecars); returns what it holds."""
    shutil.rmtree(share, ignore_errors=True)
    files = sorted(p for p in FORMATS.iterdir() if p.is_file() and p.name != "README.md")
    for c in range(copies):
        folder = share / f"copy-{c:02d}"
        folder.mkdir(parents=True)
        for src in files:
            shutil.copyfile(src, folder / src.name)
            (folder / f"{src.name}.acl.json").write_text(ACL)
    made: dict = {"formats_files": len(files) * copies, "copies": copies}
    if book_pages:
        book = share / "books" / "long-book.txt"
        book.parent.mkdir(parents=True)
        book.write_text(book_text(book_pages), encoding="utf-8")
        Path(f"{book}.acl.json").write_text(ACL)
        made["book"] = {"pages": book_pages, "bytes": book.stat().st_size}
    if pdf_pages:
        from bench.corpus import long_pdf

        made["pdf"] = long_pdf(share / "reports" / "long-report.pdf", pages=pdf_pages, scanned=2)
    return made


# --- timeline --------------------------------------------------------------------------------
def timed_process_batch(settings, batch_ref: str) -> str:
    """``process_batch`` that appends its batch's start/end, pid and planned work to the file
    named by $BENCH_TIMELINE (one JSON line; runs in the worker processes)."""
    from docsync import records
    from docsync.steps.plan import estimated_work
    from docsync.steps.process import process_batch

    batch = records.read_batch(batch_ref)
    start = time.time()
    ref = process_batch(settings, batch_ref)
    line = {"number": batch.number, "pid": os.getpid(), "start": start, "end": time.time(),
            "docs": len(batch.items), "bytes": sum(i.entry.size for i in batch.items),
            "work": round(sum(estimated_work(i.entry) for i in batch.items)),
            "paths": [i.path for i in batch.items if i.entry.size > 1 << 20]}  # the large ones
    with open(os.environ["BENCH_TIMELINE"], "a") as fh:
        fh.write(json.dumps(line) + "\n")
    return ref


def count_batches(work: list, batch_size: int) -> list[tuple]:
    """The old plan: static batches of ``batch_size`` documents in plan order."""
    return [tuple(work[i : i + batch_size]) for i in range(0, len(work), batch_size)]


def union_length(intervals: list[tuple[float, float]]) -> float:
    """Total length of the union of [start, end) intervals."""
    total, reach = 0.0, float("-inf")
    for start, end in sorted(intervals):
        if end > reach:
            total += end - max(start, reach)
            reach = end
    return total


def timeline_stats(batches: list[dict], workers: int) -> dict:
    """Idle worker time (a worker without a batch while another still works), the tail after the
    first worker ran out of batches, and the spread of planned work and duration per batch."""
    if not batches:
        return {"batches": 0}
    spans = [(b["start"], b["end"]) for b in batches]
    busy_any = union_length(spans)
    busy_sum = sum(e - s for s, e in spans)
    per_worker: dict[int, float] = {}
    for b in batches:
        per_worker[b["pid"]] = max(per_worker.get(b["pid"], 0.0), b["end"])
    ends = sorted(per_worker.values())
    works = [b["work"] for b in batches]
    durations = [e - s for s, e in spans]
    return {
        "batches": len(batches),
        "process_span_s": round(max(e for _s, e in spans) - min(s for s, _e in spans), 1),
        "busy_s": round(busy_sum, 1),
        "idle_worker_s": round(max(0.0, workers * busy_any - busy_sum), 1),
        "tail_s": round(ends[-1] - ends[0], 1) if len(ends) > 1 else 0.0,
        "work_max_over_mean": round(max(works) / statistics.mean(works), 2),
        "work_mib": [round(w / 2**20, 2) for w in works],
        "batch_s_min_median_max": [round(min(durations), 1), round(statistics.median(durations), 1),
                                   round(max(durations), 1)],
        "docs_min_max": [min(b["docs"] for b in batches), max(b["docs"] for b in batches)],
    }


# --- children --------------------------------------------------------------------------------
def child() -> None:
    """One ``run_sync(workers=N)`` of the share in ``--mode`` count|work."""
    parser = argparse.ArgumentParser()
    parser.add_argument("role")
    parser.add_argument("--share", required=True)
    parser.add_argument("--home", required=True)
    parser.add_argument("--mode", choices=MODES, required=True)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    os.environ["DOCSYNC_HOME"] = args.home
    os.environ["DOCSYNC_FILESHARE_ROOT"] = args.share
    for var in ("DOCSYNC_STATE_URL", "DOCSYNC_QDRANT_URL", "DOCSYNC_STAGING", "DOCSYNC_QDRANT_PATH"):
        os.environ.pop(var, None)
    timeline = Path(args.home) / "timeline.jsonl"
    timeline.parent.mkdir(parents=True, exist_ok=True)
    timeline.unlink(missing_ok=True)
    os.environ["BENCH_TIMELINE"] = str(timeline)  # inherited by the spawned workers

    from bench import batching  # by its module name: the pool pickles the wrapper by name, not as __main__
    from docsync import pipeline
    from docsync.config import load_settings
    from docsync.steps import plan

    if args.mode == "count":
        plan.work_batches = batching.count_batches
    pipeline.process_batch = batching.timed_process_batch
    settings = load_settings()
    result: dict = {"mode": args.mode, "workers": args.workers, "load_before": os.getloadavg()}
    with timed(result):
        summary = pipeline.run_sync(settings, args.share, workers=args.workers)
    result["load_after"] = os.getloadavg()
    batches = [json.loads(line) for line in timeline.read_text().splitlines()]
    result["timeline"] = sorted(batches, key=lambda b: b["start"])
    result["stats"] = timeline_stats(batches, args.workers)
    result["summary"] = {k: summary.get(k) for k in ("seen", "indexed", "quarantined", "deferred", "chunks",
                                                     "chunks_embedded", "ocr_pages")}
    emit(result)


def parse_child() -> None:
    """The book through one parser: ``--parser unstructured`` (``partition_text``, what plain
    text went through) or ``docsync`` (``parse_document``: what docsync does with it today)."""
    parser = argparse.ArgumentParser()
    parser.add_argument("role")
    parser.add_argument("--file", required=True)
    parser.add_argument("--parser", choices=("unstructured", "docsync"), required=True)
    args = parser.parse_args()
    data = Path(args.file).read_bytes()
    from unstructured.partition.text import partition_text

    from docsync.config import load_settings
    from docsync.parse import Block, decode_text, elements_to_blocks, parse_document

    def old(text: bytes) -> list[Block]:  # what docsync.parse did with plain text before issue 14 item 3
        return elements_to_blocks(partition_text(text=decode_text(text), languages=["eng"]))

    settings = load_settings()
    warm = b"Warm up the imports.\n\nA second paragraph with a verb in it.\n"
    parse_document(warm, "warm.txt", settings)
    old(warm)  # loads unstructured's sentence tokenizer
    result: dict = {"parser": args.parser, "bytes": len(data), "load_before": os.getloadavg()}
    with timed(result):
        if args.parser == "unstructured":
            blocks = old(data)
        else:
            blocks = parse_document(data, args.file, settings).blocks
    result["load_after"] = os.getloadavg()
    result |= {"blocks": len(blocks), "titles": sum(1 for b in blocks if b.kind == "title"),
               "chars": sum(len(b.text) for b in blocks)}
    emit(result)


# --- parent ----------------------------------------------------------------------------------
def _concurrently(jobs: dict, concurrent: bool) -> dict:
    """Run ``{key: callable}`` side by side in threads (each starts a child process) or in turn."""
    out: dict = {}
    if not concurrent:
        return {key: job() for key, job in jobs.items()}

    def run(key, job):
        try:
            out[key] = job()
        except Exception as exc:  # reported in the table, the other mode still counts
            out[key] = {"error": str(exc)[-2000:]}

    threads = [threading.Thread(target=run, args=item) for item in jobs.items()]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return out


def main(args: argparse.Namespace) -> None:
    from bench.common import WORK, run_child

    root = WORK / "batching"
    share = root / "share"
    made = build_corpus(share, args.batching_copies, args.book_pages, args.pdf_pages)
    env = {"DOCSYNC_DOC_TIMEOUT_S": "14400", "DOCSYNC_BATCH_BUDGET_S": "28800"}  # measure, never defer
    runs: list[dict] = []
    concurrent = not args.batching_sequential
    for rep in range(args.batching_repeats):
        def job(mode: str, rep: int = rep):
            home = root / f"home-{mode}-{rep}"
            shutil.rmtree(home, ignore_errors=True)
            r = run_child(["-m", "bench.batching", "child", "--share", str(share), "--home", str(home),
                           "--mode", mode, "--workers", str(args.workers or 2)],
                          env=env, log=WORK / "logs" / f"batching-{mode}-{rep}.log")
            return r | {"repeat": rep}

        out = _concurrently({m: (lambda m=m: job(m)) for m in MODES}, concurrent)
        runs += [out[m] | {"mode": m, "repeat": rep} for m in MODES]
        render(made, runs, [], concurrent)  # what is measured so far, in case a later repeat is cut short
    parse = []
    if args.batching_parse and made.get("book"):
        book = str(share / "books" / "long-book.txt")
        for rep in range(args.batching_repeats):
            out = _concurrently({p: (lambda p=p, rep=rep: run_child(
                ["-m", "bench.batching", "parse", "--file", book, "--parser", p],
                log=WORK / "logs" / f"batching-parse-{p}-{rep}.log")) for p in ("unstructured", "docsync")},
                concurrent)
            parse += [out[p] | {"parser": p, "repeat": rep} for p in out]
    render(made, runs, parse, concurrent)


def render(made: dict, runs: list[dict], parse: list[dict], concurrent: bool) -> None:
    from bench.common import report, table

    rows = []
    for r in runs:
        if "error" in r:
            rows.append([r["repeat"] + 1, r["mode"], "failed", *[""] * 9])
            continue
        s, st = r["summary"], r["stats"]
        rows.append([r["repeat"] + 1, r["mode"], r["wall_s"], r["process_cpu_s"], st["batches"], st["process_span_s"],
                     st["idle_worker_s"], st["tail_s"], st["work_max_over_mean"],
                     "/".join(str(x) for x in st["batch_s_min_median_max"]),
                     f"{s['indexed']}/{s['quarantined']}", f"{r['load_before'][0]:.1f}/{r['load_after'][0]:.1f}"])
    body = (f"Share: {made['formats_files']} real files ({made['copies']} copies of tests/data/formats)"
            + (f", a {made['book']['pages']:,}-page text book ({made['book']['bytes'] / 2**20:.1f} MiB)"
               if made.get("book") else "")
            + (f", a {made['pdf']['pages']:,}-page PDF ({made['pdf']['bytes'] / 2**20:.1f} MiB, "
               f"{made['pdf']['scanned']} scanned pages)" if made.get("pdf") else "")
            + f"; 2 workers; modes run {'concurrently' if concurrent else 'one after the other'}.\n\n")
    body += table(["run", "batches by", "wall s", "CPU s", "batches", "process span s", "idle worker s", "tail s",
                   "max/mean batch work", "batch s min/median/max", "indexed/quarantined", "load 1-min before/after"],
                  rows)
    body += ("\n\nIdle worker s: the time a worker had no batch while another still worked (2 x the time any batch "
             "ran - the batches' summed durations); tail s: from the first worker's last batch end to the last "
             "one's; batch work: the plan's estimate (`plan.estimated_work`).")
    if parse:
        body += "\n\nThe book alone through the parse stage (each parser in its own process):\n\n"
        body += table(["run", "parser", "wall s", "CPU s", "blocks", "titles", "load 1-min before/after"],
                      [[p["repeat"] + 1, p["parser"], p.get("wall_s", "failed"), p.get("cpu_s", ""),
                        p.get("blocks", ""), p.get("titles", ""),
                        f"{p['load_before'][0]:.1f}/{p['load_after'][0]:.1f}" if "load_before" in p else ""]
                       for p in parse])
    report("batching", "Batches by count vs by estimated work (issue 14 item 3)", body,
           {"corpus": made, "runs": runs, "parse": parse})


if __name__ == "__main__":
    import sys

    {"child": child, "parse": parse_child}[sys.argv[1]]()
