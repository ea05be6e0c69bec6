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
"""

from __future__ import annotations

import io
import json
import os
import random
import zipfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

__all__ = [
    "ACL_SUFFIX",
    "FIXED_MTIME",
    "generate_demo_corpus",
    "generate_share",
    "modify_share",
]

ACL_SUFFIX = ".acl.json"
FIXED_DATETIME = datetime(2026, 1, 15, 9, 0, 0, tzinfo=timezone.utc)
FIXED_MTIME: float = FIXED_DATETIME.timestamp()
_DAY = 86400.0
_SCAN_DPI = 300
_COMPANY = "Northwind Analytics"

# --------------------------------------------------------------------------
# Planted PII.  Every literal below appears somewhere in the demo corpus and
# must never show up in the index.  SSNs deliberately avoid the "sample"
# numbers (123-45-6789, 078-05-1120) that Presidio refuses to flag.
# --------------------------------------------------------------------------
_PII = {
    # scanned HR onboarding form
    "maria_name": "Maria Gonzalez",
    "maria_email": "maria.gonzalez@northwindanalytics.com",
    "maria_phone": "(212) 555-0147",
    "maria_ssn": "532-74-1968",
    # HR handbook (docx)
    "emily_name": "Emily Watson",
    "emily_email": "emily.watson@northwindanalytics.com",
    "emily_phone": "(312) 555-0176",
    "james_name": "James Miller",
    "james_ssn": "419-27-3856",
    # annual report (digital pdf)
    "robert_name": "Robert Chen",
    "robert_email": "robert.chen@northwindanalytics.com",
    "robert_phone": "(646) 555-0112",
    "card": "4111 1111 1111 1111",
    "iban": "DE89 3704 0044 0532 0130 00",
    # expense report (mixed pdf, scanned page)
    "kevin_name": "Kevin Brooks",
    "kevin_card": "5500 0000 0000 0004",
    # on-call runbook (txt)
    "priya_name": "Priya Raman",
    "priya_email": "priya.raman@northwindanalytics.com",
    "priya_phone": "(415) 555-0198",
    # company overview (html)
    "daniel_name": "Daniel Okafor",
    "daniel_email": "daniel.okafor@northwindanalytics.com",
    "daniel_phone": "(646) 555-0123",
    # product FAQ (markdown)
    "sarah_name": "Sarah Johnson",
    "sarah_email": "sarah.johnson@northwindanalytics.com",
    # whiteboard memo (png)
    "thomas_name": "Thomas Becker",
    # acquisition memo (access denied)
    "laura_name": "Laura Fischer",
    "laura_email": "laura.fischer@northwindanalytics.com",
}

# Distinctive, PII-free phrases (lowercase common words: no names, places,
# dates or numbers, so an anonymizer has no reason to touch them).
_PHRASES = {
    "annual_report": "churn fell after the onboarding redesign",
    "mixed": "receipt stamped by the travel desk",
    "handbook": "flexible hours are agreed with your team lead",
    "scanned": "laptop and badge were handed over",
    "runbook": "drain the ingestion queue before restarting workers",
    "memo": "retire the legacy search cluster",
    "html": "dashboards that explain themselves",
    "faq": "the sandbox workspace resets automatically",
    "acquisition": "confidential shortlist of acquisition targets",
    "encrypted": "payroll summary locked for auditors",
    "truncated": "forecast assumptions were stress tested",
}


# ==========================================================================
# small helpers
# ==========================================================================
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

        def header(self) -> None:  # noqa: D102
            if self.header_text:
                self.set_font("Helvetica", "I", 8)
                self.set_text_color(110, 110, 110)
                self.cell(0, 6, self.header_text, align="R")
                self.ln(10)
                self.set_text_color(0, 0, 0)

        def footer(self) -> None:  # noqa: D102
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


# ==========================================================================
# demo corpus documents
# ==========================================================================
def _annual_report_pdf() -> bytes:
    p = _PII
    pdf = _new_pdf(f"{_COMPANY} Annual Report 2025", f"{_COMPANY} - Annual Report 2025")
    pdf.alias_nb_pages()
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 22)
    pdf.cell(0, 14, f"{_COMPANY}", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "", 16)
    pdf.cell(0, 10, "Annual Report 2025", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(6)

    _pdf_heading(pdf, "1. Letter from the leadership team")
    _pdf_paragraph(
        pdf,
        "This was the year our customers stopped treating analytics as a side project. "
        "Across retail, logistics and healthcare, teams moved their planning cycles onto "
        "the Northwind platform and asked us for fewer reports and more answers. We "
        "responded by simplifying the product, investing in data quality tooling and "
        "rebuilding the first-run experience from the ground up. Retention is the clearest "
        f"signal that this worked: {_PHRASES['annual_report']}, and expansion revenue "
        "from existing accounts now exceeds the revenue we win from new logos.",
    )
    _pdf_paragraph(
        pdf,
        "We also made deliberate choices about what not to build. We paused two "
        "experimental connectors that served a handful of customers, consolidated three "
        "internal data pipelines into one, and retired a reporting module that had become "
        "expensive to maintain. Those decisions freed roughly a fifth of engineering "
        "capacity for reliability work, which our customers noticed long before we "
        "published a single number about it.",
    )
    _pdf_paragraph(
        pdf,
        "Finally, we want to thank the people who make this company work. Our support "
        "engineers answered more than forty thousand tickets with a median first response "
        "time under two hours, our sales team closed the largest contract in company "
        "history, and our finance team completed the first clean audit since the company "
        "moved to quarterly closes.",
    )

    _pdf_heading(pdf, "2. Business highlights")
    for text in (
        "Annual recurring revenue grew to 48.2 million dollars, an increase of 31 percent "
        "over the prior year. Net revenue retention reached 124 percent, driven by "
        "adoption of the forecasting workspace and the new governance add-on.",
        "The customer base grew to 1,140 paying organisations. Enterprise customers, "
        "defined as accounts with more than 250 seats, now represent 58 percent of "
        "recurring revenue compared with 44 percent a year ago.",
        "Platform availability averaged 99.97 percent. The migration of the query engine "
        "to columnar storage reduced the median dashboard load time from 2.8 seconds to "
        "0.9 seconds, and the number of incidents classified as severity one fell from "
        "eleven to three.",
    ):
        _pdf_paragraph(pdf, text)

    pdf.add_page()
    _pdf_heading(pdf, "3. Financial summary")
    _pdf_paragraph(
        pdf,
        "The table below summarises the consolidated results. All figures are in millions "
        "of US dollars and are unaudited at the time of writing; the audited statements "
        "will be published together with the notes to the accounts.",
    )
    pdf.set_font("Helvetica", "", 10)
    rows = [
        ("Metric", "FY2024", "FY2025", "Change"),
        ("Recurring revenue", "36.8", "48.2", "+31%"),
        ("Services revenue", "4.1", "3.6", "-12%"),
        ("Gross margin", "71%", "76%", "+5 pts"),
        ("Operating expenses", "33.0", "38.4", "+16%"),
        ("Free cash flow", "-2.7", "3.9", "positive"),
    ]
    with pdf.table(col_widths=(70, 30, 30, 30), text_align=("LEFT", "RIGHT", "RIGHT", "RIGHT")) as table:
        for row in rows:
            r = table.row()
            for cell in row:
                r.cell(cell)
    pdf.ln(5)
    for text in (
        "Gross margin improved by five points as we renegotiated our cloud commitments and "
        "moved batch workloads to reserved capacity. Operating expenses grew more slowly "
        "than revenue for the second consecutive year, mainly because hiring in general "
        "and administrative functions was held flat.",
        "Services revenue declined as planned. We now route most implementation work to "
        "certified partners, which lowers our own margin on services but shortens the time "
        "customers need before they see value from the platform.",
        "The company ended the year with 61.5 million dollars in cash and no debt. We expect "
        "free cash flow to remain positive throughout the coming year while we continue to "
        "invest in research and development at roughly the current rate.",
    ):
        _pdf_paragraph(pdf, text)

    _pdf_heading(pdf, "4. Customers and markets")
    for text in (
        "Retail remained our largest vertical, but logistics grew fastest. Carriers use the "
        "platform to reconcile shipment events with invoices, a workflow that previously "
        "required spreadsheets maintained by hand. Healthcare customers adopted the "
        "governance add-on to document lineage for regulated reports.",
        "We opened a partner program for regional consultancies and certified fourteen "
        "firms. Partner-sourced pipeline accounted for a quarter of new business, and "
        "partner-led implementations finished on schedule more often than our own.",
    ):
        _pdf_paragraph(pdf, text)

    pdf.add_page()
    _pdf_heading(pdf, "5. Outlook")
    for text in (
        "For the coming year we plan to grow recurring revenue by between 25 and 30 percent. "
        "Our priorities are the same ones our customers keep raising: trustworthy data, "
        "faster answers and fewer tools to operate. The roadmap therefore focuses on "
        "automated data quality checks, natural language questions over governed metrics "
        "and a lighter self-hosted edition for customers with strict residency needs.",
        "We will keep headcount growth below revenue growth, continue to consolidate "
        "internal systems and report progress on reliability every quarter. Risks include "
        "longer enterprise sales cycles, pricing pressure from bundled suites and the "
        "general uncertainty of the macroeconomic environment.",
    ):
        _pdf_paragraph(pdf, text)

    _pdf_heading(pdf, "6. Treasury and payment details")
    _pdf_paragraph(
        pdf,
        "Customer remittances in euros should be made by bank transfer to IBAN "
        f"{p['iban']}, quoting the invoice number as the payment reference. "
        f"The corporate travel credit card {p['card']} is held by {p['robert_name']}, "
        "our treasury manager, who approves all card transactions above the policy limit.",
    )
    _pdf_paragraph(
        pdf,
        f"Questions about remittances can be sent to {p['robert_name']} by email at "
        f"{p['robert_email']} or by phone at {p['robert_phone']}.",
    )
    return _pdf_bytes(pdf)


def _forecast_pdf() -> bytes:
    """A second digital PDF; only its truncated copy is shipped."""
    pdf = _new_pdf("Q3 Forecast Memo", f"{_COMPANY} - Forecast Memo")
    pdf.alias_nb_pages()
    pdf.add_page()
    _pdf_heading(pdf, "Third quarter forecast memo", 16)
    _pdf_paragraph(
        pdf,
        f"The planning team reviewed the model inputs and the {_PHRASES['truncated']} "
        "against three demand scenarios. Bookings assumptions were kept conservative.",
    )
    for i in range(6):
        _pdf_paragraph(
            pdf,
            f"Scenario note {i + 1}: the forecast assumes stable pricing, moderate "
            "seasonality in retail and continued expansion in logistics accounts. "
            "Hiring is phased so that operating expenses track recurring revenue with a "
            "lag of one quarter, and capital expenditure remains limited to laptops and "
            "office equipment for new starters.",
        )
    pdf.add_page()
    _pdf_heading(pdf, "Appendix", 14)
    for i in range(5):
        _pdf_paragraph(
            pdf,
            "Sensitivity analysis shows that a ten percent drop in new business would "
            "reduce the year-end cash balance by less than two million dollars, well "
            "within the liquidity buffer approved by the board.",
        )
    return _pdf_bytes(pdf)


def _payroll_pdf() -> bytes:
    """The plaintext of the encrypted PDF."""
    pdf = _new_pdf("Payroll summary", f"{_COMPANY} - Payroll")
    pdf.add_page()
    _pdf_heading(pdf, "Payroll summary, December", 16)
    _pdf_paragraph(
        pdf,
        f"This document contains the {_PHRASES['encrypted']}. Totals by department are "
        "final and reconciled with the general ledger. Individual statements are "
        "distributed separately through the payroll portal.",
    )
    return _pdf_bytes(pdf)


def _encrypt_pdf(data: bytes, user_password: str, owner_password: str) -> bytes:
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter()
    writer.append(PdfReader(io.BytesIO(data)))
    # RC4-128 keeps output reproducible (AES variants use random IVs/salts).
    writer.encrypt(user_password=user_password, owner_password=owner_password, algorithm="RC4-128")
    buf = io.BytesIO()
    writer.write(buf)
    return buf.getvalue()


def _onboarding_scan_pdf() -> bytes:
    """Scanned (image-only) HR onboarding form full of PII."""
    p = _PII
    pdf = _new_pdf("Onboarding form")
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 18)
    pdf.cell(0, 12, f"{_COMPANY}", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "B", 15)
    pdf.cell(0, 10, "New Employee Onboarding Form", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(6)
    fields = [
        ("Employee name:", p["maria_name"]),
        ("Work email:", p["maria_email"]),
        ("Phone number:", p["maria_phone"]),
        ("Social Security Number:", p["maria_ssn"]),
        ("Department:", "Finance"),
        ("Position:", "Senior Financial Analyst"),
    ]
    for label, value in fields:
        pdf.set_font("Helvetica", "B", 13)
        pdf.cell(62, 10, label)
        # typed-in values use Courier: tesseract reads Helvetica "z@" as "z @",
        # which would break e-mail detection downstream
        pdf.set_font("Courier", "", 13)
        pdf.cell(0, 10, value, new_x="LMARGIN", new_y="NEXT")
    pdf.ln(6)
    pdf.set_font("Helvetica", "B", 13)
    pdf.cell(0, 9, "Equipment checklist", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "", 13)
    for line in (
        "On the first day the new hire confirms that the",
        f"{_PHRASES['scanned']}.",
        "Security training must be completed within the first week.",
        "The manager schedules a check-in meeting after thirty days.",
    ):
        pdf.cell(0, 8, line, new_x="LMARGIN", new_y="NEXT")
    pdf.ln(14)
    pdf.set_font("Helvetica", "", 12)
    pdf.cell(0, 8, "Signature: ______________________      HR approval: __________________",
             new_x="LMARGIN", new_y="NEXT")
    page = _rasterize(_pdf_bytes(pdf))[0]
    return _images_to_pdf([_scanify(page, seed=11)], "scan_0001")


def _expense_mixed_pdf() -> bytes:
    """Mixed PDF: page 1 digital text, page 2 a scanned receipt (image only)."""
    from pypdf import PdfReader, PdfWriter

    p = _PII
    pdf = _new_pdf("Expense report", f"{_COMPANY} - Expense Report")
    pdf.add_page()
    _pdf_heading(pdf, "Expense report: customer workshop trip", 16)
    _pdf_paragraph(
        pdf,
        "This expense report covers travel to a two day customer workshop on forecasting "
        "best practices. Airfare, hotel and meals are itemised below; the scanned hotel "
        "receipt is attached on the following page.",
    )
    for line in ("Airfare: 412.80 USD", "Hotel, two nights: 389.00 USD",
                 "Meals: 96.45 USD", "Ground transport: 58.20 USD", "Total: 956.45 USD"):
        _pdf_paragraph(pdf, line)
    _pdf_paragraph(pdf, "Cost center: customer success. Approval route: department head, then finance.")
    digital = _pdf_bytes(pdf)

    rec = _new_pdf("Receipt")
    rec.add_page()
    rec.set_font("Helvetica", "B", 18)
    rec.cell(0, 12, "Grand Harbor Hotel - Guest Receipt", new_x="LMARGIN", new_y="NEXT")
    rec.ln(4)
    rec.set_font("Helvetica", "", 14)
    for line in (
        f"Guest: {p['kevin_name']}",
        "Room 512, two nights, breakfast included",
        f"Paid by credit card {p['kevin_card']}",
        "Amount charged: 389.00 USD",
        "",
        f"Note: {_PHRASES['mixed']}.",
    ):
        rec.cell(0, 10, line, new_x="LMARGIN", new_y="NEXT")
    scanned = _images_to_pdf([_scanify(_rasterize(_pdf_bytes(rec))[0], seed=23, angle=-0.3)], "scan_0002")

    writer = PdfWriter()
    writer.append(PdfReader(io.BytesIO(digital)))
    writer.append(PdfReader(io.BytesIO(scanned)))
    writer.add_metadata({"/Title": "Expense report", "/Author": _COMPANY})
    buf = io.BytesIO()
    writer.write(buf)
    return buf.getvalue()


def _memo_png() -> bytes:
    """A short whiteboard-style memo rendered as a 300 dpi PNG."""
    from fpdf import FPDF

    pdf = FPDF(format=(152.4, 101.6))  # 6 x 4 inches, landscape
    pdf.set_creation_date(FIXED_DATETIME)
    pdf.set_auto_page_break(False)
    pdf.add_page()
    pdf.set_margins(12, 10, 12)
    pdf.set_xy(12, 10)
    pdf.set_font("Helvetica", "B", 18)
    pdf.cell(0, 11, "MEMO - Platform Team", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "", 13)
    for line in (
        f"From: {_PII['thomas_name']}",
        "To: all engineering staff",
        "Decision from the architecture review:",
        f"we will {_PHRASES['memo']}",
        "once the new vector index passes load tests.",
    ):
        pdf.cell(0, 9, line, new_x="LMARGIN", new_y="NEXT")
    img = _rasterize(_pdf_bytes(pdf))[0]
    buf = io.BytesIO()
    img.save(buf, "PNG", dpi=(_SCAN_DPI, _SCAN_DPI), optimize=False)
    return buf.getvalue()


def _handbook_docx() -> bytes:
    import docx

    p = _PII
    d = docx.Document()
    cp = d.core_properties
    cp.title = "Employee Handbook"
    cp.author = _COMPANY
    cp.last_modified_by = _COMPANY
    cp.created = FIXED_DATETIME.replace(tzinfo=None)
    cp.modified = FIXED_DATETIME.replace(tzinfo=None)
    cp.revision = 3

    d.add_heading(f"{_COMPANY} Employee Handbook", level=1)
    d.add_paragraph(
        "This handbook explains how we work together, what you can expect from the "
        "company and what the company expects from you. It applies to all employees and "
        "is reviewed by the people team every year."
    )
    d.add_heading("Working hours and time off", level=2)
    d.add_paragraph(
        "Our core collaboration window runs from late morning to mid afternoon. Outside "
        f"that window, {_PHRASES['handbook']}, provided customer commitments and on-call "
        "duties are covered."
    )
    d.add_paragraph(
        "Vacation requests are submitted through the HR portal at least two weeks in "
        "advance. Sick leave does not require approval, but please inform your manager as "
        "early as possible so that work can be rearranged."
    )
    d.add_heading("Equipment and security", level=2)
    for item in (
        "Laptops are encrypted and managed centrally; do not disable the endpoint agent.",
        "Use the company password manager for every work account.",
        "Report lost devices to the service desk immediately, day or night.",
    ):
        d.add_paragraph(item, style="List Bullet")
    d.add_heading("Payroll and benefits", level=2)
    d.add_paragraph(
        "Salaries are paid on the last working day of the month. Changes to bank details "
        "or tax withholding take effect in the following payroll run if they are received "
        "before the monthly cut-off."
    )
    d.add_paragraph(
        f"Example of a completed direct deposit request: employee {p['james_name']}, "
        f"social security number {p['james_ssn']}, new account effective next payroll."
    )
    table = d.add_table(rows=1, cols=2)
    table.style = "Table Grid"
    table.rows[0].cells[0].text = "Benefit"
    table.rows[0].cells[1].text = "Eligibility"
    for benefit, elig in (("Health insurance", "From the first day"),
                          ("Learning budget", "After probation"),
                          ("Parental leave", "All employees")):
        cells = table.add_row().cells
        cells[0].text = benefit
        cells[1].text = elig
    d.add_heading("Contacts", level=2)
    d.add_paragraph(
        f"For questions about this handbook contact {p['emily_name']}, people operations "
        f"lead, by email at {p['emily_email']} or by phone at {p['emily_phone']}."
    )
    buf = io.BytesIO()
    d.save(buf)
    return _fixed_zip(buf.getvalue())


def _overview_html() -> str:
    p = _PII
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>About {_COMPANY}</title>
  <style>body {{ font-family: sans-serif; max-width: 48rem; margin: auto; }}</style>
  <script>window.analyticsQueue = window.analyticsQueue || [];</script>
</head>
<body>
  <nav><a href="/">Home</a> | <a href="/product">Product</a> | <a href="/careers">Careers</a></nav>
  <main>
    <h1>About {_COMPANY}</h1>
    <p>{_COMPANY} builds forecasting and reporting software for operations teams. We
    believe in {_PHRASES['html']}: every chart links to the definition of its metric,
    the owner of the underlying data and the checks that ran before it was refreshed.</p>
    <h2>What we do</h2>
    <p>Our platform connects to warehouses, spreadsheets and business applications,
    models the metrics a team cares about and keeps them consistent across every report.
    Customers use it to plan inventory, staff warehouses and reconcile invoices.</p>
    <ul>
      <li>Governed metrics with lineage and ownership</li>
      <li>Forecasting workspaces with scenario planning</li>
      <li>Alerts when data quality checks fail</li>
    </ul>
    <h2>How we work</h2>
    <p>We are a remote-first company with small product teams. Each team owns a part of
    the platform end to end, from design through operations, and publishes a short
    written update every week.</p>
  </main>
  <footer>
    <p>Press contact: {p['daniel_name']}, {p['daniel_email']}, phone {p['daniel_phone']}.</p>
  </footer>
</body>
</html>
"""


