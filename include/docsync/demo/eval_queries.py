"""The labelled evaluation set of the demo corpus (``docsync demo-corpus --eval-set``; shipped as
``demo/eval_set.jsonl``, README "Retrieval evaluation" says how the labels were made).

Every query was written by reading one document of the corpus (as indexed: after OCR and
anonymisation) and asking for one of its facts in other words, the way an employee would ask;
its label is that document (two for the few questions two documents answer). Queries are asked
as a persona that may read the document, rotating over its readers. The must-not-find queries
ask for a fact of a document as a persona that may NOT read it: the expected result is that the
document never appears. tests/test_demo_eval_set.py checks that no query shares a 5-word run
with its document's text.
"""

from __future__ import annotations

FIN = ("user:fiona", "group:finance")
HR = ("user:hannah", "group:hr")
ENG = ("user:erik", "group:engineering")
ALICE = ("user:alice",)
EXEC = ("user:olivia", "group:finance", "group:hr", "group:engineering")
GUEST = ("user:bob",)

ANNUAL = "finance/annual-report-2025.pdf"
EXPENSE = "finance/expenses/expense-report-mixed.pdf"
HANDBOOK = "hr/employee-handbook.docx"
SCAN = "hr/scans/onboarding-form-scan.pdf"
RUNBOOK = "engineering/runbooks/oncall-runbook.txt"
MEMO = "engineering/whiteboard-memo.png"
OVERVIEW = "public/company-overview.html"
FAQ = "public/product-faq.md"
ACQUISITION = "finance/acquisition-memo.md"  # quarantined: nobody may read it

# path -> (document type tag, the personas that may read it)
DOCUMENTS: dict[str, tuple[str, tuple[tuple[str, ...], ...]]] = {
    ANNUAL: ("pdf", (FIN, EXEC)),
    EXPENSE: ("mixed_pdf", (FIN, ALICE, EXEC)),
    HANDBOOK: ("docx", (HR, EXEC)),
    SCAN: ("scanned_pdf", (HR, EXEC)),
    RUNBOOK: ("txt", (ENG, ALICE, EXEC)),
    MEMO: ("image", (ENG, EXEC)),
    OVERVIEW: ("html", (GUEST, ENG, HR, FIN, EXEC)),
    FAQ: ("markdown", (GUEST, ALICE, FIN, HR, EXEC)),
}

