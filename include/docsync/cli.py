"""`docsync` command line: the same functions the DAGs call, without Airflow."""

from __future__ import annotations

import argparse
import getpass
import json
import logging
import sys
from pathlib import Path

from docsync.config import Settings, load_settings


def _settings(args: argparse.Namespace) -> Settings:
    settings = load_settings()
    return settings.with_overrides(source_name=getattr(args, "source", None))


def _print(value: object, as_json: bool) -> None:
    if as_json:
        print(json.dumps(value, indent=2, default=str))
    elif isinstance(value, dict):
        for key, item in value.items():
            print(f"{key:>28}: {item}")
    else:
        print(value)


def cmd_sync(args: argparse.Namespace) -> int:
    from docsync.pipeline import run_sync

    summary = run_sync(_settings(args), root=args.root, workers=args.workers, full=args.full_resync)
    _print(summary, args.json)
    return 0


def cmd_reconcile(args: argparse.Namespace) -> int:
    from docsync.steps.reconcile import reconcile

    _print(reconcile(_settings(args)), args.json)
    return 0


def cmd_reindex(args: argparse.Namespace) -> int:
    from docsync.reindex import reindex

    _print(reindex(_settings(args), root=args.root, keep_previous=args.keep_previous), args.json)
    return 0


def cmd_quarantine(args: argparse.Namespace) -> int:
    from docsync import quarantine, state

    settings = _settings(args)
    engine = state.get_engine(settings.state_url)
    if args.action == "list":
        entries = quarantine.list_entries(
            engine, source=getattr(args, "source", None), status=None if args.status == "all" else args.status
        )
        if args.json:
            _print(entries, True)
        else:
            print(f"{'id':>5}  {'status':<9} {'stage':<9} {'attempts':>8}  path — reason")
            for e in entries:
                print(f"{e['id']:>5}  {e['status']:<9} {e['stage']:<9} {e['attempts']:>8}  {e['path']} — {e['reason']}")
            print(f"{len(entries)} entr{'y' if len(entries) == 1 else 'ies'}")
        return 0
    if args.action == "show":
        entry = quarantine.get_entry(engine, args.id)
        if entry is None:
            print(f"no quarantine entry {args.id}", file=sys.stderr)
            return 1
        entry["history"] = quarantine.history(engine, args.id)
        _print(entry, True)
        return 0
    entry = quarantine.act(engine, args.id, args.action, actor=args.actor, note=args.note or "")
    print(f"quarantine entry {args.id} ({entry['path']}): {entry['status']} by {args.actor}")
    if args.action in ("retry", "release"):
        print("it is re-processed at the next sync run (or trigger the DAG now)")
    return 0


def cmd_search(args: argparse.Namespace) -> int:
    from docsync import index
    from docsync.embed import embed_texts

    settings = _settings(args)
    if args.user and args.principal:
        raise ValueError("search: give --user or --principal, not both")
    vector = embed_texts([args.query])[0]
    with index.open_index(settings) as client:
        if args.user:
            hits = index.search(client, settings.collection(), vector, limit=args.limit, user=args.user,
                                mode=args.mode or settings.sync.search_mode, text=args.query)
        else:
            hits = index.search(client, settings.collection(), vector, args.principal, args.limit,
                                mode=args.mode or settings.sync.search_mode, text=args.query)
    rows = [
        {"score": round(h.score, 3), "path": h.payload["path"], "page": h.payload.get("page"),
         "allowed": h.payload["allowed_principals"], "text": h.payload["text"][:300]}
        for h in hits
    ]
    _print(rows, True)
    return 0


def cmd_principals(args: argparse.Namespace) -> int:
    from docsync.directory import effective_principals

    principals = effective_principals(args.user, load_settings())
    if args.json:
        _print(principals, True)
    else:
        print("\n".join(principals) if principals else "(no principals: the account is disabled or ambiguous, "
              "or DOCSYNC_DIRECTORY_UNKNOWN_USER=none)")
    return 0


def cmd_directory_sync(args: argparse.Namespace) -> int:
    from docsync.directory import sync_directory

    settings = load_settings()
    if args.ldif:
        settings = settings.replace(directory_ldif_path=args.ldif)
    _print(sync_directory(settings), args.json)
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from docsync.evaluation.evaluate import run_evaluation

    settings = _settings(args)
    modes = ("dense", "hybrid") if args.mode == "both" else (args.mode,)
    reports = [run_evaluation(settings, settings.source.name, args.set, mode, record=not args.no_record)
               for mode in modes]
    if args.json:
        _print(reports[0] if len(reports) == 1 else {r["mode"]: r for r in reports}, True)
    else:
        for report in reports:
            _print_eval(report)
    return 0 if all(r["passed"] for r in reports) else 1