def _faq_md() -> str:
    p = _PII
    return f"""# Product FAQ

Answers to the questions we hear most often from trial users of the {_COMPANY}
platform.

## Can I experiment without breaking production dashboards?

Yes. Every account includes a sandbox, and {_PHRASES['faq']} so you can try
new models and connectors freely. Promote a model to production only after review.

## Which data sources are supported?

- Cloud warehouses and lakehouse tables
- Spreadsheets uploaded from a browser
- Business applications through the connector catalog

## How do I load data from the command line?

```bash
northwind load --source warehouse --table orders --incremental
```

## Who do I contact for help?

Open a ticket in the help center, or write to the support lead {p['sarah_name']}
at {p['sarah_email']}. See the [status page](https://status.example.com) for incidents.
"""


def _runbook_txt() -> str:
    p = _PII
    return f"""ON-CALL RUNBOOK: INGESTION SERVICE
===================================

Purpose
-------
This runbook describes how to respond when the ingestion service falls behind or
stops processing documents. Follow the steps in order and record every action in the
incident channel.

Symptoms
--------
- The queue depth alert fires for more than fifteen minutes.
- Dashboards show stale data and the freshness check turns red.
- Worker pods restart repeatedly with out-of-memory errors.

Procedure
---------
1. Acknowledge the page and announce that you are investigating.
2. Check the worker logs for repeated failures on the same document.
3. Move poison documents to the quarantine folder so they stop blocking the queue.
4. If memory errors persist, {_PHRASES['runbook']}, then scale the deployment back up.
5. Confirm that queue depth is decreasing and the freshness check is green again.

Escalation
----------
If the service is not recovering after thirty minutes, escalate to the platform lead
{p['priya_name']} (email {p['priya_email']}, mobile phone {p['priya_phone']}).
"""


