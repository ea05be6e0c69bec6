"""Synthetic document corpora for demos, tests and benchmarks.

``generate_demo_corpus`` writes a small but realistic document share of the
fictional company *Northwind Analytics*: digital, scanned and mixed PDFs, DOCX,
HTML, Markdown, TXT, a PNG memo, deliberately broken files and ACL sidecars.
It returns a manifest describing what a correct pipeline run must produce.

``generate_share`` / ``modify_share`` build large, cheap TXT/MD shares for
throughput and incremental-sync benchmarks.

Everything is deterministic: seeded randomness, fixed document dates and a
fixed file mtime.  Heavy libraries (fpdf2, python-docx, Pillow, pypdf,
pypdfium2, numpy) are imported lazily inside the functions that need them.

The package is not part of the runtime import graph: only the ``demo-corpus`` CLI command,
tests and benchmarks import it.
"""

from docsync.demo.corpus import generate_demo_corpus
from docsync.demo.render import ACL_SUFFIX, FIXED_DATETIME, FIXED_MTIME
from docsync.demo.share import generate_share, modify_share

__all__ = [
    "ACL_SUFFIX",
    "FIXED_DATETIME",
    "FIXED_MTIME",
    "generate_demo_corpus",
    "generate_share",
    "modify_share",
]