def _print_eval(report: dict) -> None:
    """A person's view of an evaluation: the figures, then what failed and the first misses."""
    print(f"== retrieval evaluation of source {report['source']} ({report['mode']}): {report['queries']} queries "
          f"({report['labelled']} labelled, {report['negatives']} must-not-find), set {report['set']}")
    for key in ("recall_at_1", "recall_at_5", "recall_at_10", "mrr", "ndcg_at_10", "passage_hit_rate",
                "acl_violations", "stale_hits", "latency_p50_ms", "latency_p95_ms", "baseline_recall_at_10"):
        print(f"{key:>28}: {report.get(key)}")
    for miss in report["misses"][:5]:
        print(f"  miss {miss['id']}: {miss['query']!r} expected {miss['expected']}, got {miss['got'][:3]}")
    for item in report["violations"][:5] + report["stale"][:5]:
        print(f"  {item['id']}: {item['path']}: {item['reason']}")
    print("PASSED" if report["passed"] else "FAILED: " + "; ".join(report["failures"]))


def cmd_status(args: argparse.Namespace) -> int:
    from docsync import metrics, state

    settings = _settings(args)
    engine = state.get_engine(settings.state_url)
    runs = state.recent_runs(engine, settings.source.name, limit=1)
    out = {"source": settings.source.name, "freshness_s": metrics.freshness_s(engine, settings.source.name)}
    if runs:
        out |= {"last_run": runs[0]["run_id"], "status": runs[0]["status"]} | runs[0]["summary"]
    live = metrics.live_values(engine, settings.source.name, settings.sync.freshness_slo_s,
                               settings.sync.run_deadline_min * 60)
    out |= {k: live[k] for k in ("backlog_documents", "backlog_oldest_age_seconds", "revocation_backlog_documents",
                                 "revocation_backlog_oldest_age_seconds", "unfinished_runs")}
    out |= processing_status(settings, engine)
    if not args.json:  # a histogram of one run on one line: how many changes, and their lags in total
        out |= {k: f"{v['count']} changes, {v['sum']:.0f} s in total" for k, v in out.items()
                if f"docsync_{k}" in metrics.HISTOGRAMS and isinstance(v, dict)}
    _print(out, args.json)
    return 0


def processing_status(settings: Settings, engine) -> dict:
    """The current processing fingerprints and the source's documents produced by others."""
    from docsync import fingerprint, state

    current = fingerprint.current(settings)
    stale = state.stale_counts(engine, settings.source.name, current.text_id, current.embedding_id)
    recorded = state.collection_fingerprint(engine, settings.collection())
    return {
        "text_fingerprint": current.text_id,
        "embedding_fingerprint": f"{current.embedding_id} ({current.embedding['model']})",
        "collection_embedding": recorded or "not recorded yet",
        "stale_processing_documents": stale["stale"],
        "stale_text_documents": stale["stale_text"],
        "stale_embedding_documents": stale["stale_embedding"],
    } | ({"embedding_model_changed": "syncs refuse to write: run `docsync reindex`"}
         if recorded and recorded != current.embedding_id else {})


def cmd_worker_host(args: argparse.Namespace) -> int:
    from docsync import worker_host
    from docsync.host_client import health

    settings = load_settings()
    socket_path = args.socket or settings.sync.host_socket
    if not socket_path:
        print("docsync: DOCSYNC_WORKER_HOST_SOCKET is off; set a socket path", file=sys.stderr)
        return 2
    if args.check:  # a health check (Docker HEALTHCHECK, monitoring): 0 when a warm host answers
        report = health(socket_path)
        _print(report or {"ok": False, "error": f"no worker host answers at {socket_path}"}, args.json)
        return 0 if report and report.get("ready") else 1
    return worker_host.supervise(socket_path, args.workers or settings.sync.host_workers)


def cmd_demo_corpus(args: argparse.Namespace) -> int:
    from docsync.demo import generate_demo_corpus

    manifest = generate_demo_corpus(Path(args.out))
    if args.manifest:
        Path(args.manifest).write_text(json.dumps(manifest, indent=2))
    print(f"demo corpus: {len(manifest['files'])} files in {args.out}")
    if args.eval_set:  # kept next to the corpus, never in it (it would be indexed)
        from docsync.demo.eval_queries import demo_eval_queries
        from docsync.evaluation.eval_set import dump_lines

        Path(args.eval_set).parent.mkdir(parents=True, exist_ok=True)
        Path(args.eval_set).write_text(dump_lines(demo_eval_queries()), encoding="utf-8")
        print(f"demo evaluation set: {args.eval_set}")
    return 0


