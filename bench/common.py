"""Parent-side helpers: run a benchmark step in a subprocess (own ru_maxrss), report results."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

from bench import child  # importing it sets the offline environment for this process too

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"
WORK = Path(os.environ.get("DOCSYNC_BENCH_WORK", "/tmp/docsync-bench"))


class ChildFailed(RuntimeError):
    pass


def run_child(args: list[str], python: str = sys.executable, env: dict | None = None, log: Path | None = None) -> dict:
    """Run ``python args...`` and return its BENCH-RESULT plus its own peak RSS and CPU time."""
    log = log or WORK / "logs" / f"{int(time.time() * 1000)}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    # This checkout's docsync first (a worktree's, not the one the venv has installed editable).
    full_env = os.environ | child.OFFLINE_ENV | {"PYTHONPATH": f"{REPO / 'include'}{os.pathsep}{REPO}"} | (env or {})
    started = time.perf_counter()
    with open(log, "w") as out:
        proc = subprocess.Popen([python, *args], stdout=out, stderr=subprocess.STDOUT, env=full_env, cwd=REPO)
        _pid, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    text = log.read_text(errors="replace")
    lines = [ln for ln in text.splitlines() if ln.startswith("BENCH-RESULT ")]
    if proc.returncode != 0 or not lines:
        tail = "\n".join(text.splitlines()[-25:])
        raise ChildFailed(f"{' '.join(args)} exited {proc.returncode} (log {log}):\n{tail}")
    result = json.loads(lines[-1].removeprefix("BENCH-RESULT "))
    result["process_wall_s"] = round(time.perf_counter() - started, 2)
    result["process_cpu_s"] = round(usage.ru_utime + usage.ru_stime, 2)
    result["peak_rss_mib"] = round(usage.ru_maxrss / 1024, 1)  # KiB on Linux
    return result


def machine() -> str:
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{platform.machine()}, {os.cpu_count()} cores, {mem:.0f} GiB RAM, Python {platform.python_version()}"


def table(columns: list[str], rows: list[list]) -> str:
    def fmt(v: object) -> str:
        if isinstance(v, float):
            return f"{v:,.3f}" if abs(v) < 10 else f"{v:,.1f}"
        if isinstance(v, int):
            return f"{v:,}"
        return str(v)

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(fmt(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def report(name: str, title: str, body: str, data: dict) -> Path:
    """Write bench/results/<name>.md (+ .json), print the markdown, return the md path."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    text = f"## {title}\n\nMachine: {machine()}; {time.strftime('%Y-%m-%d %H:%M')}\n\n{body}\n"
    path = RESULTS / f"{name}.md"
    path.write_text(text)
    (RESULTS / f"{name}.json").write_text(json.dumps(data, indent=2, default=str))
    print(text, flush=True)
    return path


def bar_chart(name: str, title: str, labels: list[str], series: dict[str, list[float]], ylabel: str, log: bool = False) -> Path:
    """A grouped bar chart as bench/results/<name>.png."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.5))
    width = 0.8 / max(1, len(series))
    for i, (label, values) in enumerate(series.items()):
        xs = [x + i * width for x in range(len(labels))]
        ax.bar(xs, values, width, label=label)
    ax.set_xticks([x + width * (len(series) - 1) / 2 for x in range(len(labels))], labels)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    if log:
        ax.set_yscale("log")
    if len(series) > 1:
        ax.legend()
    fig.tight_layout()
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
