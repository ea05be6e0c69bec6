"""The PDF documents of the demo corpus: digital, encrypted, scanned (image-only) and
mixed (digital page plus scanned page)."""

from __future__ import annotations

import io

from docsync.demo.planted import _PHRASES, _PII
from docsync.demo.render import (
    _COMPANY,
    _images_to_pdf,
    _new_pdf,
    _pdf_bytes,
    _pdf_heading,
    _pdf_paragraph,
    _rasterize,
    _scanify,
)


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
    for _ in range(5):
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
