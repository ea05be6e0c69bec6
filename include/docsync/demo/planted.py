"""The planted content of the demo corpus: PII literals that must never reach the index
and distinctive PII-free phrases that must (or, for quarantined documents, must not) be
searchable."""

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
