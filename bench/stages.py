"""Stage limits (issue 7): raw throughput of the embedder, tesseract and embedded Qdrant, and
docsync's end-to-end throughput on a mixed corpus as a fraction of the slowest stage's limit.

Both wall-clock and CPU-time figures are reported: on a shared (busy) machine wall-clock
rates swing with the load, CPU seconds much less."""

from __future__ import annotations

import os
import shutil
from typing import TYPE_CHECKING

from bench.common import RESULTS, WORK, bar_chart, report, run_child, table
from bench.corpus import DEFAULT_MIX, SCANNED_MIX, generate_mixed
from bench.incremental import docsync_run

if TYPE_CHECKING:
    import argparse

TARGET = 0.80
CORES = os.cpu_count() or 1
UNITS = {"embed": "chunks", "ocr": "pages", "qdrant": "points"}
LABELS = {
    "embed": "embedding (all-MiniLM-L6-v2, batch 32)",
    "ocr": "tesseract OCR (OMP_THREAD_LIMIT=1, 2 workers, 300 dpi, the scanned corpus's pages)",
    "qdrant": "Qdrant local-mode upsert (batches of 256)",
}


def stage(name: str, count: int, *extra: str) -> dict:
    return run_child(["-m", "bench.stage_limits", name, "--count", str(count), *extra],
                     log=WORK / "logs" / f"stage-{name}.log")


# Until 2026-12-04 both paths ran with batches of 5 documents, to keep both worker processes busy
# to the end on a corpus of a few dozen documents; the plan now spreads heavy work over the
# workers itself (steps.plan.work_batches), so the default is what a user runs: the product's
# batch size. ``--stages-batch-size 5`` repeats the earlier series.
CORPORA = {  # name -> (mix, pages per scanned document)
    "mixed": (DEFAULT_MIX, 1),
    "scanned": (SCANNED_MIX, 4),
}


def batch_env(args: argparse.Namespace) -> dict:
    """``DOCSYNC_BATCH_SIZE`` for both paths: unset (the product's default, what a user who sets
    nothing runs), or ``--stages-batch-size N`` (5: the series before 2026-12-04 night)."""
    size = getattr(args, "stages_batch_size", None) or 0
    return {"DOCSYNC_BATCH_SIZE": str(size)} if size > 0 else {}