def _acquisition_md() -> str:
    p = _PII
    return f"""# Project Lantern: acquisition screening

Board eyes only. This memo contains the {_PHRASES['acquisition']} that corporate
development reviewed this quarter, together with preliminary valuation ranges.

## Screening criteria

- Recurring revenue between five and twenty million dollars
- Complementary data quality or lineage technology
- Engineering teams that could join an existing product group

## Next steps

{p['laura_name']} ({p['laura_email']}) will prepare term sheet drafts for the two
highest ranked candidates before the next board meeting.
"""


# ==========================================================================
# public API
# ==========================================================================
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


# ==========================================================================
# benchmark shares
# ==========================================================================
_DEPTS = ("finance", "hr", "engineering", "sales", "support", "legal")
_USERS = ("alice", "bob", "carol", "dave", "erin", "frank")
_SUBJECTS = (
    "The data platform team", "Our finance group", "The customer success function",
    "The security working group", "Product management", "The people team",
    "The sales operations group", "The infrastructure squad", "Legal counsel",
    "The analytics guild", "The support organisation", "The procurement office",
)
_VERBS = (
    "reviewed", "streamlined", "documented", "automated", "audited", "redesigned",
    "consolidated", "prioritised", "piloted", "benchmarked", "simplified", "migrated",
)
_OBJECTS = (
    "the quarterly forecasting workflow", "the vendor onboarding checklist",
    "the incident response playbook", "the revenue recognition process",
    "the access review procedure", "the data retention schedule",
    "the customer health scoring model", "the release approval gate",
    "the expense reimbursement policy", "the warehouse cost dashboard",
    "the contract renewal pipeline", "the backup restore drill",
)
_QUALIFIERS = (
    "to reduce manual effort", "ahead of the next planning cycle",
    "after feedback from several customers", "with help from an external partner",
    "to close gaps found in the last audit", "without increasing headcount",
    "so that reporting becomes more consistent", "as part of the reliability program",
    "while keeping existing integrations stable", "to shorten approval times",
)
_FOLLOWUPS = (
    "Early results are encouraging, although adoption is uneven across regions.",
    "The change will be rolled out gradually and monitored closely.",
    "Open questions are tracked in the shared planning document.",
    "Stakeholders agreed to revisit the decision after one full cycle.",
    "Several teams volunteered to test the new approach first.",
    "Costs stayed within the approved budget for this initiative.",
    "A short training session will be offered to everyone affected.",
    "Metrics for success were defined before any work started.",
)
_TOPICS = (
    "Status update", "Process review", "Planning notes", "Meeting summary",
    "Policy draft", "Retrospective", "Project brief", "Decision record",
)


