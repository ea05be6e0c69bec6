"""``generate_demo_corpus``: the Northwind Analytics demo share and the manifest of what a
correct pipeline run must produce from it."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from docsync.demo.documents import (
    _acquisition_md,
    _faq_md,
    _handbook_docx,
    _memo_png,
    _overview_html,
    _runbook_txt,
)
from docsync.demo.pdf_documents import (
    _annual_report_pdf,
    _encrypt_pdf,
    _expense_mixed_pdf,
    _forecast_pdf,
    _onboarding_scan_pdf,
    _payroll_pdf,
)
from docsync.demo.planted import _PHRASES, _PII
from docsync.demo.render import _set_mtime, _write_acl, _write_bytes


def generate_demo_corpus(out_dir: Path) -> dict:
    """Write the Northwind Analytics demo corpus into ``out_dir``; return its manifest.

    Manifest layout::

        {"files":   {rel_path: {"kind", "expect", "principals", "reason_contains"}},
         "pii":     [every planted PII literal],
         "phrases": {rel_path: distinctive PII-free phrase from that document}}

    ``expect`` is ``"indexed"`` or ``"quarantined"``. ``principals`` is the ACL
    sidecar's allow list (every document, good or bad, gets a sidecar, so bad
    files fail on content, not on access). ``phrases`` also covers quarantined
    documents that have text, for negative "must not be searchable" checks.
    Rel paths use forward slashes. Deterministic; all files get mtime 2026-01-15.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    files: dict[str, dict[str, Any]] = {}
    phrases: dict[str, str] = {}
    written: list[Path] = []

    def add(
        rel: str,
        data: bytes | str,
        kind: str,
        allow: list[str],
        expect: str = "indexed",
        reason: str | None = None,
        phrase: str | None = None,
    ) -> None:
        path = out_dir / rel
        raw = data.encode("utf-8") if isinstance(data, str) else data
        written.append(_write_bytes(path, raw))
        written.append(_write_acl(path, allow))
        files[rel] = {"kind": kind, "expect": expect, "principals": list(allow), "reason_contains": reason}
        if phrase is not None:
            phrases[rel] = phrase

    fin, hr, eng, pub = ["group:finance"], ["group:hr"], ["group:engineering"], ["everyone"]

    # --- good documents -------------------------------------------------
    annual = _annual_report_pdf()
    add("finance/annual-report-2025.pdf", annual, "pdf", fin, phrase=_PHRASES["annual_report"])
    add("finance/expenses/expense-report-mixed.pdf", _expense_mixed_pdf(), "mixed_pdf",
        fin + ["user:alice"], phrase=_PHRASES["mixed"])
    add("hr/employee-handbook.docx", _handbook_docx(), "docx", hr, phrase=_PHRASES["handbook"])
    add("hr/scans/onboarding-form-scan.pdf", _onboarding_scan_pdf(), "scanned_pdf", hr,
        phrase=_PHRASES["scanned"])
    add("engineering/runbooks/oncall-runbook.txt", _runbook_txt(), "txt",
        eng + ["user:alice"], phrase=_PHRASES["runbook"])
    add("engineering/whiteboard-memo.png", _memo_png(), "image", eng, phrase=_PHRASES["memo"])
    add("public/company-overview.html", _overview_html(), "html", pub, phrase=_PHRASES["html"])
    add("public/product-faq.md", _faq_md(), "markdown", pub, phrase=_PHRASES["faq"])

    # --- good content, but nobody may read it -> access failure ----------
    add("finance/acquisition-memo.md", _acquisition_md(), "markdown", [],
        expect="quarantined", reason="access", phrase=_PHRASES["acquisition"])

    # --- bad files --------------------------------------------------------
    rng = random.Random(1337)
    add("inbox/corrupt.pdf", b"%PDF-1.7\n" + rng.randbytes(4096), "corrupt_pdf", pub,
        expect="quarantined")
    forecast = _forecast_pdf()
    add("inbox/truncated.pdf", forecast[: int(len(forecast) * 0.4)], "truncated_pdf", pub,
        expect="quarantined", phrase=_PHRASES["truncated"])
    add("inbox/empty.txt", b"", "empty", pub, expect="quarantined", reason="empty")
    add("inbox/encrypted.pdf", _encrypt_pdf(_payroll_pdf(), "n0rthw1nd-user", "n0rthw1nd-owner"),
        "encrypted_pdf", pub, expect="quarantined", reason="encrypt", phrase=_PHRASES["encrypted"])
    add("inbox/fake.docx", rng.randbytes(3000), "fake_docx", pub, expect="quarantined")

    _set_mtime(written)
    return {
        "files": files,
        "pii": sorted(set(_PII.values())),
        "phrases": phrases,
    }