def main(args: argparse.Namespace) -> None:
    env = batch_env(args)
    sizes = {"mixed": args.e2e_docs, "scanned": max(1, args.e2e_docs // 5)}
    roots = {name: WORK / f"e2e-{name}-{n}" for name, n in sizes.items()}
    runs = {}
    for name, (mix, scan_pages) in CORPORA.items():
        shutil.rmtree(roots[name], ignore_errors=True)
        runs[name] = {"n": sizes[name],
                      "kinds": generate_mixed(roots[name] / "share", sizes[name], mix, scan_pages=scan_pages)}
    # Raw limits on the same material: tesseract on the scanned corpus's own pages.
    limits = {"embed": stage("embed", 640), "qdrant": stage("qdrant", 20000),
              "ocr": stage("ocr", 24, "--pdf-dir", str(roots["scanned"] / "share"))}
    for name, run in runs.items():
        run["e2e"] = docsync_run(roots[name] / "share", roots[name] / "home", roots[name].name, env=env)
        if getattr(args, "stages_dag", False):
            run["dag"] = dag_load(roots[name], run["e2e"].get("workers", 2), env)
    if getattr(args, "stages_dag", False):  # the DAG series skips the profile (one process, slow under cProfile)
        render(limits, runs, env)
        return
    # A profiled load of the mixed corpus (fresh home, one process): where docsync's time goes.
    runs["mixed"]["profiled"] = docsync_run(roots["mixed"] / "share", roots["mixed"] / "home-profiled",
                                            "e2e-mixed-profiled", profile=RESULTS / f"e2e-{sizes['mixed']}-profile.txt",
                                            env=env)
    render(limits, runs, env)


def dag_load(root, workers: int, batch_env: dict) -> dict:
    """The same corpus loaded by the fileshare_sync DAG (issue 15 item 5: the DAG path), under
    LocalExecutor with the worker host (its warm-up not counted, as in bench/dag.py)."""
    from bench.airflow_stack import Stack
    from bench.dag import PASSED_SETTINGS, dag_run

    env = batch_env | {k: os.environ[k] for k in PASSED_SETTINGS if os.environ.get(k)}
    (root / "dag").mkdir(parents=True, exist_ok=True)
    stack = Stack(root / "dag", "LocalExecutor", root / "share", root / "dag" / "home", True, slots=4, extra_env=env)
    try:
        stack.start()
        run = dag_run(stack)
    finally:
        stack.stop()
    return {"wall_s": run["wall_s"], "cpu_s": run["cpu_s"], "summary": run["summary"], "workers": workers,
            "cpu_by_component_s": run.get("cpu_by_component_s", {}), "tasks": run.get("tasks", {}),
            "peak_rss_mib": max((run.get("worker_rss_mib") or {0: 0}).values())}


def fraction(limits: dict, e2e: dict) -> dict:
    """docsync's wall time against the slowest stage alone, and against all stages sharing the cores."""
    s = e2e["summary"]
    work = {"embed": s["chunks_embedded"], "ocr": s["ocr_pages"], "qdrant": s["chunks"]}
    need = {k: work[k] / limits[k]["per_s"] for k in work}  # wall s of each stage alone, all cores
    need_cpu = {k: work[k] / limits[k]["per_cpu_s"] for k in work}
    slowest = max(need, key=need.get)
    shared = sum(need_cpu.values()) / CORES  # every stage's CPU work spread over all cores
    bound = max(need[slowest], shared)
    # What docsync's own CPU allows: its CPU seconds spread over every core is a wall time no
    # scheduling can beat; the bound's stages are only part of that CPU (parsing, PII and
    # validation are not stages of the bound, and are mandatory).
    cpu_floor = e2e["cpu_s"] / CORES
    return {"work": work, "need": need, "need_cpu": need_cpu, "slowest": slowest,
            "fraction": need[slowest] / e2e["wall_s"], "bound_s": bound,
            "fraction_of_bound": bound / e2e["wall_s"],
            "cpu_outside_bound_s": e2e["cpu_s"] - sum(need_cpu.values()),
            "core_utilisation": e2e["cpu_s"] / (e2e["wall_s"] * CORES),
            "best_fraction_for_cpu": bound / max(bound, cpu_floor)}


def render(limits: dict, runs: dict, env: dict | None = None) -> None:
    rows = [[LABELS[k], f"{limits[k]['per_s']:.2f} {UNITS[k]}/s", f"{limits[k]['per_cpu_s']:.2f} {UNITS[k]}/CPU-s"]
            for k in LABELS]
    body = table(["stage", "raw limit (wall)", "raw limit (CPU)"], rows)
    rows = []
    out = {}
    for name, run in runs.items():
        for path in ("e2e", "dag"):
            if path not in run:
                continue
            e2e, s = run[path], run[path]["summary"]
            f = fraction(limits, e2e)
            out[name if path == "e2e" else f"{name} (DAG)"] = f
            mix = ", ".join(f"{v} {k}" for k, v in run["kinds"].items())
            label = f"{name}: {run['n']} docs ({mix})" + (", DAG" if path == "dag" else ", CLI")
            rows.append([label, f"{s['ocr_pages']} pages / {s['chunks_embedded']} chunks",
                         f"{f['slowest']} {f['need'][f['slowest']]:.1f} s", f"{f['bound_s']:.1f} s", e2e["wall_s"],
                         e2e["cpu_s"], f"{s['indexed'] / e2e['wall_s']:.2f}", f"**{f['fraction']:.0%}**",
                         f"{f['fraction_of_bound']:.0%}", f"{f['cpu_outside_bound_s']:.1f}",
                         f"{f['core_utilisation']:.0%}", f"{f['best_fraction_for_cpu']:.0%}", e2e["peak_rss_mib"]])
    body += "\n\n" + table(
        ["corpus", "OCR / embedding work", "slowest stage alone", "all stages on the cores", "docsync wall s",
         "docsync CPU s", "docs/s", "of slowest stage", "of shared-core bound", "CPU s outside the bound's stages",
         "core utilisation", "best fraction this CPU allows", "peak RSS MiB / process"], rows)
    # Issue 15 item 5 states the target against the shared-core bound (issue 7 against the slowest stage).
    verdicts = {name: "met" if f["fraction_of_bound"] >= TARGET else "NOT met" for name, f in out.items()}
    batch = (env or {}).get("DOCSYNC_BATCH_SIZE", "the product default (unset)")
    body += (
        f"\n\nDOCSYNC_BATCH_SIZE: {batch}. \"CPU s outside the bound's stages\": docsync's CPU less what the "
        "bound's three stages need at their raw rates (parsing, PII, validation, page rendering, model loads and, "
        "on the DAG path, Airflow's own processes). \"Best fraction this CPU allows\": the bound against docsync's "
        "CPU spread over every core, the fraction a perfect scheduler would reach with this much work."
        f"\n\ndocsync runs with {runs['mixed']['e2e'].get('workers', 1)} batch worker processes (`run_sync(workers=N)`, "
        "as the DAG runs mapped `process` tasks side by side). \"Slowest stage alone\": the wall time that stage "
        "needs for this corpus at its raw rate using every core; \"all stages on the cores\": the CPU time of the "
        f"three stages together divided by the {CORES} cores (they share them, so the pipeline cannot beat this "
        f"either). Target >= {TARGET:.0%} of the shared-core bound: "
        + "; ".join(f"{name} **{v}**" for name, v in verdicts.items()) + "."
    )
    profiled = runs["mixed"].get("profiled")
    if profiled:
        parts = profiled.get("breakdown_s", {})
        body += "\n\nWhere docsync's time goes (mixed corpus, a second load in one process under cProfile, seconds):\n\n"
        body += table(["part", "s", "share"], [[k, v, f"{v / profiled['wall_s']:.0%}"] for k, v in parts.items()]
                      + [["sync total (wall)", profiled["wall_s"], "100%"]])
    report("stages", "Stage limits and end-to-end throughput", body, {"limits": limits, "runs": runs, "fractions": out})
    names = list(runs)
    bar_chart("stages", "Wall seconds: slowest stage alone vs docsync end to end", names,
              {"slowest stage alone": [out[n]["need"][out[n]["slowest"]] for n in names],
               "all stages sharing the cores": [out[n]["bound_s"] for n in names],
               "docsync end to end": [runs[n]["e2e"]["wall_s"] for n in names]}, "seconds")