# path -> [(query, expected passage or "")]; the passage, where given, is text of the indexed chunk
POSITIVE: dict[str, list[tuple[str, str]]] = {
    ANNUAL: [
        ("how much did ARR increase in fiscal 2025", "48.2 million dollars"),
        ("annual recurring revenue figure for FY2025", "48.2"),
        ("what share of recurring revenue comes from enterprise accounts", "58 percent"),
        ("net revenue retention percentage this year", "124 percent"),
        ("how many paying customer organisations are there", "1,140"),
        ("platform uptime averaged over the year", "99.97 percent"),
        ("dashboard load time after the switch to a columnar query engine", "0.9 seconds"),
        ("number of sev-1 incidents compared with the year before", "eleven to three"),
        ("cash on hand at year end and any borrowings", "61.5 million dollars"),
        ("free cash flow result for FY2025", ""),
        ("why did gross margin go up by five points", "reserved capacity"),
        ("gross margin in FY2024 versus FY2025", ""),
        ("did opex grow faster or slower than revenue", ""),
        ("why is professional services revenue shrinking", "certified partners"),
        ("which industry is our biggest and which is growing quickest", "logistics grew fastest"),
        ("how do freight carriers match shipment events against invoices", ""),
        ("programme for regional consulting partners", ""),
        ("revenue growth target for the next fiscal year", "25 and 30 percent"),
        ("roadmap priorities for next year", "automated data quality checks"),
        ("risks to the outlook like long enterprise sales cycles", ""),
        ("how many support tickets did the team answer and how fast", "forty thousand tickets"),
        ("largest deal ever signed by the sales team", ""),
        ("first clean audit after moving to quarterly closing", ""),
        ("which experimental connectors were paused and which module was retired", ""),
        ("how much engineering capacity was freed up for reliability", "a fifth of engineering"),
        ("customer churn dropped thanks to the redesigned onboarding", ""),
        ("expansion revenue from existing customers versus new logos", ""),
        ("how should customers pay invoices in euros by wire", ""),
        ("who signs off corporate card spending over the policy limit", ""),
        ("healthcare clients using the governance add-on for lineage of regulated reporting", ""),
        ("are these financial figures audited yet", "unaudited"),
        ("self-hosted edition for strict data residency customers", ""),
        ("plans to let users ask questions in plain language over governed metrics", ""),
        ("will headcount grow faster than revenue", ""),
        ("recurring revenue in FY2024 in millions", "36.8"),
        ("services revenue FY2024 and FY2025 numbers", ""),
        ("what portion of new business was sourced by partners", "a quarter of new business"),
        ("leadership letter saying clients stopped seeing analytics as a hobby", ""),
        ("renegotiated cloud contracts and batch jobs on reserved instances", ""),
        ("operating expenses FY2025 in millions", "38.4"),
        ("how many consultancies were certified in the partner program", ""),
        ("median first response time for support", ""),
    ],
    EXPENSE: [
        ("flight cost for the customer workshop trip", "412.80"),
        ("total amount claimed on the travel expense report", "956.45"),
        ("how much was spent on food during the workshop trip", "96.45"),
        ("taxi and local transport costs for the trip", "58.20"),
        ("which cost centre pays for the workshop travel", "customer success"),
        ("who has to approve this expense claim", "department head"),
        ("two-day forecasting workshop travel costs", ""),
        ("receipt issued by the Grand Harbor hotel", "Grand Harbor"),
        ("which room did the guest stay in at the hotel", "Room 512"),
        ("was breakfast part of the hotel booking", "breakfast included"),
        ("how much did the hotel charge to the card", "389.00"),
        ("who put a stamp on the hotel receipt", "travel desk"),
        ("is a scan of the hotel bill attached to the expense claim", ""),
        ("how many nights was the hotel stay and what did it cost", ""),
        ("expense claim for a customer forecasting workshop", ""),
        ("hotel bill for room 512", "Room 512"),
        ("airfare of 412.80 dollars", ""),
        ("itemised travel costs: airfare, hotel and meals", ""),
        ("amount charged for two nights including breakfast", ""),
        ("receipt from the hotel stay during the workshop", ""),
        ("travel claim approval by department head then finance", ""),
    ],
    HANDBOOK: [
        ("what are the core collaboration hours", ""),
        ("can I work flexible times outside the core window", "flexible hours"),
        ("how far ahead must a vacation request be filed", "two weeks"),
        ("where do I submit a holiday request", "HR portal"),
        ("do sick days need to be approved", "Sick leave does not require approval"),
        ("what should I do if my laptop gets lost", "service desk"),
        ("may I switch off the endpoint security agent on my laptop", "endpoint agent"),
        ("is a password manager mandatory for work accounts", "password manager"),
        ("on which day of the month are salaries paid", "last working day"),
        ("deadline for changing my bank account details before payroll", "cut-off"),
        ("when do changes to tax withholding take effect", ""),
        ("example of a filled in direct deposit form", "direct deposit"),
        ("from when am I covered by health insurance", "From the first day"),
        ("who can use the learning budget", "After probation"),
        ("who is entitled to parental leave", ""),
        ("who reviews the employee handbook and how often", "every year"),
        ("people operations contact for handbook questions", "people operations lead"),
        ("benefits and eligibility table", ""),
        ("must on-call duties be covered when I work flexible hours", ""),
        ("what does the company expect from its employees", ""),
        ("should I tell my manager early when I am ill", ""),
        ("report a stolen device outside office hours", ""),
        ("are company laptops encrypted", ""),
        ("policy on work schedules and leave", ""),
        ("submit vacation through the portal two weeks early", ""),
        ("salary payment date and payroll cut-off", ""),
    ],
    SCAN: [
        ("new employee onboarding form", ""),
        ("equipment checklist for a new hire: laptop and badge", "badge"),
        ("when must new starters complete security training", "first week"),
        ("30-day check-in meeting between manager and new hire", "thirty days"),
        ("what position is the new employee hired for", "Senior Financial Analyst"),
        ("which department is the new hire joining", "Finance"),
        ("senior financial analyst onboarding paperwork", ""),
        ("HR approval signature on the onboarding form", "HR approval"),
        ("new hire confirms receiving equipment on day one", ""),
        ("scanned onboarding document for a finance analyst", ""),
        ("onboarding form fields: name, work email, phone", ""),
        ("security training deadline for new employees", ""),
        ("manager check-in after the first month", ""),
        ("did the new analyst get a laptop and an access badge", ""),
        ("form a new hire fills in on the first day", ""),
        ("social security number field on the onboarding form", ""),
        ("first week security course for newcomers", ""),
    ],
    RUNBOOK: [
        ("what to do when ingestion falls behind", ""),
        ("queue depth alert firing for over 15 minutes", "fifteen minutes"),
        ("worker pods keep restarting with OOM errors", "out-of-memory"),
        ("freshness check is red and dashboards are stale", ""),
        ("how to deal with poison documents that block the queue", "quarantine folder"),
        ("first step when paged about the ingestion service", "Acknowledge the page"),
        ("where do I log actions taken during an incident", "incident channel"),
        ("escalation if the service has not recovered after half an hour", "thirty minutes"),
        ("who is the escalation contact for ingestion incidents", "platform lead"),
        ("should I empty the queue prior to restarting worker processes", "drain the ingestion queue"),
        ("scale the deployment up again after memory problems", ""),
        ("how do I confirm the ingestion service has recovered", ""),
        ("check worker logs for the same document failing again and again", ""),
        ("on-call procedure for the ingestion service", ""),
        ("ingestion service stopped processing documents", ""),
        ("announce in the channel that I'm investigating the page", ""),
        ("symptoms of an ingestion backlog", ""),
        ("memory errors persist what next", ""),
        ("ingestion incident runbook steps in order", ""),
        ("out of memory crashes of ingestion workers", ""),
        ("moving stuck documents aside so the queue keeps flowing", ""),
        ("queue depth decreasing and freshness green again", ""),
    ],
    MEMO: [
        ("architecture review decision on the old search cluster", "legacy search cluster"),
        ("when will the legacy search cluster be shut down", "load tests"),
        ("platform team memo to engineering", "Platform Team"),
        ("new vector index load testing before decommissioning old search", ""),
        ("whiteboard note from the platform team", ""),
        ("plan to replace legacy search with the new vector index", ""),
        ("memo addressed to every engineer", ""),
        ("what condition must the new vector index meet first", ""),
        ("legacy search retirement plan", ""),
        ("outcome of the architecture review", ""),
        ("are we decommissioning the old search cluster", ""),
        ("who was the platform memo sent to", "all engineering staff"),
        ("vector index must pass load tests", ""),
    ],
    OVERVIEW: [
        ("what does Northwind Analytics build", "forecasting and reporting software"),
        ("company belief in self-explaining dashboards", ""),
        ("charts link to metric definitions and data owners", ""),
        ("which systems does the platform connect to", "warehouses, spreadsheets"),
        ("what do customers use the platform for", "plan inventory"),
        ("metrics governed with lineage and ownership info", ""),
        ("forecasting workspace with scenarios", ""),
        ("alerts on failed data quality checks", ""),
        ("is the company remote first", "remote-first"),
        ("how are product teams organised", ""),
        ("do teams publish weekly written updates", ""),
        ("integration with business applications", "business applications"),
        ("about the company", ""),
        ("software for operations teams", ""),
        ("keeps metrics consistent across reports", ""),
        ("staffing warehouses and reconciling invoices with the platform", ""),
        ("does each team run its slice of the product from design to operations", ""),
        ("does every chart show who owns the underlying data", ""),
        ("what checks run before a chart is refreshed", ""),
    ],
    FAQ: [
        ("can I try things without breaking production dashboards", "sandbox"),
        ("does the sandbox reset on its own", "resets automatically"),
        ("which data sources can I connect", ""),
        ("can I upload spreadsheets from the browser", "Spreadsheets uploaded"),
        ("are lakehouse tables supported", "lakehouse"),
        ("command to load data incrementally from the CLI", "--incremental"),
        ("northwind load command for the orders table", "northwind load"),
        ("how do I get help, open a support ticket", "help center"),
        ("where is the service status page for incidents", "status page"),
        ("when may a model be promoted to production", "only after review"),
        ("connector catalog for business applications", "connector catalog"),
        ("frequently asked questions from trial users", ""),
        ("who leads customer support", "support lead"),
        ("try new connectors freely in a sandbox", ""),
        ("cloud warehouse support", ""),
        ("load the orders table from a warehouse on the command line", ""),
        ("support email for trial users", ""),
        ("experimenting with new models safely", ""),
        ("what happens to my sandbox data", ""),
    ],
}