def _sentence(rng: random.Random) -> str:
    return (f"{rng.choice(_SUBJECTS)} {rng.choice(_VERBS)} {rng.choice(_OBJECTS)} "
            f"{rng.choice(_QUALIFIERS)}.")


def _paragraph(rng: random.Random) -> str:
    parts = [_sentence(rng) for _ in range(rng.randint(2, 4))]
    parts.insert(rng.randint(1, len(parts)), rng.choice(_FOLLOWUPS))
    return " ".join(parts)


def _share_doc(rng: random.Random, idx: int, ext: str) -> str:
    """A 100-400 word TXT/MD document with a unique reference code."""
    target = rng.randint(100, 360)
    title = f"{rng.choice(_TOPICS)} {idx:05d}: {rng.choice(_OBJECTS)}"
    ref = f"Reference NW-{idx:05d}."
    md = ext == ".md"
    blocks: list[str] = [f"# {title}" if md else title, ref]
    words = len(blocks[0].split()) + 1
    para: list[str] = []
    para_len = rng.randint(3, 5)
    while words < target:
        if not para and md and len(blocks) > 3 and rng.random() < 0.5:
            heading = f"## {rng.choice(_TOPICS)}"
            blocks.append(heading)
            words += len(heading.split())
        sentence = rng.choice(_FOLLOWUPS) if para and rng.random() < 0.25 else _sentence(rng)
        para.append(sentence)
        words += len(sentence.split())
        if len(para) >= para_len:
            blocks.append(" ".join(para))
            para, para_len = [], rng.randint(3, 5)
    if para:
        blocks.append(" ".join(para))
    return "\n\n".join(blocks) + "\n"


