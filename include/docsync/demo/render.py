"""Rendering helpers for the demo corpus and benchmark shares: file writing with ACL
sidecars and fixed mtimes, PDF building (fpdf2), rasterizing and simulated paper scans,
image-only PDFs and reproducible zip (docx) bytes.

Heavy libraries (fpdf2, Pillow, pypdfium2, numpy) are imported lazily inside the
functions that need them.
"""

from __future__ import annotations

import io
import json
import os
import zipfile
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pathlib import Path

ACL_SUFFIX = ".acl.json"
FIXED_DATETIME = datetime(2026, 1, 15, 9, 0, 0, tzinfo=UTC)
FIXED_MTIME: float = FIXED_DATETIME.timestamp()
_SCAN_DPI = 300
_COMPANY = "Northwind Analytics"


def _write_bytes(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def _write_text(path: Path, text: str) -> Path:
    return _write_bytes(path, text.encode("utf-8"))


def _acl_path(doc: Path) -> Path:
    return doc.with_name(doc.name + ACL_SUFFIX)


def _write_acl(doc: Path, allow: list[str]) -> Path:
    return _write_text(_acl_path(doc), json.dumps({"allow": allow}, indent=2) + "\n")


def _set_mtime(paths: list[Path], mtime: float = FIXED_MTIME) -> None:
    for p in paths:
        os.utime(p, (mtime, mtime))


def _pdf_class() -> Any:
    """Return an FPDF subclass with a running header and page-number footer."""
    from fpdf import FPDF

    class _ReportPDF(FPDF):
        header_text = ""

        def header(self) -> None:
            """Draw the running header (right-aligned, grey italic)."""
            if self.header_text:
                self.set_font("Helvetica", "I", 8)
                self.set_text_color(110, 110, 110)
                self.cell(0, 6, self.header_text, align="R")
                self.ln(10)
                self.set_text_color(0, 0, 0)

        def footer(self) -> None:
            """Draw the page-number footer."""
            if self.header_text:
                self.set_y(-15)
                self.set_font("Helvetica", "I", 8)
                self.set_text_color(110, 110, 110)
                self.cell(0, 8, f"Page {self.page_no()}/{{nb}}", align="C")
                self.set_text_color(0, 0, 0)

    return _ReportPDF


def _new_pdf(title: str, header_text: str = "") -> Any:
    pdf = _pdf_class()(format="Letter")
    pdf.header_text = header_text
    pdf.set_creation_date(FIXED_DATETIME)
    pdf.set_title(title)
    pdf.set_author(_COMPANY)
    pdf.set_creator("docsync demo corpus")
    pdf.set_auto_page_break(True, margin=20)
    pdf.set_margins(22, 18, 22)
    return pdf


def _pdf_heading(pdf: Any, text: str, size: int = 14) -> None:
    pdf.set_font("Helvetica", "B", size)
    pdf.multi_cell(0, size * 0.5, text, new_x="LMARGIN", new_y="NEXT")
    pdf.ln(2)


def _pdf_paragraph(pdf: Any, text: str) -> None:
    pdf.set_font("Helvetica", "", 11)
    pdf.multi_cell(0, 5.6, text, new_x="LMARGIN", new_y="NEXT")
    pdf.ln(3)


def _pdf_bytes(pdf: Any) -> bytes:
    return bytes(pdf.output())


def _rasterize(pdf_bytes: bytes, dpi: int = _SCAN_DPI) -> list[Any]:
    """Render every page of a PDF to a grayscale PIL image at ``dpi``."""
    import pypdfium2 as pdfium

    doc = pdfium.PdfDocument(pdf_bytes)
    images = []
    try:
        for i in range(len(doc)):
            page = doc[i]
            width, height = page.get_size()
            bitmap = page.render(scale=dpi / 72.0, grayscale=True)
            img = bitmap.to_pil().convert("L")
            # pdfium may round up by a pixel; crop to the exact page size at ``dpi``
            img = img.crop((0, 0, round(width * dpi / 72.0), round(height * dpi / 72.0)))
            images.append(img.copy())
            bitmap.close()
            page.close()
    finally:
        doc.close()
    return images


def _scanify(img: Any, seed: int, angle: float = 0.35) -> Any:
    """Make a clean rendering look like a paper scan (skew, paper tint, dust specks)."""
    import numpy as np
    from PIL import Image

    img = img.rotate(angle, resample=Image.Resampling.BICUBIC, fillcolor=255)
    arr = np.asarray(img, dtype=np.int16)
    rng = np.random.default_rng(seed)
    # gentle vertical tint gradient (no per-pixel grain: it bloats the JPEG 10x)
    arr = arr - np.linspace(6, 16, arr.shape[0], dtype=np.int16)[:, None]
    n_specks = arr.size // 20000
    ys = rng.integers(0, arr.shape[0], n_specks)
    xs = rng.integers(0, arr.shape[1], n_specks)
    arr[ys, xs] = rng.integers(60, 160, n_specks)
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), mode="L")


def _images_to_pdf(images: list[Any], title: str) -> bytes:
    """Save images as an image-only PDF (no text layer) at the scan DPI."""
    buf = io.BytesIO()
    fixed = FIXED_DATETIME.timetuple()
    images[0].save(
        buf,
        "PDF",
        resolution=float(_SCAN_DPI),
        save_all=True,
        append_images=images[1:],
        quality=80,
        title=title,
        author=_COMPANY,
        producer="docsync scanner simulation",
        creationDate=fixed,
        modDate=fixed,
    )
    return buf.getvalue()


def _fixed_zip(data: bytes) -> bytes:
    """Rewrite a zip (docx) with fixed member timestamps for reproducible bytes."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            zi = zipfile.ZipInfo(info.filename, date_time=(2026, 1, 15, 9, 0, 0))
            zi.compress_type = zipfile.ZIP_DEFLATED
            zi.external_attr = 0o644 << 16
            dst.writestr(zi, src.read(info.filename))
    return out.getvalue()
