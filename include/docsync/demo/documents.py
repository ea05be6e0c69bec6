"""The non-PDF documents of the demo corpus: a PNG memo, a DOCX handbook, HTML, Markdown
and plain text."""

from __future__ import annotations

import io

from docsync.demo.planted import _PHRASES, _PII
from docsync.demo.render import _COMPANY, _SCAN_DPI, FIXED_DATETIME, _fixed_zip, _pdf_bytes, _rasterize


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
