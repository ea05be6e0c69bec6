"""Child: one docsync sync of a share (``python -m bench.docsync_sync --share DIR --home DIR``)."""

from __future__ import annotations

import argparse
import os

from bench.child import emit, timed

# With --profile: cumulative seconds in these docsync functions (where the time goes; OCR runs
# in worker threads, which cProfile does not see: it shows up as waiting in parse).
BREAKDOWN = {
    "parse (unstructured/pdfium)": ("parse.py", "parse_document"),
    "PII (Presidio/spaCy)": ("pii.py", "anonymize_many"),
    "PII rescan": ("pii.py", "rescan"),
    "validate (GX)": ("validate.py", "_validate"),
    "chunk (tokenizer)": ("chunk.py", "chunk_blocks"),
    "embed": ("embed.py", "embed_texts"),
    "index (Qdrant + state)": ("write.py", "write_batch"),
    "plan": ("plan.py", "plan"),
    "reconcile": ("reconcile.py", "reconcile"),
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--share", required=True)
    parser.add_argument("--home", required=True, help="DOCSYNC_HOME: state store, staging, embedded Qdrant")
    parser.add_argument("--profile", help="write cProfile stats (top 40 cumulative) here")
    parser.add_argument("--workers", type=int, default=1, help="batch worker processes (run_sync workers)")
    args = parser.parse_args()
    os.environ["DOCSYNC_HOME"] = args.home
    os.environ["DOCSYNC_FILESHARE_ROOT"] = args.share  # the share under test is the configured root
    for var in ("DOCSYNC_STATE_URL", "DOCSYNC_QDRANT_URL", "DOCSYNC_STAGING", "DOCSYNC_QDRANT_PATH"):
        os.environ.pop(var, None)

    from docsync.config import load_settings
    from docsync.embed import EmbeddingCounter
    from docsync.pipeline import run_sync

    settings = load_settings()
    result: dict = {}
    profiler = None
    if args.profile:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    with timed(result):
        summary = run_sync(settings, args.share, workers=args.workers)
    if profiler:
        import io
        import pstats

        profiler.disable()
        buf = io.StringIO()
        stats = pstats.Stats(profiler, stream=buf)
        stats.sort_stats("cumulative").print_stats(40)
        with open(args.profile, "w") as fh:
            fh.write(buf.getvalue())
        result["breakdown_s"] = {
            label: round(sum(v[3] for (file, _line, func), v in stats.stats.items()
                             if file.endswith(f"docsync/{name[0]}") and func == name[1]), 2)
            for label, name in BREAKDOWN.items()
        }
    # Worker processes embed in their own processes: their count comes back in the summary.
    result["embedded_texts"] = EmbeddingCounter.texts if args.workers <= 1 else summary.get("chunks_embedded", 0)
    result["embed_calls"] = EmbeddingCounter.calls
    keys = ("seen", "unchanged", "new", "modified", "deleted", "indexed", "quarantined", "chunks", "chunks_embedded",
            "ocr_pages", "stage_s", "reconcile")
    result["summary"] = {k: summary.get(k) for k in keys}
    emit(result)


if __name__ == "__main__":
    main()
