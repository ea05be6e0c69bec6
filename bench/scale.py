"""Scale curve: initial load and no-change re-sync at several share sizes (small documents).

A size already measured by ``incremental`` (bench/results/incremental-N.json) is reused.
With ``--replicate-from N``, other sizes above N are built by replicating the synced N-document
share and state (bench/replicate.py): the no-change re-sync is measured for real at that
size, the initial load is extrapolated linearly from N (and marked so)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from bench.common import RESULTS, WORK, bar_chart, report, table
from bench.incremental import docsync_run, sync_scenarios

if TYPE_CHECKING:
    import argparse


def previous(n: int, fresh: bool) -> list[dict] | None:
    path = RESULTS / f"incremental-{n}.json"
    return None if fresh or not path.exists() else json.loads(path.read_text())["runs"][:2]


def replicated(n: int, base: int, base_runs: list[dict], profile: bool) -> list[dict]:
    from bench.replicate import replicate

    src = WORK / f"incremental-{base}"
    if not (src / "home" / "state.db").exists():
        src = WORK / f"scale-{base}"
    root = WORK / f"scale-{n}-replicated"
    stamp = root / "replicated-from"
    if not stamp.exists() or stamp.read_text() != str(src):  # a no-change re-sync leaves it as it was
        replicate(src / "share", src / "home", root / "share", root / "home", n // base)
        stamp.write_text(str(src))
    again = docsync_run(root / "share", root / "home", f"scale-{n}-nochange")
    if profile:  # a second no-change run under cProfile (its overhead stays out of the table)
        prof = RESULTS / f"scale-{n}-nochange-profile.txt"
        docsync_run(root / "share", root / "home", f"scale-{n}-nochange-profiled", profile=prof)
        again["profile"] = str(prof)
    factor = n / base
    initial = {k: base_runs[0][k] * factor for k in ("wall_s", "cpu_s")} | {
        "peak_rss_mib": base_runs[0]["peak_rss_mib"], "extrapolated_from": base}
    return [initial, again]


def main(args: argparse.Namespace) -> None:
    data: dict[int, list[dict]] = {}
    base = args.replicate_from
    for n in args.sizes:
        runs = previous(n, args.fresh)
        if runs is None and base and n > base:
            runs = replicated(n, base, data.get(base) or previous(base, False), args.profile)
        elif runs is None:
            runs = sync_scenarios(n, f"scale-{n}", changed=False)
        data[n] = runs
    render(data)


def render(data: dict[int, list[dict]]) -> None:
    rows = []
    for n, (initial, again) in data.items():
        base = initial.get("extrapolated_from")
        note = f" (replicated from {base:,})" if base else ""
        rows.append([f"{n:,}{note}", initial["wall_s"], initial["cpu_s"], n / initial["wall_s"], again["wall_s"],
                     again["cpu_s"], again["wall_s"] / initial["wall_s"], again["cpu_s"] / initial["cpu_s"], again["embedded_texts"],
                     again["peak_rss_mib"]])
    body = table(["documents", "initial s", "initial CPU s", "docs/s", "no-change s", "no-change CPU s",
                  "wall vs initial", "CPU vs initial", "texts embedded", "no-change RSS MiB"], rows)
    if any("extrapolated_from" in runs[0] for runs in data.values()):
        body += ("\n\nReplicated sizes: the share and the synced state of the smaller size were copied "
                 "(bench/replicate.py), so the no-change re-sync is measured for real at that size, while the "
                 "initial-load figures are extrapolated linearly (per-document cost of the smaller size).")
    report("scale", "Scale curve", body, {str(k): v for k, v in data.items()})
    bar_chart("scale", "Initial load vs no-change re-sync", [f"{n:,}" for n in data],
              {"initial": [r[1] for r in rows], "no change": [r[4] for r in rows]}, "seconds (log)", log=True)
