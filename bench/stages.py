"""Stage limits (issue 7): raw throughput of the embedder, tesseract and embedded Qdrant, and
docsync's end-to-end throughput on a mixed corpus as a fraction of the slowest stage's limit.

Both wall-clock and CPU-time figures are reported: on a shared (busy) machine wall-clock
rates swing with the load, CPU seconds much less."""

from __future__ import annotations

import shutil

from bench.common import RESULTS, WORK, bar_chart, report, run_child, table
from bench.corpus import DEFAULT_MIX, generate_mixed
from bench.incremental import docsync_run

TARGET = 0.80
UNITS = {"embed": "chunks", "ocr": "pages", "qdrant": "points"}
LABELS = {
    "embed": "embedding (all-MiniLM-L6-v2, batch 32)",
    "ocr": "tesseract OCR (OMP_THREAD_LIMIT=1, 2 workers, 300 dpi)",
    "qdrant": "Qdrant local-mode upsert (batches of 256)",
}


def stage(name: str, count: int) -> dict:
    return run_child(["-m", "bench.stage_limits", name, "--count", str(count)], log=WORK / "logs" / f"stage-{name}.log")


def main(args) -> None:  # noqa: ANN001
    limits = {"embed": stage("embed", 640), "ocr": stage("ocr", 12), "qdrant": stage("qdrant", 20000)}
    n = args.e2e_docs
    root = WORK / f"e2e-{n}"
    shutil.rmtree(root, ignore_errors=True)
    kinds = generate_mixed(root / "share", n)
    e2e = docsync_run(root / "share", root / "home", f"e2e-{n}")
    # A second, profiled load of the same corpus (fresh home): where docsync's time goes.
    profiled = docsync_run(root / "share", root / "home-profiled", f"e2e-{n}-profiled",
                           profile=RESULTS / f"e2e-{n}-profile.txt")
    render(n, kinds, limits, e2e, profiled)


def render(n: int, kinds: dict, limits: dict, e2e: dict, profiled: dict) -> None:
    s = e2e["summary"]
    work = {"embed": s["chunks_embedded"], "ocr": s["ocr_pages"], "qdrant": s["chunks"]}
    # Seconds each stage alone would need for this corpus, at its raw rate (wall and CPU).
    need = {k: work[k] / limits[k]["per_s"] for k in work}
    need_cpu = {k: work[k] / limits[k]["per_cpu_s"] for k in work}
    slowest = max(need, key=need.get)
    fraction = need[slowest] / e2e["wall_s"]
    slowest_cpu = max(need_cpu, key=need_cpu.get)
    fraction_cpu = need_cpu[slowest_cpu] / e2e["cpu_s"]
    rows = [
        [LABELS[k], f"{limits[k]['per_s']:.2f} {UNITS[k]}/s", f"{limits[k]['per_cpu_s']:.2f} {UNITS[k]}/CPU-s",
         f"{work[k]} {UNITS[k]}", need[k], need_cpu[k]]
        for k in work
    ]
    rows.append(["docsync end to end", f"{s['indexed'] / e2e['wall_s']:.3f} docs/s",
                 f"{s['indexed'] / e2e['cpu_s']:.3f} docs/CPU-s", f"{s['indexed']} docs", e2e["wall_s"], e2e["cpu_s"]])
    body = table(["stage", "raw limit (wall)", "raw limit (CPU)", "work in the corpus", "wall s", "CPU s"], rows)
    mix = ", ".join(f"{kinds.get(k, 0)} {k}" for k in DEFAULT_MIX)
    verdict = "met" if max(fraction, fraction_cpu) >= TARGET else "NOT met"
    body += (
        f"\n\nCorpus: {n} one-page documents ({mix}); embedding at ~{limits['embed']['mean_tokens']:.0f} tokens "
        f"per chunk. Slowest stage by wall time: **{slowest}** ({need[slowest]:.1f} s of work); by CPU time: "
        f"**{slowest_cpu}** ({need_cpu[slowest_cpu]:.1f} CPU s). docsync end to end reaches **{fraction:.0%}** of "
        f"that stage's limit by wall time and **{fraction_cpu:.0%}** by CPU time (target >= {TARGET:.0%}: "
        f"**{verdict}**). All three stages back to back: {sum(need.values()):.1f} s wall, "
        f"{sum(need_cpu.values()):.1f} CPU s. docsync's own stage times (s, summed over batches): "
        f"{s.get('stage_s')}. Peak RSS {e2e['peak_rss_mib']:.0f} MiB."
    )
    parts = profiled.get("breakdown_s", {})
    body += "\n\nWhere docsync's time goes (a second, profiled load of the same corpus; cProfile, seconds):\n\n"
    body += table(["part", "s", "share"], [[k, v, f"{v / profiled['wall_s']:.0%}"] for k, v in parts.items()]
                  + [["sync total (wall)", profiled["wall_s"], "100%"]])
    report("stages", "Stage limits and end-to-end throughput", body,
           {"n": n, "kinds": kinds, "limits": limits, "e2e": e2e, "profiled": profiled, "need_s": need,
            "need_cpu_s": need_cpu})
    bar_chart("stages", f"CPU seconds of work for {n} mixed documents", [*need_cpu, "docsync e2e"],
              {"CPU s": [*need_cpu.values(), e2e["cpu_s"]]}, "CPU seconds")
