"""The embedded engine decision (issue 18): qdrant-client's local mode vs Qdrant Edge
(``qdrant-edge-py``), both through ``docsync.index`` (``DOCSYNC_QDRANT_ENGINE``), at N points.

Per engine and size, each step in its own process (own peak RSS):
- ``build``: upsert N points shaped like docsync's (384-d vectors, ~700-character chunk text,
  ACL payload) through ``index.upsert``, plus the state rows a synced index has; then close.
  ``BENCH_EDGE_OPTIMIZE_AFTER=N`` makes Edge optimise on close (segments merged, HNSW built).
- ``search``: open, then ACL-filtered ``index.search`` (``access_filter``: allowed ∋ any of a
  user's principals, denied ∌ any) for one user and three of their groups, p50/p95.
- ``reconcile``: ``steps.reconcile.reconcile``: scroll every point, compare with the state store.
- ``crash``: a writer upserting batches of 256 is SIGKILLed mid-way; every batch whose upsert had
  returned must be there when the index is opened again.
Disk: the index directory's size after ``build``.

``python -m bench.run engine --engine-sizes 10000,100000`` (child steps: ``python -m bench.engine STEP``).
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

from bench.child import emit, timed

if TYPE_CHECKING:
    import argparse

ENGINES = ("local", "edge")
SOURCE = "bench"
DIM = 384
CHUNK = 2048  # points generated and upserted per call
GROUPS, USERS = 200, 2000
WORDS = ("quarterly revenue budget contract policy onboarding roadmap vendor invoice audit office renewal "
         "forecast salary benefit travel expense project migration warehouse schedule meeting review").split()


def _settings(home: Path, engine: str):
    from docsync.config import load_settings

    return load_settings().replace(home=home, qdrant_path=home / "qdrant", qdrant_url=None, qdrant_conn_id=None,
                                   qdrant_engine=engine, state_url=f"sqlite:///{home / 'state.db'}")


def _pid(n: int, i: int) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"bench:{n}:{i}"))


def _acl(rng: random.Random) -> tuple[list[str], list[str]]:
    """1-3 groups; 5% public; 5% deny one user."""
    allowed = sorted({f"group:g{rng.randrange(GROUPS)}" for _ in range(rng.randint(1, 3))})
    if rng.random() < 0.05:
        allowed.append("everyone")
    denied = [f"user:u{rng.randrange(USERS)}"] if rng.random() < 0.05 else []
    return allowed, denied


def _points(n: int, start: int, count: int) -> list[tuple[str, list[float], dict]]:
    import numpy as np

    vectors = np.random.default_rng(start).standard_normal((count, DIM)).astype("float32")
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    rng = random.Random(start)
    out = []
    for k in range(count):
        i = start + k
        allowed, denied = _acl(rng)
        out.append((_pid(n, i), vectors[k].tolist(), {
            "doc_id": f"doc{i // 2}", "source": SOURCE, "path": f"share/d{i // 2000}/doc{i // 2}.txt",
            "chunk_index": i % 2, "text": " ".join(rng.choice(WORDS) for _ in range(100)),
            "allowed_principals": allowed, "denied_principals": denied,
        }))
    return out


def _state_rows(engine, n: int) -> None:
    """The documents (two chunks each) and chunk rows a synced index of n points has."""
    import sqlalchemy as sa

    from docsync import state

    now = state.utcnow()
    for start in range(0, n, 20_000):
        stop = min(n, start + 20_000)
        docs = [{"doc_id": f"doc{d}", "source": SOURCE, "path": f"share/doc{d}.txt", "path_hash": state.path_hash(f"share/doc{d}.txt"),
                 "size": 1, "mtime_ns": 1, "content_hash": "x", "acl_fingerprint": "", "allowed": "[]", "denied": "[]",
                 "status": "indexed", "chunk_count": 2, "doc_meta": "{}", "first_seen": now, "indexed_at": now}
                for d in range(start // 2, (stop + 1) // 2)]
        chunks = [{"point_id": _pid(n, i), "doc_id": f"doc{i // 2}", "chunk_index": i % 2, "text_hash": str(i)}
                  for i in range(start, stop)]
        with engine.begin() as conn:
            conn.execute(sa.insert(state.documents), docs)
            conn.execute(sa.insert(state.chunks), chunks)


def child_build(home: Path, engine_name: str, n: int) -> dict:
    from docsync import index, state

    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    if os.environ.get("BENCH_EDGE_OPTIMIZE_AFTER"):  # docsync's own default: never
        from docsync.engines import edge

        edge.OPTIMIZE_AFTER = int(os.environ["BENCH_EDGE_OPTIMIZE_AFTER"])
    settings = _settings(home, engine_name)
    _state_rows(state.get_engine(settings.state_url), n)
    out: dict = {}
    collection = settings.collection(SOURCE)
    upsert_s = 0.0
    with timed(out, "total_"):
        with index.open_index(settings) as client:
            index.ensure_collection(client, collection, index.is_local(settings))
            for start in range(0, n, CHUNK):
                points = _points(n, start, min(CHUNK, n - start))
                began = time.perf_counter()
                index.upsert(client, collection, points)
                upsert_s += time.perf_counter() - began
            closing = time.perf_counter()
        out["close_s"] = round(time.perf_counter() - closing, 2)
    out["upsert_s"] = round(upsert_s, 2)
    out["points_per_s"] = round(n / upsert_s, 1)
    return out


def child_search(home: Path, engine_name: str, n: int, queries: int) -> dict:
    import numpy as np

    from docsync import index

    settings = _settings(home, engine_name)
    rng = random.Random(7)
    vectors = np.random.default_rng(99).standard_normal((queries + 5, DIM)).astype("float32")
    out: dict = {}
    began = time.perf_counter()
    with index.open_index(settings) as client:
        out["open_s"] = round(time.perf_counter() - began, 2)
        times, cpus, hits = [], [], 0
        for q in range(queries + 5):
            principals = [f"user:u{rng.randrange(USERS)}"] + [f"group:g{rng.randrange(GROUPS)}" for _ in range(3)]
            began, cpu = time.perf_counter(), time.process_time()
            found = index.search(client, settings.collection(SOURCE), vectors[q].tolist(), principals, limit=10)
            if q >= 5:  # the first queries warm caches
                times.append((time.perf_counter() - began) * 1000)
                cpus.append((time.process_time() - cpu) * 1000)  # all threads: the engine's search pool too
                hits += len(found)
                for hit in found:  # the filter holds: a reader of every hit is among the principals
                    assert set(principals + ["everyone"]) & set(hit.payload["allowed_principals"]), hit
                    assert not set(principals + ["everyone"]) & set(hit.payload["denied_principals"]), hit
    times.sort()
    cpus.sort()
    out |= {"queries": queries, "p50_ms": round(times[len(times) // 2], 2), "cpu_p50_ms": round(cpus[len(cpus) // 2], 2),
            "p95_ms": round(times[min(len(times) - 1, int(len(times) * 0.95))], 2), "mean_hits": round(hits / queries, 1)}
    return out


def child_reconcile(home: Path, engine_name: str) -> dict:
    """The full check, then the check a finished run that changed 1% of the documents makes
    (``reconcile_documents``: its documents only, by the payload indexes; 2 points a document)."""
    from docsync import index
    from docsync.steps.reconcile import reconcile, reconcile_documents

    settings = _settings(home, engine_name)
    out: dict = {}
    with timed(out):
        out["report"] = reconcile(settings, SOURCE)
    with index.open_index(settings) as client:  # opening is not the check's: local mode loads every point
        docs = client.count(settings.collection(SOURCE)).count // 2
    touched = {f"doc{i}" for i in range(0, docs, 100)}
    out["touched"] = {}
    with timed(out["touched"]):
        out["touched"]["report"] = reconcile_documents(settings, SOURCE, touched)
    return out


def child_crash_writer(home: Path, engine_name: str, n: int) -> None:
    """Upsert batches of 256 forever-ish, printing how many points have been committed."""
    from docsync import index

    shutil.rmtree(home, ignore_errors=True)
    settings = _settings(home, engine_name)
    collection = settings.collection(SOURCE)
    with index.open_index(settings) as client:
        index.ensure_collection(client, collection, index.is_local(settings))
        for start in range(0, n, 256):
            index.upsert(client, collection, _points(n, start, min(256, n - start)))
            print(f"COMMITTED {min(n, start + 256)}", flush=True)
        time.sleep(3600)  # never closed: the parent kills it


def child_crash_check(home: Path, engine_name: str, n: int, committed: int) -> dict:
    from docsync import index

    settings = _settings(home, engine_name)
    with index.open_index(settings) as client:
        ids = [_pid(n, i) for i in range(committed)]
        found = index.existing_ids(client, settings.collection(SOURCE), ids)
        total = sum(1 for _ in index.scroll_all(client, settings.collection(SOURCE), with_payload=False))
    return {"committed": committed, "found_committed": len(found), "points_after_restart": total}


# --- the parent ----------------------------------------------------------------------------


def _du(path: Path) -> int:
    return sum(f.stat().st_blocks * 512 for f in path.rglob("*") if f.is_file())  # allocated: WAL and mmap files are sparse


def _env() -> dict:
    from bench.common import REPO

    return {"PYTHONPATH": os.pathsep.join([str(REPO / "include"), str(REPO)])}  # this checkout's docsync


def crash(work: Path, engine_name: str, n: int = 20_000, kill_after: int = 5_000) -> dict:
    """SIGKILL a writer once ``kill_after`` points are committed; check them after a restart."""
    from bench.child import OFFLINE_ENV
    from bench.common import REPO, run_child

    home = work / f"crash-{engine_name}"
    env = os.environ | OFFLINE_ENV | _env()
    proc = subprocess.Popen([sys.executable, "-m", "bench.engine", "crash-writer", str(home), engine_name, str(n)],
                            stdout=subprocess.PIPE, text=True, env=env, cwd=REPO)
    committed = 0
    for line in proc.stdout:  # type: ignore[union-attr]
        committed = int(line.split()[1])
        if committed >= kill_after:
            break
    time.sleep(0.05)  # let it be inside the next upsert
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    for line in proc.stdout:  # type: ignore[union-attr]  # batches that returned before the kill landed
        committed = int(line.split()[1])
    return run_child(["-m", "bench.engine", "crash-check", str(home), engine_name, str(n), str(committed)], env=_env())


def main(args: argparse.Namespace) -> None:
    from bench.common import WORK, report, run_child, table

    work = WORK / "engine"
    data: dict = {}
    rows = []
    for engine_name in args.engines:
        for n in args.engine_sizes:
            home = work / f"{engine_name}-{n}"
            build = run_child(["-m", "bench.engine", "build", str(home), engine_name, str(n)], env=_env())
            disk = _du(home / "qdrant")
            queries = args.queries if engine_name == "edge" or n <= 20_000 else max(20, args.queries // 5)
            search = run_child(["-m", "bench.engine", "search", str(home), engine_name, str(n), str(queries)], env=_env())
            rec = run_child(["-m", "bench.engine", "reconcile", str(home), engine_name], env=_env())
            data[f"{engine_name}-{n}"] = {"build": build, "disk_bytes": disk, "search": search, "reconcile": rec}
            rows.append([engine_name, n, build["points_per_s"], build["close_s"], build["peak_rss_mib"], disk / 2**20,
                         search["open_s"], search["p50_ms"], search["p95_ms"], search["cpu_p50_ms"], search["queries"],
                         rec["wall_s"], rec["cpu_s"], rec["peak_rss_mib"], rec["touched"]["wall_s"],
                         rec["touched"]["cpu_s"]])
            if not args.keep:
                shutil.rmtree(home, ignore_errors=True)
        if not args.no_crash:
            data[f"crash-{engine_name}"] = crash(work, engine_name)
    body = table(["engine", "points", "upsert points/s", "close s", "build RSS MiB", "disk MiB", "open s",
                  "filtered p50 ms", "filtered p95 ms", "CPU/query p50 ms", "queries", "reconcile s", "reconcile CPU s",
                  "reconcile RSS MiB", "1% of documents: reconcile s", "CPU s"], rows)
    crashes = [[e, data[f"crash-{e}"]["committed"], data[f"crash-{e}"]["found_committed"],
                data[f"crash-{e}"]["points_after_restart"]] for e in args.engines if f"crash-{e}" in data]
    body += "\n\nSIGKILL during upsert (batches of 256, killed after 5,000 points had been committed):\n\n"
    body += table(["engine", "committed before the kill", "of them found after restart", "points after restart"], crashes)
    name = "engine-" + "-".join(str(n) for n in args.engine_sizes)
    report(name, "Embedded engines: qdrant-client local mode vs Qdrant Edge", body, data)


def _child_main(argv: list[str]) -> None:
    step, home, engine_name, *rest = argv
    home_path = Path(home)
    if step == "build":
        emit(child_build(home_path, engine_name, int(rest[0])))
    elif step == "search":
        emit(child_search(home_path, engine_name, int(rest[0]), int(rest[1])))
    elif step == "reconcile":
        emit(child_reconcile(home_path, engine_name))
    elif step == "crash-writer":
        child_crash_writer(home_path, engine_name, int(rest[0]))
    elif step == "crash-check":
        emit(child_crash_check(home_path, engine_name, int(rest[0]), int(rest[1])))
    else:
        raise SystemExit(f"unknown step {step!r}")
    print(json.dumps({"done": step}), file=sys.stderr)


if __name__ == "__main__":
    _child_main(sys.argv[1:])
