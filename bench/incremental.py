"""Incremental sync (issue 3): initial load, no-change re-sync and a 1% change re-sync of
N small documents. Target: no-change re-sync < 5% of the initial load, zero embeddings."""

from __future__ import annotations

import os
import shutil
from typing import TYPE_CHECKING

from bench.common import RESULTS, WORK, bar_chart, report, run_child, table

if TYPE_CHECKING:
    import argparse
    from pathlib import Path

TARGET_RATIO = 0.05


WORKERS = max(1, os.cpu_count() or 1)  # batch worker processes, as many as the DAG would run at once


def docsync_run(
    share: Path, home: Path, label: str, profile: Path | None = None, workers: int | None = None, env: dict | None = None
) -> dict:
    """One docsync sync in a fresh process. Profiled runs use one process (cProfile sees only its own)."""
    workers = 1 if profile else (workers or WORKERS)
    args = ["-m", "bench.docsync_sync", "--share", str(share), "--home", str(home), "--workers", str(workers)]
    if profile:
        args += ["--profile", str(profile)]
    result = run_child(args, log=WORK / "logs" / f"docsync-{label}.log", env=env)
    result["scenario"] = label
    result["workers"] = workers
    return result


def fresh_share(n: int, name: str) -> tuple[Path, list[Path]]:
    """A generated share of n small TXT/MD documents (regenerated for every run)."""
    from docsync.demo import generate_share

    root = WORK / name
    shutil.rmtree(root, ignore_errors=True)
    return root, generate_share(root / "share", n)


def sync_scenarios(n: int, name: str, changed: bool = True, profile: bool = False) -> list[dict]:
    """initial, no-change (and 1% modified/deleted/added) docsync runs, each in a fresh process."""
    from docsync.demo import modify_share

    root, paths = fresh_share(n, name)
    home = root / "home"
    runs = [docsync_run(root / "share", home, f"{name}-initial")]
    runs.append(docsync_run(root / "share", home, f"{name}-nochange"))
    if profile:  # a second no-change run under cProfile (its overhead stays out of the table)
        prof = RESULTS / f"{name}-nochange-profile.txt"
        docsync_run(root / "share", home, f"{name}-nochange-profiled", profile=prof)
        runs[-1]["profile"] = str(prof)
    if changed:
        modify_share(paths, 0.01, seed=1)
        runs.append(docsync_run(root / "share", home, f"{name}-changed-1pct"))
    for r, label in zip(runs, ("initial", "no change", "1% changed")):
        r["scenario"] = label
    return runs


def main(args: argparse.Namespace) -> None:
    render(args.docs, sync_scenarios(args.docs, f"incremental-{args.docs}", profile=args.profile), args.profile)


def render(n: int, runs: list[dict], profile: bool = False) -> None:
    base = runs[0]["wall_s"]
    base_cpu = runs[0]["cpu_s"]
    rows = [
        [r["scenario"], r["wall_s"], r["cpu_s"], r["wall_s"] / base, r["cpu_s"] / base_cpu, r["embedded_texts"],
         r["peak_rss_mib"]]
        for r in runs
    ]
    nochange = runs[1]
    met = nochange["wall_s"] < TARGET_RATIO * base and nochange["embedded_texts"] == 0
    body = table(["scenario", "wall s", "CPU s", "wall vs initial", "CPU vs initial", "texts embedded",
                  "peak RSS MiB"], rows)
    body += (
        f"\n\n{n:,} documents. Target: no-change re-sync < {TARGET_RATIO:.0%} of the initial load and "
        f"zero embeddings: **{'met' if met else 'NOT met'}** ({nochange['wall_s'] / base:.2%} of the wall time, "
        f"{nochange['cpu_s'] / base_cpu:.2%} of the CPU time, "
        f"{nochange['embedded_texts']} texts embedded)."
    )
    if profile:
        body += f"\n\nProfile of the no-change run: `{nochange.get('profile')}`."
    report(f"incremental-{n}", f"Incremental sync, {n:,} documents", body, {"runs": runs})
    bar_chart(
        f"incremental-{n}",
        f"docsync incremental sync, {n:,} documents",
        [r["scenario"] for r in runs],
        {"wall s": [r["wall_s"] for r in runs], "CPU s": [r["cpu_s"] for r in runs]},
        "seconds (log)",
        log=True,
    )