def cmd_export_onnx(args: argparse.Namespace) -> int:
    """Export the configured model to int8 ONNX, offline, from its local files (`make setup`)."""
    from docsync.embed import export_onnx

    _print({"onnx_model": str(export_onnx())}, args.json)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="docsync", description=__doc__)
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("sync", help="run a full sync of one source in this process")
    p.add_argument("--root", help="source root (path or smb:// URL); default DOCSYNC_FILESHARE_ROOT")
    p.add_argument("--source", help="source name (collection docsync_<name>); default DOCSYNC_SOURCE_NAME")
    p.add_argument("--workers", type=int, help="batches processed in parallel processes (default DOCSYNC_WORKERS, 1); "
                   "each loads the models (~1.4 GB)")
    p.add_argument("--full-resync", action="store_true",
                   help="re-hash every document instead of trusting an unchanged size and mtime (for shares where "
                   "tools rewrite files keeping both)")
    p.set_defaults(func=cmd_sync)

    p = sub.add_parser("reconcile", help="repair drift between the state store and Qdrant")
    p.add_argument("--source")
    p.set_defaults(func=cmd_reconcile)

    p = sub.add_parser("reindex", help="rebuild a source's collection as a new version, then swap its alias")
    p.add_argument("--source")
    p.add_argument("--root", help="source root; default the configured one")
    p.add_argument("--keep-previous", action="store_true", help="keep the old version (for a rollback)")
    p.set_defaults(func=cmd_reindex)

    p = sub.add_parser("quarantine", help="review quarantined documents")
    qsub = p.add_subparsers(dest="action", required=True)
    q = qsub.add_parser("list")
    q.add_argument("--source")
    q.add_argument("--status", default="open", help="open, retry, released, dismissed, resolved or all")
    q = qsub.add_parser("show")
    q.add_argument("id", type=int)
    for action in ("retry", "release", "dismiss"):
        q = qsub.add_parser(action)
        q.add_argument("id", type=int)
        q.add_argument("--note", default="", help="why (required for release)")
        q.add_argument("--actor", default=getpass.getuser())
    p.set_defaults(func=cmd_quarantine)

    p = sub.add_parser("search", help="ACL-filtered semantic search")
    p.add_argument("query")
    p.add_argument("--principal", action="append", default=[], help="user:<name>, group:<name> (repeatable)")
    p.add_argument("--user", help="search as this directory user (its effective principals; see `docsync principals`)")
    p.add_argument("--limit", type=int, default=3)
    p.add_argument("--source")
    p.add_argument("--mode", choices=("dense", "hybrid"), help="default DOCSYNC_SEARCH_MODE")
    p.set_defaults(func=cmd_search)

    p = sub.add_parser("principals", help="a user's effective principals from the directory snapshot")
    p.add_argument("user", help="user:<name>, <name>, DOMAIN\\<name> or <name>@<domain>")
    p.set_defaults(func=cmd_principals)

    p = sub.add_parser("directory-sync", help="read the directory (DOCSYNC_DIRECTORY_*) and store its snapshot")
    p.add_argument("--ldif", help="read this LDIF export instead of the LDAP server")
    p.set_defaults(func=cmd_directory_sync)

    p = sub.add_parser("eval", help="retrieval quality of a source on its labelled evaluation set")
    p.add_argument("--source")
    p.add_argument("--set", help="the evaluation set (JSONL); default $DOCSYNC_EVAL_DIR/<source>.jsonl")
    p.add_argument("--mode", choices=("dense", "hybrid", "both"), help="search mode; default DOCSYNC_SEARCH_MODE")
    p.add_argument("--no-record", action="store_true", help="do not store the run (no baseline, no metrics)")
    # also accepted after the command (`docsync eval --json`); SUPPRESS keeps a --json given before it
    p.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="machine-readable output")
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("status", help="freshness and the last run's summary")
    p.add_argument("--source")
    p.set_defaults(func=cmd_status)

    p = sub.add_parser("worker-host", help="warm worker processes that the DAG's process tasks hand batches to")
    p.add_argument("--socket", help="Unix socket path; default DOCSYNC_WORKER_HOST_SOCKET (DOCSYNC_HOME/worker-host.sock)")
    p.add_argument("--workers", type=int, help="worker processes (default DOCSYNC_WORKERS, else one per core); "
                   "each loads the models (~1.4 GB)")
    p.add_argument("--check", action="store_true", help="health check: exit 0 when a warm host answers")
    p.set_defaults(func=cmd_worker_host)

    p = sub.add_parser("demo-corpus", help="generate the demo corpus")
    p.add_argument("out")
    p.add_argument("--manifest", help="write the expected outcomes as JSON here")
    p.add_argument("--eval-set", help="write the demo corpus' labelled evaluation set (JSONL) here")
    p.set_defaults(func=cmd_demo_corpus)

    p = sub.add_parser("export-onnx", help="export the embedding model to int8 ONNX (DOCSYNC_EMBED_ONNX_DIR), offline")
    p.set_defaults(func=cmd_export_onnx)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        return args.func(args)
    except (LookupError, ValueError, RuntimeError) as exc:
        print(f"docsync: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
