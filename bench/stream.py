"""Streamed plans at scale (issue 18 item 2): a generated share of a million tiny files
(``--stream-docs``; ACL sidecars on one in ``SIDECAR_EVERY``) and the same over SMB against a
real smbd (``--stream-smb-docs``), with the synced state built by a replication step (rows as
an initial load stores them, bench.stream_child.record_state), so nothing is processed 1M times:

- no-change re-sync: wall, CPU and peak RSS of the whole process (an upper bound of the plan's);
  with ``--stream-baseline DIR`` (a checkout of the previous docsync) the same run of that code
  on a copy of the state, at the same time (same load);
- initial load through the CLI runner: time until the first batch is processed (written);
- the DAG path: the plan task stopped at DOCSYNC_PLAN_SLICE_BATCHES, then the first batch's
  process task, which writes it (Airflow's scheduling delay between tasks not included).

The generated files live under the bench work directory and are deleted afterwards."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from bench.common import REPO, RESULTS, WORK, ChildFailed, report, run_child, table
from bench.stream_child import content

if TYPE_CHECKING:
    import argparse

SIDECAR_EVERY = 20
PER_DIR = 1000
SIDECAR = b'{"allow": ["group:staff"]}'


def generate(share: Path, n: int) -> float:
    """n tiny documents in folders of PER_DIR, a sidecar on every SIDECAR_EVERY-th; seconds taken."""
    started = time.perf_counter()
    shutil.rmtree(share, ignore_errors=True)
    for d in range(-(-n // PER_DIR)):
        folder = share / f"d{d:04d}"
        folder.mkdir(parents=True)
        for i in range(d * PER_DIR, min(n, (d + 1) * PER_DIR)):
            (folder / f"f{i:07d}.txt").write_bytes(content(i))
            if i % SIDECAR_EVERY == 0:
                (folder / f"f{i:07d}.txt.acl.json").write_bytes(SIDECAR)
    return round(time.perf_counter() - started, 1)


def child(mode: str, share: str, home: Path, code: Path = REPO, extra: list[str] | None = None,
          env: dict | None = None) -> dict:
    """One bench.stream_child run with the docsync of ``code`` (its include/ first on the path)."""
    path = {"PYTHONPATH": f"{code / 'include'}:{REPO}"}
    return run_child(["-m", "bench.stream_child", mode, "--share", share, "--home", str(home), *(extra or [])],
                     env=path | (env or {}), log=WORK / "logs" / f"stream-{mode}-{home.name}-{int(time.time())}.log")


def concurrently(jobs: dict[str, tuple]) -> dict[str, dict]:
    """Run children at the same time (old vs new under the same load)."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(len(jobs)) as pool:
        futures = {name: pool.submit(child, *args) for name, args in jobs.items()}
        out = {}
        for name, future in futures.items():
            try:
                out[name] = future.result()
            except ChildFailed as exc:
                out[name] = {"failed": str(exc)[-600:]}
        return out


def measure(label: str, share: str, work: Path, baseline: Path | None) -> dict:
    """State, no-change re-sync (new and baseline concurrently), first batch CLI and DAG."""
    out: dict = {"label": label, "load": os.getloadavg()}
    home = work / "home"
    shutil.rmtree(home, ignore_errors=True)
    out["state"] = child("state", share, home)
    jobs = {"new": ("nochange", share, home)}
    if baseline is not None:
        old_home = work / "home-baseline"
        shutil.rmtree(old_home, ignore_errors=True)
        old_home.mkdir(parents=True)
        with sqlite3.connect(home / "state.db") as src, sqlite3.connect(old_home / "state.db") as dst:
            src.backup(dst)  # with what is still in the WAL
        jobs["baseline"] = ("nochange", share, old_home, baseline)
    out["nochange"] = concurrently(jobs)
    out["nochange_again"] = child("nochange", share, home)  # a second run: warm caches, a new scan
    for mode, extra in (("initial", []), ("slice", ["--slice", "4"])):
        fresh = work / f"home-{mode}"
        shutil.rmtree(fresh, ignore_errors=True)
        out[mode] = child(mode, share, fresh, extra=extra)
        shutil.rmtree(fresh, ignore_errors=True)
    out["load_after"] = os.getloadavg()
    return out


def smb_share(local: Path, n: int, results: dict) -> tuple[str, object]:
    sys.path.insert(0, str(REPO))
    from tests.support.smb_server import SambaServer, free_port

    server = SambaServer(local, port=free_port()).start()
    results["generate_s"] = generate(server.share_dir / "gen", n)
    subprocess.run(["chmod", "-R", "a+rX", str(server.share_dir)], check=True)
    os.environ["DOCSYNC_SMB_USERNAME"], os.environ["DOCSYNC_SMB_PASSWORD"] = server.username, server.password
    return f"{server.url}/gen", server


def main(args: argparse.Namespace) -> None:
    work = WORK / "stream"
    baseline = Path(args.stream_baseline) if args.stream_baseline else None
    data: dict = {}
    if args.stream_docs:
        share = work / "share"
        gen = generate(share, args.stream_docs)
        try:
            data["local"] = measure(f"local, {args.stream_docs:,} files", str(share), work / "local", baseline)
            data["local"]["generate_s"] = gen
        finally:
            shutil.rmtree(share, ignore_errors=True)
    if args.stream_smb_docs:
        smb: dict = {}
        url, server = smb_share(work / "samba", args.stream_smb_docs, smb)
        try:
            smb |= measure(f"SMB (smbd), {args.stream_smb_docs:,} files", url, work / "smb", baseline)
        finally:
            server.stop()
            shutil.rmtree(work / "samba", ignore_errors=True)
        data["smb"] = smb
    previous = RESULTS / "stream.json"  # a run of one part keeps the other's last figures
    if previous.exists():
        data = json.loads(previous.read_text()) | data
    render(data)


def _row(m: dict, key: str) -> list:
    run = m["nochange"].get(key, {})
    if "failed" in run or not run:
        return [f"{m['label']} ({key})", "failed" if run else "-", "", "", ""]
    return [f"{m['label']} ({key})", run["wall_s"], run["cpu_s"], run["peak_rss_mib"], run["summary"]["unchanged"]]


def render(data: dict) -> None:
    rows, firsts = [], []
    for m in data.values():
        rows += [_row(m, k) for k in ("new", "baseline") if k in m["nochange"]]
        again = m["nochange_again"]
        rows.append([f"{m['label']} (new, 2nd run)", again["wall_s"], again["cpu_s"], again["peak_rss_mib"],
                     again["summary"]["unchanged"]])
        firsts.append([m["label"], m["initial"].get("first_batch_staged_s"), m["initial"].get("first_batch_processed_s"),
                       m["slice"]["plan_task_wall_s"], m["slice"]["first_batch_processed_s"],
                       m["state"]["wall_s"]])
    body = table(["share", "no-change s", "CPU s", "peak RSS MiB", "unchanged"], rows)
    body += "\n\n" + table(["share", "CLI: first batch staged s", "CLI: first batch processed s",
                            "DAG: plan task (slice of 4 batches) s", "DAG: first batch processed s",
                            "state replication s"], firsts)
    body += "\n\nLoad (1/5/15-min) before and after: " + "; ".join(
        f"{m['label']}: {tuple(round(x, 1) for x in m['load'])} -> {tuple(round(x, 1) for x in m['load_after'])}"
        for m in data.values())
    report("stream", "Streaming plans: million-file shares", body, data)