def _share_principals(rng: random.Random, dept: str, principals: list[str] | None) -> list[str]:
    if principals:
        return sorted(rng.sample(principals, min(len(principals), rng.randint(1, 2))))
    allow = [f"group:{dept}"]
    r = rng.random()
    if r < 0.15:
        allow.append("everyone")
    elif r < 0.45:
        allow.append(f"user:{rng.choice(_USERS)}")
    return allow


def generate_share(
    out_dir: Path, n: int, *, seed: int = 0, principals: list[str] | None = None
) -> list[Path]:
    """Write ``n`` small TXT/MD documents (+ ``.acl.json`` sidecars) under ``out_dir``.

    Layout: ``<dept>/vol-XXX/batch-XXXX/doc-XXXXX.{txt,md}``, 100 documents per
    leaf folder. ACLs draw 1-2 entries from ``principals`` when given, otherwise
    ``group:<dept>`` plus sometimes ``everyone`` or a ``user:``. Returns the
    document paths (not sidecars) in index order. Deterministic for a given seed.
    """
    out_dir = Path(out_dir)
    rng = random.Random(f"share-{seed}")
    docs: list[Path] = []
    made_dirs: set[Path] = set()
    for i in range(n):
        folder = i // 100
        dept = _DEPTS[folder % len(_DEPTS)]
        d = out_dir / dept / f"vol-{folder // 10:03d}" / f"batch-{folder:04d}"
        if d not in made_dirs:
            d.mkdir(parents=True, exist_ok=True)
            made_dirs.add(d)
        ext = ".md" if rng.random() < 0.35 else ".txt"
        path = d / f"doc-{i:05d}{ext}"
        path.write_text(_share_doc(rng, i, ext), encoding="utf-8")
        acl = _acl_path(path)
        acl.write_text(json.dumps({"allow": _share_principals(rng, dept, principals)}) + "\n",
                       encoding="utf-8")
        os.utime(path, (FIXED_MTIME, FIXED_MTIME))
        os.utime(acl, (FIXED_MTIME, FIXED_MTIME))
        docs.append(path)
    return docs


