"""Tests for the synthetic corpus generators (real libraries, no mocks)."""

from __future__ import annotations

import json
import shutil
import zipfile
from typing import TYPE_CHECKING

import pytest

from docsync.demo import ACL_SUFFIX, FIXED_MTIME, generate_demo_corpus, generate_share, modify_share

if TYPE_CHECKING:
    from pathlib import Path

needs_tesseract = pytest.mark.skipif(
    shutil.which("tesseract") is None, reason="tesseract binary not installed"
)


def _norm(text: str) -> str:
    return " ".join(text.split())


def _acl(path: Path) -> dict:
    return json.loads(path.with_name(path.name + ACL_SUFFIX).read_text(encoding="utf-8"))


def _pdf_page_texts(path: Path) -> list[str]:
    import pypdfium2 as pdfium

    doc = pdfium.PdfDocument(path)
    try:
        return [doc[i].get_textpage().get_text_range() for i in range(len(doc))]
    finally:
        doc.close()


def _ocr_pdf_page(path: Path, index: int) -> str:
    import pypdfium2 as pdfium
    import pytesseract

    doc = pdfium.PdfDocument(path)
    try:
        image = doc[index].render(scale=300 / 72).to_pil()
    finally:
        doc.close()
    return _norm(pytesseract.image_to_string(image))


