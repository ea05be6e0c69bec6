"""Benchmark corpora built from docsync.demo helpers: a mixed share (text, DOCX, digital
PDF, scanned PDF at given ratios) and one long PDF (digital pages plus some scanned ones)."""

from __future__ import annotations

import io
import json
import random
from pathlib import Path

from docsync.demo import render
from docsync.demo.share import _share_doc

DEFAULT_MIX = {"txt": 0.5, "docx": 0.2, "pdf": 0.2, "scan": 0.1}
SCANNED_MIX = {"scan": 1.0}  # an archive of scanned paper: OCR is by far the slowest stage


def _paragraphs(rng: random.Random, i: int) -> list[str]:
    return _share_doc(rng, i, ".txt").strip().split("\n\n")


def _docx(paragraphs: list[str]) -> bytes:
    import docx

    d = docx.Document()
    d.add_heading(paragraphs[0], level=1)
    for text in paragraphs[1:]:
        d.add_paragraph(text)
    buf = io.BytesIO()
    d.save(buf)
    return buf.getvalue()


def _pdf(paragraphs: list[str]) -> bytes:
    pdf = render._new_pdf(paragraphs[0])
    pdf.add_page()
    render._pdf_heading(pdf, paragraphs[0])
    for text in paragraphs[1:]:
        render._pdf_paragraph(pdf, text)
    return render._pdf_bytes(pdf)


def _scan(paragraphs: list[str], seed: int) -> bytes:
    """An image-only PDF: the digital rendering, rasterized and made to look scanned."""
    pages = [render._scanify(img, seed=seed + k) for k, img in enumerate(render._rasterize(_pdf(paragraphs)))]
    return render._images_to_pdf(pages, f"scan_{seed}")


def generate_mixed(
    out_dir: Path, n: int, mix: dict[str, float] | None = None, seed: int = 0, scan_pages: int = 1
) -> dict[str, int]:
    """Write n documents of the kinds in ``mix`` (fractions) with ACL sidecars; returns counts.
    Scanned PDFs have about ``scan_pages`` pages each."""
    mix = mix or DEFAULT_MIX
    rng = random.Random(f"mixed-{seed}")
    kinds = [k for k, share in mix.items() for _ in range(round(share * n))][:n]
    kinds += ["txt"] * (n - len(kinds))
    rng.shuffle(kinds)
    counts: dict[str, int] = {}
    for i, kind in enumerate(kinds):
        folder = Path(out_dir) / f"batch-{i // 100:04d}"
        folder.mkdir(parents=True, exist_ok=True)
        paragraphs = _paragraphs(rng, i)
        if kind == "txt":
            path, data = folder / f"doc-{i:05d}.txt", ("\n\n".join(paragraphs) + "\n").encode()
        elif kind == "docx":
            path, data = folder / f"doc-{i:05d}.docx", _docx(paragraphs)
        elif kind == "pdf":
            path, data = folder / f"doc-{i:05d}.pdf", _pdf(paragraphs)
        else:
            for k in range(1, scan_pages):
                paragraphs += _paragraphs(rng, i * 1000 + k)[1:]
            path, data = folder / f"scan-{i:05d}.pdf", _scan(paragraphs, seed=i)
        path.write_bytes(data)
        Path(f"{path}{render.ACL_SUFFIX}").write_text(json.dumps({"allow": ["group:staff"]}))
        counts[kind] = counts.get(kind, 0) + 1
    return counts


def scanned_page_images(count: int, seed: int = 0) -> list:
    """``count`` scanned-looking 300 dpi page images (PIL, grayscale) with ~200 words each."""
    rng = random.Random(f"pages-{seed}")
    return [render._scanify(render._rasterize(_pdf(_paragraphs(rng, i)))[0], seed=i) for i in range(count)]


def long_pdf(path: Path, pages: int = 1000, scanned: int = 20, seed: int = 0) -> dict[str, int]:
    """One PDF of ``pages`` pages: digital text pages with ``scanned`` image-only pages spread in."""
    from pypdf import PdfReader, PdfWriter

    rng = random.Random(f"long-{seed}")
    digital = pages - scanned
    pdf = render._new_pdf("Long benchmark report", "docsync benchmark - long report")
    for i in range(digital):
        pdf.add_page()
        render._pdf_heading(pdf, f"Section {i + 1}")
        for text in _paragraphs(rng, i)[1:4]:
            render._pdf_paragraph(pdf, text)
    digital_reader = PdfReader(io.BytesIO(render._pdf_bytes(pdf)))
    scan_reader = PdfReader(io.BytesIO(render._images_to_pdf(scanned_page_images(scanned, seed), "long-scan")))
    writer = PdfWriter()
    every = max(1, len(digital_reader.pages) // max(1, scanned))
    s = 0
    for i, page in enumerate(digital_reader.pages):
        writer.add_page(page)
        if i % every == every - 1 and s < scanned:
            writer.add_page(scan_reader.pages[s])
            s += 1
    for page in scan_reader.pages[s:]:
        writer.add_page(page)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as fh:
        writer.write(fh)
    Path(f"{path}{render.ACL_SUFFIX}").write_text(json.dumps({"allow": ["group:staff"]}))
    return {"pages": len(writer.pages), "scanned": scanned, "bytes": path.stat().st_size}
