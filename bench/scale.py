"""Scale curve: initial load and no-change re-sync at several share sizes (small documents).
A size already measured by ``incremental`` (bench/results/incremental-N.json) is reused."""

from __future__ import annotations

import json

from bench.common import RESULTS, bar_chart, report, table
from bench.incremental import sync_scenarios


def main(args) -> None:  # noqa: ANN001
    rows, data = [], {}
    for n in args.sizes:
        previous = RESULTS / f"incremental-{n}.json"
        if previous.exists() and not args.fresh:
            runs = json.loads(previous.read_text())["runs"][:2]
        else:
            runs = sync_scenarios(n, f"scale-{n}", changed=False)
        initial, again = runs
        data[n] = runs
        rows.append([n, initial["wall_s"], n / initial["wall_s"], initial["peak_rss_mib"], again["wall_s"],
                     again["wall_s"] / initial["wall_s"], again["embedded_texts"], again["peak_rss_mib"]])
    body = table(["documents", "initial s", "docs/s", "initial RSS MiB", "no-change s", "vs initial",
                  "texts embedded", "no-change RSS MiB"], rows)
    report("scale", "Scale curve", body, data)
    labels = [f"{n:,}" for n in data]
    bar_chart("scale", "Initial load vs no-change re-sync", labels,
              {"initial": [r[1] for r in rows], "no change": [r[4] for r in rows]}, "seconds (log)", log=True)