def _files_bytes(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("demo") / "share"
    return root, generate_demo_corpus(root)


@pytest.fixture()
def ocr_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OMP_THREAD_LIMIT", "1")


# --------------------------------------------------------------------------
# demo corpus
# --------------------------------------------------------------------------
def test_manifest_layout_and_files_exist(demo: tuple[Path, dict]) -> None:
    root, manifest = demo
    assert set(manifest) >= {"files", "pii", "phrases"}
    files = manifest["files"]
    kinds = {meta["kind"] for meta in files.values()}
    assert {"pdf", "scanned_pdf", "mixed_pdf", "docx", "html", "markdown", "txt", "image"} <= kinds
    assert {"corrupt_pdf", "truncated_pdf", "empty", "encrypted_pdf", "fake_docx"} <= kinds
    for name in ("corrupt.pdf", "truncated.pdf", "empty.txt", "encrypted.pdf", "fake.docx"):
        assert any(rel.endswith("/" + name) or rel == name for rel in files), name

    for rel, meta in files.items():
        path = root / rel
        assert path.is_file(), rel
        assert meta["expect"] in ("indexed", "quarantined")
        # every document has an ACL sidecar matching the manifest
        assert _acl(path) == {"allow": meta["principals"]}, rel
        for principal in meta["principals"]:
            assert principal == "everyone" or principal.split(":", 1)[0] in ("user", "group")
        assert path.stat().st_mtime == FIXED_MTIME

    # no stray documents that the manifest does not know about
    on_disk = {
        p.relative_to(root).as_posix()
        for p in root.rglob("*")
        if p.is_file() and not p.name.endswith(ACL_SUFFIX)
    }
    assert on_disk == set(files)

    by_reason = {meta["reason_contains"]: meta for meta in files.values() if meta["reason_contains"]}
    assert by_reason["access"]["principals"] == [] and by_reason["access"]["expect"] == "quarantined"
    assert by_reason["empty"]["kind"] == "empty" and by_reason["encrypt"]["kind"] == "encrypted_pdf"
    assert sum(meta["expect"] == "indexed" for meta in files.values()) >= 8
    assert {p for m in files.values() if m["expect"] == "indexed" for p in m["principals"]} >= {
        "group:finance", "group:hr", "group:engineering", "everyone"}


def test_pii_and_phrases(demo: tuple[Path, dict]) -> None:
    import docx

    root, manifest = demo
    pii, phrases, files = manifest["pii"], manifest["phrases"], manifest["files"]
    for literal in ("Maria Gonzalez", "(212) 555-0147", "4111 1111 1111 1111", "DE89 3704 0044 0532 0130 00"):
        assert literal in pii
    assert any("@" in x for x in pii) and any(len(x) == 11 and x[3] == "-" and x[6] == "-" for x in pii)
    assert "123-45-6789" not in pii  # presidio rejects this sample SSN; never plant it

    assert all(rel in files for rel in phrases)
    assert all(rel in phrases for rel, m in files.items() if m["expect"] == "indexed")
    assert len(set(phrases.values())) == len(phrases)
    for phrase in phrases.values():
        assert not any(x.lower() in phrase.lower() or phrase.lower() in x.lower() for x in pii)

    # phrase and PII really are in the text of the text-bearing formats
    texts = {
        "txt": (root / "engineering/runbooks/oncall-runbook.txt").read_text(encoding="utf-8"),
        "md": (root / "public/product-faq.md").read_text(encoding="utf-8"),
        "html": (root / "public/company-overview.html").read_text(encoding="utf-8"),
    }
    assert phrases["engineering/runbooks/oncall-runbook.txt"] in texts["txt"]
    assert phrases["public/product-faq.md"] in texts["md"]
    assert phrases["public/company-overview.html"] in texts["html"]
    assert "(415) 555-0198" in texts["txt"]

    document = docx.Document(str(root / "hr/employee-handbook.docx"))
    styles = {p.style.name for p in document.paragraphs}
    assert {"Heading 1", "Heading 2"} <= styles
    docx_text = _norm(" ".join(p.text for p in document.paragraphs))
    assert phrases["hr/employee-handbook.docx"] in docx_text
    assert "Emily Watson" in docx_text and "419-27-3856" in docx_text

    pdf_pages = _pdf_page_texts(root / "finance/annual-report-2025.pdf")
    pdf_text = _norm(" ".join(pdf_pages))
    assert len(pdf_pages) >= 2 and len(pdf_text.split()) >= 600
    assert phrases["finance/annual-report-2025.pdf"] in pdf_text
    for literal in ("4111 1111 1111 1111", "DE89 3704 0044 0532 0130 00", "Robert Chen"):
        assert literal in pdf_text


@needs_tesseract
def test_scanned_pdf_has_no_text_layer_but_is_ocrable(demo: tuple[Path, dict], ocr_env: None) -> None:
    root, manifest = demo
    rel = "hr/scans/onboarding-form-scan.pdf"
    pages = _pdf_page_texts(root / rel)
    assert pages and all(not t.strip() for t in pages)
    text = _ocr_pdf_page(root / rel, 0)
    assert manifest["phrases"][rel] in text
    # the planted PII is legible, so the anonymizer has something to find
    for literal in (
        "Maria Gonzalez", "maria.gonzalez@northwindanalytics.com", "(212) 555-0147", "532-74-1968"
    ):
        assert literal in text


@needs_tesseract
def test_mixed_pdf_digital_then_scanned(demo: tuple[Path, dict], ocr_env: None) -> None:
    root, manifest = demo
    rel = "finance/expenses/expense-report-mixed.pdf"
    pages = _pdf_page_texts(root / rel)
    assert len(pages) == 2
    assert len(pages[0].split()) > 30 and not pages[1].strip()
    assert manifest["phrases"][rel] in _ocr_pdf_page(root / rel, 1)


@needs_tesseract
def test_png_memo_is_ocrable(demo: tuple[Path, dict], ocr_env: None) -> None:
    import pytesseract
    from PIL import Image

    root, manifest = demo
    rel = "engineering/whiteboard-memo.png"
    with Image.open(root / rel) as img:
        assert img.format == "PNG"
        text = _norm(pytesseract.image_to_string(img))
    assert manifest["phrases"][rel] in text


def test_bad_files_are_bad(demo: tuple[Path, dict]) -> None:
    import pypdf
    import pypdfium2 as pdfium

    root, _ = demo
    inbox = root / "inbox"
    assert (inbox / "empty.txt").stat().st_size == 0

    reader = pypdf.PdfReader(inbox / "encrypted.pdf")
    assert reader.is_encrypted
    with pytest.raises(pypdf.errors.FileNotDecryptedError):
        reader.pages[0].extract_text()
    with pytest.raises(pdfium.PdfiumError):
        pdfium.PdfDocument(inbox / "encrypted.pdf")

    for name in ("corrupt.pdf", "truncated.pdf"):
        with pytest.raises(pdfium.PdfiumError):
            pdfium.PdfDocument(inbox / name)
        with pytest.raises(pypdf.errors.PdfReadError):
            _ = [p.extract_text() for p in pypdf.PdfReader(inbox / name).pages]
    assert (inbox / "truncated.pdf").read_bytes().startswith(b"%PDF-")
    assert not zipfile.is_zipfile(inbox / "fake.docx")


def test_demo_corpus_is_deterministic(demo: tuple[Path, dict], tmp_path: Path) -> None:
    root, manifest = demo
    other = tmp_path / "again"
    assert generate_demo_corpus(other) == manifest
    first, second = _files_bytes(root), _files_bytes(other)
    assert first.keys() == second.keys()
    text_like = [r for r in first if r.endswith((".txt", ".md", ".html", ".json"))]
    assert len(text_like) > 10
    for rel in text_like:
        assert first[rel] == second[rel], rel
    # binary formats are reproducible too (fixed dates, seeded noise, RC4 encryption)
    assert [r for r in first if first[r] != second[r]] == []


# --------------------------------------------------------------------------
# benchmark shares
# --------------------------------------------------------------------------
def test_generate_share(tmp_path: Path) -> None:
    docs = generate_share(tmp_path / "s", 200, seed=7)
    assert len(docs) == 200 and len(set(docs)) == 200
    sidecars = list((tmp_path / "s").rglob("*" + ACL_SUFFIX))
    all_files = [p for p in (tmp_path / "s").rglob("*") if p.is_file()]
    assert len(sidecars) == 200 and len(all_files) == 400
    assert {p.suffix for p in docs} == {".txt", ".md"}
    assert len({p.parent for p in docs}) == 2  # ~100 documents per folder
    for p in docs:
        assert 100 <= len(p.read_text(encoding="utf-8").split()) <= 400
        allow = _acl(p)["allow"]
        assert allow and all(a == "everyone" or a.startswith(("user:", "group:")) for a in allow)
        assert p.stat().st_mtime == FIXED_MTIME

    again = generate_share(tmp_path / "s2", 200, seed=7)
    assert [p.relative_to(tmp_path / "s2") for p in again] == [p.relative_to(tmp_path / "s") for p in docs]
    assert _files_bytes(tmp_path / "s") == _files_bytes(tmp_path / "s2")
    other_seed = generate_share(tmp_path / "s3", 20, seed=8)
    assert other_seed[5].read_bytes() != docs[5].read_bytes()

    custom = generate_share(tmp_path / "c", 30, principals=["user:zoe", "group:ops"])
    assert all(set(_acl(p)["allow"]) <= {"user:zoe", "group:ops"} for p in custom)


def test_modify_share(tmp_path: Path) -> None:
    docs = generate_share(tmp_path / "s", 200, seed=1)
    before = {p: p.read_bytes() for p in docs}
    result = modify_share(docs, 0.1, seed=3)
    modified, deleted, added = result["modified"], result["deleted"], result["added"]
    assert len(modified) == len(deleted) == len(added) == 20
    assert not set(modified) & set(deleted)
    assert not set(added) & set(docs)
    for p in modified:
        assert p.read_bytes() != before[p] and p.stat().st_mtime > FIXED_MTIME
        assert p.with_name(p.name + ACL_SUFFIX).exists()
    for p in deleted:
        assert not p.exists() and not p.with_name(p.name + ACL_SUFFIX).exists()
    for p in added:
        assert p.exists() and _acl(p)["allow"]
        assert 100 <= len(p.read_text(encoding="utf-8").split()) <= 400
    untouched = [p for p in docs if p not in set(modified) | set(deleted)]
    assert all(p.read_bytes() == before[p] and p.stat().st_mtime == FIXED_MTIME for p in untouched)

    # a second round on the surviving set works and never collides with earlier additions
    survivors = untouched + modified + added
    second = modify_share(survivors, 0.05, seed=3)
    assert len(second["added"]) == 10 and not set(second["added"]) & set(added)
    assert modify_share(survivors, 0.0, seed=0) == {"modified": [], "deleted": [], "added": []}
