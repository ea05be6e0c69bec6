"""A/B of one docsync setting (issue 15's levers): the same generated share synced with two
values of an environment variable *at the same time* (initial, no change, 1% changed), each in
its own copy of the share and its own DOCSYNC_HOME, so that both see the same machine load.

    python -m bench.ab --docs 300 --var DOCSYNC_EMBED_BACKEND --values torch,onnx-int8
"""

from __future__ import annotations

import argparse
import os
import shutil
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from bench.common import WORK, report, table
from bench.incremental import docsync_run

if TYPE_CHECKING:
    from pathlib import Path

SCENARIOS = ("initial", "no change", "1% changed")


def series(base: Path, paths: list[Path], work: Path, env: dict, workers: int) -> list[dict]:
    from docsync.demo import modify_share

    share = work / "share"
    shutil.rmtree(work, ignore_errors=True)
    shutil.copytree(base, share)  # copy2 keeps mtimes
    copies = [share / p.relative_to(base) for p in paths]
    runs = []
    for label in SCENARIOS:
        if label == "1% changed":
            modify_share(copies, 0.01, seed=1)
        tag = label.replace(" ", "-").replace("%", "pct")
        result = docsync_run(share, work / "home", f"ab-{work.name}-{tag}", workers=workers, env=env)
        runs.append(result | {"scenario": label, "load": os.getloadavg()[0]})
    return runs


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--docs", type=int, default=300)
    parser.add_argument("--var", required=True, help="the environment variable to vary")
    parser.add_argument("--values", required=True, help="two values, comma-separated (A,B)")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    from docsync.demo import generate_share

    values = args.values.split(",")
    base = WORK / f"ab-{args.docs}" / "base"
    shutil.rmtree(base, ignore_errors=True)
    paths = generate_share(base, args.docs)
    with ThreadPoolExecutor(len(values)) as pool:
        futures = {v: pool.submit(series, base, paths, WORK / f"ab-{args.docs}" / v.replace("/", "_"),
                                  {args.var: v}, args.workers) for v in values}
        results = {v: f.result() for v, f in futures.items()}
    rows = []
    first = results[values[0]]
    for value, runs in results.items():
        for mine, ref in zip(runs, first, strict=True):
            rows.append([f"{args.var}={value}", mine["scenario"], mine["wall_s"], mine["cpu_s"], mine["process_cpu_s"],
                         mine["peak_rss_mib"], mine["embedded_texts"], ref["cpu_s"] / max(mine["cpu_s"], 1e-9),
                         f"{mine['load']:.1f}"])
    body = table(["setting", "scenario", "sync wall s", "sync CPU s", "process CPU s", "peak RSS MiB",
                  "texts embedded", f"CPU: {values[0]}/this", "load (1 min)"], rows)
    body += (f"\n\n{args.docs:,} generated TXT/MD documents, {args.workers} workers; both settings run concurrently "
             "on their own copy of the share (same machine load).")
    report(f"ab-{args.var.lower()}-{args.docs}", f"{args.var}: {' vs '.join(values)}", body, {"runs": results})


if __name__ == "__main__":
    main()