def modify_share(paths: list[Path], fraction: float, *, seed: int) -> dict[str, list[Path]]:
    """Modify, delete and add ``fraction`` of the documents each (for incremental benchmarks).

    ``k = round(len(existing) * fraction)`` (at least 1 when fraction > 0, at most
    half the documents so modified and deleted stay disjoint). Modified documents
    get an extra paragraph and their mtime bumped by one day; deleted documents
    lose their sidecar too; added documents land in existing folders with a copy
    of a neighbour's sidecar. Returns ``{"modified", "deleted", "added"}``.
    """
    if not 0.0 <= fraction <= 1.0:
        raise ValueError("fraction must be within [0, 1]")
    rng = random.Random(f"modify-{seed}")
    existing = [Path(p) for p in paths if Path(p).exists()]
    k = round(len(existing) * fraction)
    if fraction > 0 and existing:
        k = max(1, k)
    k = min(k, len(existing) // 2)
    chosen = rng.sample(existing, 2 * k)
    modified, deleted = chosen[:k], chosen[k:]
    gone = set(deleted)
    neighbours = [p for p in existing if p not in gone] or existing

    for p in modified:
        text = p.read_text(encoding="utf-8")
        sep = "" if text.endswith("\n") else "\n"
        p.write_text(f"{text}{sep}\nRevision note (seed {seed}): {_paragraph(rng)}\n", encoding="utf-8")
        old = p.stat().st_mtime
        os.utime(p, (old + _DAY, old + _DAY))

    for p in deleted:
        p.unlink()
        _acl_path(p).unlink(missing_ok=True)

    added: list[Path] = []
    for j in range(k):
        near = rng.choice(neighbours)
        ext = near.suffix if near.suffix in (".txt", ".md") else ".txt"
        n = 0
        while True:
            path = near.with_name(f"added-s{seed}-{j:05d}{f'-{n}' if n else ''}{ext}")
            if not path.exists():
                break
            n += 1
        path.write_text(_share_doc(rng, 90000 + j, ext), encoding="utf-8")
        near_acl = _acl_path(near)
        allow = (json.loads(near_acl.read_text(encoding="utf-8")).get("allow", ["everyone"])
                 if near_acl.exists() else ["everyone"])
        _acl_path(path).write_text(json.dumps({"allow": allow}) + "\n", encoding="utf-8")
        t = FIXED_MTIME + _DAY
        _set_mtime([path, _acl_path(path)], t)
        added.append(path)

    return {"modified": modified, "deleted": deleted, "added": added}