# Questions two documents answer (asked as a persona that may read both).
SHARED: list[tuple[str, tuple[str, ...], tuple[str, ...]]] = [
    ("governance and lineage of metrics", (ANNUAL, OVERVIEW), EXEC),
    ("reconciling invoices with the platform", (ANNUAL, OVERVIEW), FIN),
    ("laptop rules for employees and new hires", (HANDBOOK, SCAN), HR),
    ("forecasting workspace", (ANNUAL, OVERVIEW), EXEC),
    ("data quality checks", (ANNUAL, OVERVIEW), FIN),
    ("security requirements for staff laptops and training", (HANDBOOK, SCAN), EXEC),
]

# Must-not-find: (query, persona, the document that answers it and the persona may not read).
FORBIDDEN: list[tuple[str, tuple[str, ...], str]] = [
    ("how much did ARR increase in fiscal 2025", ENG, ANNUAL),
    ("net revenue retention percentage this year", ALICE, ANNUAL),
    ("cash on hand at year end", HR, ANNUAL),
    ("who signs off corporate card spending over the policy limit", GUEST, ANNUAL),
    ("revenue growth target for the next fiscal year", ENG, ANNUAL),
    ("gross margin in FY2024 versus FY2025", HR, ANNUAL),
    ("how many paying customer organisations are there", GUEST, ANNUAL),
    ("bank transfer details for euro remittances", ALICE, ANNUAL),
    ("which room did the guest stay in at the hotel", ENG, EXPENSE),
    ("total amount claimed on the travel expense report", HR, EXPENSE),
    ("flight cost for the customer workshop trip", GUEST, EXPENSE),
    ("who put a stamp on the hotel receipt", ENG, EXPENSE),
    ("how far ahead must a vacation request be filed", GUEST, HANDBOOK),
    ("on which day of the month are salaries paid", ENG, HANDBOOK),
    ("who is entitled to parental leave", FIN, HANDBOOK),
    ("deadline for changing my bank account details before payroll", ALICE, HANDBOOK),
    ("may I switch off the endpoint security agent on my laptop", ENG, HANDBOOK),
    ("from when am I covered by health insurance", GUEST, HANDBOOK),
    ("what position is the new employee hired for", FIN, SCAN),
    ("when must new starters complete security training", ENG, SCAN),
    ("new employee onboarding form", GUEST, SCAN),
    ("30-day check-in meeting between manager and new hire", ALICE, SCAN),
    ("queue depth alert firing for over 15 minutes", HR, RUNBOOK),
    ("who is the escalation contact for ingestion incidents", GUEST, RUNBOOK),
    ("how to deal with poison documents that block the queue", FIN, RUNBOOK),
    ("worker pods keep restarting with OOM errors", HR, RUNBOOK),
    ("should I empty the queue prior to restarting worker processes", GUEST, RUNBOOK),
    ("when will the legacy search cluster be shut down", GUEST, MEMO),
    ("architecture review decision on the old search cluster", FIN, MEMO),
    ("platform team memo to engineering", ALICE, MEMO),
    ("plan to replace legacy search with the new vector index", HR, MEMO),
    ("shortlist of companies we might acquire", EXEC, ACQUISITION),
    ("which acquisition candidates did corporate development screen", FIN, ACQUISITION),
    ("draft term sheets for the top ranked takeover targets", EXEC, ACQUISITION),
    ("Project Lantern board memo", GUEST, ACQUISITION),
    ("valuation ranges of acquisition targets", FIN, ACQUISITION),
    ("screening criteria for companies to buy", ENG, ACQUISITION),
    ("recurring revenue range we look for in takeover candidates", HR, ACQUISITION),
    ("treasury manager card approvals", ENG, ANNUAL),
    ("severity one incidents this year", ALICE, ANNUAL),
]


def demo_eval_queries() -> list:
    """The demo set as :class:`~docsync.evaluation.eval_set.EvalQuery` records, in a fixed order."""
    from docsync.evaluation.eval_set import EvalQuery

    queries = []
    for path, items in POSITIVE.items():
        tag, readers = DOCUMENTS[path]
        stem = path.rsplit("/", 1)[-1].split(".")[0]
        for n, (text, passage) in enumerate(items, start=1):
            queries.append(EvalQuery(f"{stem}-{n:02d}", text, readers[n % len(readers)], (path,), (), passage, (tag,)))
    for n, (text, paths, persona) in enumerate(SHARED, start=1):
        tags = tuple(sorted({DOCUMENTS[p][0] for p in paths}))
        queries.append(EvalQuery(f"shared-{n:02d}", text, persona, paths, (), "", ("multi", *tags)))
    for n, (text, persona, path) in enumerate(FORBIDDEN, start=1):
        tag = DOCUMENTS[path][0] if path in DOCUMENTS else "quarantined"
        queries.append(EvalQuery(f"denied-{n:02d}", text, persona, (), (path,), "", ("must_not_find", tag)))
    return queries
