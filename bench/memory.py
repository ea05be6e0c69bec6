"""Memory (issue 7): peak RSS of process_batch on one 1,000-page PDF (mostly digital pages,
some scanned); target < 1.5 GiB. ``python -m bench.memory --home H --root R`` is the child."""

from __future__ import annotations

import argparse
import os
import shutil

from bench.child import emit, timed
from bench.common import WORK, report, run_child, table
from bench.corpus import long_pdf

TARGET_MIB = 1536


def main(args: argparse.Namespace) -> None:
    root = WORK / "memory"
    shutil.rmtree(root, ignore_errors=True)
    made = long_pdf(root / "share" / "long-report.pdf", pages=args.pages, scanned=max(1, args.pages // 50))
    result = run_child(
        ["-m", "bench.memory", "--root", str(root / "share"), "--home", str(root / "home")],
        env={"DOCSYNC_DOC_TIMEOUT_S": "7200"},
        log=WORK / "logs" / "memory.log",
    )
    met = result["peak_rss_mib"] < TARGET_MIB and result["status"] == "ok"
    rows = [[f"{made['pages']} pages ({made['scanned']} scanned), {made['bytes'] / 2**20:.1f} MiB", result["status"],
             result["chunks"], result["ocr_pages"], result["wall_s"], result["peak_rss_mib"]]]
    body = table(["document", "status", "chunks", "OCR pages", "process_batch s", "peak RSS MiB"], rows)
    body += f"\n\nTarget: peak RSS < {TARGET_MIB} MiB: **{'met' if met else 'NOT met'}**."
    report("memory", f"Memory: one {made['pages']:,}-page PDF through process_batch", body, {"pdf": made, "run": result})


def child() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--root", required=True)
    parser.add_argument("--home", required=True)
    args = parser.parse_args()
    os.environ["DOCSYNC_HOME"] = args.home
    os.environ["DOCSYNC_FILESHARE_ROOT"] = args.root  # the share under test is the configured root
    from docsync import records
    from docsync.config import load_settings
    from docsync.steps.plan import plan
    from docsync.steps.process import process_batch

    settings = load_settings()
    planned = plan(settings, "bench-memory", args.root)
    result: dict = {}
    with timed(result):
        ref = process_batch(settings, planned.batches[0])
    doc = records.read_result(ref).documents[0]
    result |= {
        "status": str(doc.status),
        "failure": doc.failure.to_json() if doc.failure else None,
        "chunks": len(doc.chunks),
        "ocr_pages": doc.meta.ocr_pages if doc.meta else None,
    }
    emit(result)


if __name__ == "__main__":
    child()
