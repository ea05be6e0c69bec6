"""Run the benchmarks: ``python -m bench.run [NAME ...] [options]`` (``make bench BENCH_ARGS=...``).

NAME is any of: incremental, stages, peers, scale, memory, directory, engine, dag, batching, stream (default: all, in that order).
Each measured step runs in its own subprocess (own peak RSS); results go to
bench/results/<name>.md|.json|.png and the markdown is printed.
"""

from __future__ import annotations

import argparse

from bench import batching, dag, directory, engine, incremental, memory, peers, scale, stages, stream

BENCHMARKS = {
    "incremental": incremental.main,
    "stages": stages.main,
    "peers": peers.main,
    "scale": scale.main,
    "memory": memory.main,
    "directory": directory.main,
    "engine": engine.main,
    "dag": dag.main,
    "batching": batching.main,
    "stream": stream.main,
}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.run", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("names", nargs="*", metavar="NAME", help="benchmarks to run (default: all)")
    parser.add_argument("--docs", type=int, default=1000, help="incremental: share size (default 1000)")
    parser.add_argument("--profile", action="store_true", help="incremental/scale: cProfile the no-change re-sync")
    parser.add_argument("--e2e-docs", type=int, default=200, help="stages: mixed corpus size (default 200)")
    parser.add_argument("--stages-dag", action="store_true",
                        help="stages: also load each corpus through the fileshare_sync DAG (issue 15 item 5)")
    parser.add_argument("--stages-batch-size", type=int, default=None, metavar="N",
                        help="stages: DOCSYNC_BATCH_SIZE on both paths (default: the product's; 5 = the earlier series)")
    parser.add_argument("--peer-docs", type=int, default=1000, help="peers: share size (default 1000)")
    parser.add_argument("--peer-anonymize", action="store_true",
                        help="peers: the peers anonymize with Presidio too (issue 15 item 4)")
    parser.add_argument("--peer-dag", action="store_true",
                        help="peers: also run docsync's fileshare_sync DAG (LocalExecutor, worker host) on the share")
    parser.add_argument("--peer-parallel", action="store_true",
                        help="peers: run docsync and the peers at the same time (same load on a shared machine)")
    parser.add_argument("--sizes", type=lambda s: [int(x) for x in s.split(",")], default=[1000, 10000],
                        help="scale: comma-separated share sizes (default 1000,10000)")
    parser.add_argument("--replicate-from", type=int, default=1000, metavar="N",
                        help="scale: build sizes above N by replicating the synced N-document share "
                             "(bench/replicate.py; default 1000, 0 = run every size for real)")
    parser.add_argument("--fresh", action="store_true", help="scale/peers: re-measure what incremental already measured")
    parser.add_argument("--pages", type=int, default=1000, help="memory: PDF pages (default 1000)")
    parser.add_argument("--directory-users", type=lambda s: [int(x) for x in s.split(",")], default=None,
                        help="directory: comma-separated directory sizes in users (default 10000,50000)")
    parser.add_argument("--engine-sizes", type=lambda s: [int(x) for x in s.split(",")], default=[10000, 100000],
                        help="engine: comma-separated index sizes in points (default 10000,100000)")
    parser.add_argument("--engines", type=lambda s: s.split(","), default=list(engine.ENGINES),
                        help="engine: embedded engines to compare (default local,edge)")
    parser.add_argument("--queries", type=int, default=200, help="engine: filtered searches per size (local mode "
                        "above 20,000 points: a fifth of them)")
    parser.add_argument("--keep", action="store_true", help="engine: keep the built indexes under the work directory")
    parser.add_argument("--no-crash", action="store_true", help="engine: skip the SIGKILL-during-upsert check")
    parser.add_argument("--dag-docs", type=int, default=300, help="dag: share size (default 300; full: 1000)")
    parser.add_argument("--dag-modes", type=lambda s: s.split(","), default=list(dag.MODES),
                        help=f"dag: comma-separated DAG modes, the first one beside the CLI (default {','.join(dag.MODES)})")
    parser.add_argument("--dag-batch-size", type=int, default=0, help="dag: DOCSYNC_BATCH_SIZE (default: the default)")
    parser.add_argument("--dag-cli-on-host", action="store_true",
                        help="dag: also the CLI's scenarios handing their batches to the stack's worker host")
    parser.add_argument("--batching-copies", type=int, default=6,
                        help="batching: copies of tests/data/formats in the share (default 6)")
    parser.add_argument("--book-pages", type=int, default=1225, help="batching: pages of the text book (default 1225)")
    parser.add_argument("--pdf-pages", type=int, default=619, help="batching: pages of the long PDF (default 619)")
    parser.add_argument("--batching-repeats", type=int, default=2, help="batching: runs of each mode (default 2)")
    parser.add_argument("--batching-sequential", action="store_true",
                        help="batching: run the modes one after the other (idle machine; default side by side)")
    parser.add_argument("--no-batching-parse", dest="batching_parse", action="store_false",
                        help="batching: skip timing the book alone through the parse stage")
    parser.add_argument("--stream-docs", type=int, default=1_000_000, help="stream: generated local share (default 1,000,000; 0: skip)")
    parser.add_argument("--stream-smb-docs", type=int, default=100_000, help="stream: generated share over smbd (default 100,000; 0: skip)")
    parser.add_argument("--stream-baseline", metavar="DIR", help="stream: a checkout of the previous docsync, "
                        "run beside the new one (no-change re-sync)")
    parser.add_argument("--workers", type=int, default=0,
                        help="docsync batch worker processes (run_sync workers; default: one per core)")
    args = parser.parse_args(argv)
    unknown = [n for n in args.names if n not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark(s) {unknown}; choose from {list(BENCHMARKS)}")
    if args.workers:
        incremental.WORKERS = args.workers
    for name in args.names or list(BENCHMARKS):
        BENCHMARKS[name](args)


if __name__ == "__main__":
    main()
