"""HTML of the plugin pages (Jinja2, autoescaped; the quarantine preview is anonymized text
and is rendered as text, never as markup)."""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache

from markupsafe import Markup

STATUSES = ("open", "retry", "released", "dismissed", "resolved", "all")

BASE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{ title }} · docsync</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:16px;color:#1a202c;font-size:14px}
nav a{margin-right:14px}a{color:#2b6cb0}h1{font-size:20px}h2{font-size:16px;margin-top:24px}
table{border-collapse:collapse;width:100%}th,td{border-bottom:1px solid #e2e8f0;padding:6px 8px;text-align:left;vertical-align:top}
th{background:#f7fafc}pre{background:#f7fafc;border:1px solid #e2e8f0;padding:10px;white-space:pre-wrap;max-height:420px;overflow:auto}
.badge{display:inline-block;border-radius:8px;padding:1px 8px;font-size:12px;background:#edf2f7}
.open{background:#fed7d7}.retry,.released{background:#feebc8}.resolved{background:#c6f6d5}.dismissed{background:#e2e8f0}
.ok{color:#276749}.bad{color:#c53030;font-weight:bold}form.filters{margin:10px 0}form.filters *{margin-right:6px}
.cards{display:flex;flex-wrap:wrap;gap:12px}.card{border:1px solid #e2e8f0;border-radius:6px;padding:10px 14px;min-width:150px}
.card b{display:block;font-size:18px}textarea{width:100%;max-width:640px}button{margin:6px 8px 6px 0;padding:5px 12px}
.chart{margin:6px 12px 6px 0;border:1px solid #e2e8f0}.chart-title{font-weight:bold;font-size:12px}
.axis,.legend{font-size:11px;fill:#4a5568}.grid{stroke:#e2e8f0}.chart-empty{fill:#718096;font-size:12px}
#message{margin:8px 0;font-weight:bold}
</style></head><body>
<nav><a href="{{ root }}/quarantine">Quarantine</a><a href="{{ root }}/monitoring">Freshness &amp; lag</a>
<span style="float:right">signed in as <b id="user">{{ user }}</b></span></nav>
{% block body %}{% endblock %}
</body></html>"""

QUARANTINE = """{% extends "base" %}{% block body %}
<h1>Quarantined documents</h1>
<form class="filters" method="get" action="{{ root }}/quarantine">
 <label>Source <select name="source"><option value="">all</option>
 {% for s in sources %}<option{% if s == f.source %} selected{% endif %}>{{ s }}</option>{% endfor %}</select></label>
 <label>Status <select name="status">{% for s in statuses %}<option{% if s == f.status %} selected{% endif %}>{{ s }}</option>{% endfor %}</select></label>
 <label>Stage <select name="stage"><option value="">all</option>
 {% for s in stages %}<option{% if s == f.stage %} selected{% endif %}>{{ s }}</option>{% endfor %}</select></label>
 <label>Path contains <input name="q" value="{{ f.q }}"></label>
 <button type="submit">Filter</button>
</form>
<table id="entries"><thead><tr><th>#</th><th>Source</th><th>Path</th><th>Stage</th><th>Reason</th><th>Status</th>
<th>Attempts</th><th>First seen</th><th>Last seen</th></tr></thead><tbody>
{% for e in entries %}<tr data-id="{{ e.id }}"><td>{{ e.id }}</td><td>{{ e.source }}</td>
<td><a href="{{ root }}/quarantine/{{ e.id }}">{{ e.path }}</a></td><td>{{ e.stage }}</td><td>{{ e.reason }}</td>
<td><span class="badge {{ e.status }}">{{ e.status }}</span></td><td>{{ e.attempts }}</td>
<td>{{ e.first_seen|ts }}</td><td>{{ e.last_seen|ts }}</td></tr>
{% else %}<tr><td colspan="9">No quarantine entries match.</td></tr>{% endfor %}
</tbody></table>
<p>{{ entries|length }} entr{{ 'y' if entries|length == 1 else 'ies' }}. Retried and released documents are
re-processed at the next sync run of their source.</p>
{% endblock %}"""

DETAIL = """{% extends "base" %}{% block body %}
<p><a href="{{ root }}/quarantine">&larr; all quarantined documents</a></p>
<h1>{{ e.path }}</h1>
<table><tbody>
<tr><th>Entry</th><td>#{{ e.id }}</td></tr><tr><th>Source</th><td>{{ e.source }}</td></tr>
<tr><th>Status</th><td><span id="status" class="badge {{ e.status }}">{{ e.status }}</span></td></tr>
<tr><th>Stage</th><td>{{ e.stage }}</td></tr><tr><th>Reason</th><td id="reason">{{ e.reason }}</td></tr>
<tr><th>Attempts</th><td>{{ e.attempts }}</td></tr>
<tr><th>First seen</th><td>{{ e.first_seen|ts }}</td></tr><tr><th>Last seen</th><td>{{ e.last_seen|ts }}</td></tr>
<tr><th>Document</th><td id="document">{% if doc %}{{ doc.status }}{% if doc.indexed_at %} at {{ doc.indexed_at|ts }},
 {{ doc.chunk_count }} chunks{% endif %}{% else %}not in the state store (deleted from the source){% endif %}</td></tr>
</tbody></table>
<h2>Error</h2><pre id="error">{{ e.error or "(none recorded)" }}</pre>
<h2>Preview (anonymized)</h2>
{% if e.preview %}<pre id="preview">{{ e.preview }}</pre>
{% else %}<p id="preview">No preview: the document failed before its text was extracted and anonymized.</p>{% endif %}
<h2>Review</h2>
{% if can_act and e.status != "resolved" %}
<p>Retry re-processes the document at the next run. Release re-processes it with document-quality checks
overridden (access and PII checks never are) and needs a note. Dismiss leaves it out until it changes.</p>
<textarea id="note" rows="3" placeholder="Note (required for release): why may this document be indexed?"></textarea><br>
<button id="retry" data-action="retry">Retry</button><button id="release" data-action="release">Release</button>
<button id="dismiss" data-action="dismiss">Dismiss</button>
<div id="message"></div>
<script>
document.querySelectorAll("button[data-action]").forEach(function (b) {
  b.addEventListener("click", async function () {
    var msg = document.getElementById("message"), note = document.getElementById("note").value;
    if (b.dataset.action === "release" && !note.trim()) { msg.textContent = "Release needs a note."; return; }
    var r = await fetch({{ action_url|tojson }} + b.dataset.action, {method: "POST", credentials: "same-origin",
      headers: {"Content-Type": "application/json"}, body: JSON.stringify({note: note})});
    var body = await r.json().catch(function () { return {}; });
    if (r.ok) { msg.textContent = "Done: " + body.status + ". Reloading…"; location.reload(); }
    else { msg.textContent = "Failed (" + r.status + "): " + (body.detail || r.statusText); }
  });
});
</script>
{% elif not can_act %}<p>Your Airflow role may view but not act on the quarantine (acting needs permission to run DAGs).</p>
{% else %}<p>Resolved: the document was indexed or removed from the source.</p>{% endif %}
<h2>History</h2>
<table id="history"><thead><tr><th>When</th><th>Action</th><th>Who</th><th>Note</th></tr></thead><tbody>
{% for h in history %}<tr><td>{{ h.at|ts }}</td><td>{{ h.action }}</td><td>{{ h.actor }}</td><td>{{ h.note }}</td></tr>
{% else %}<tr><td colspan="4">No reviewer action yet.</td></tr>{% endfor %}
</tbody></table>
{% endblock %}"""

MONITORING = """{% extends "base" %}{% block body %}
<h1>Freshness and lag</h1>
{% for s in sources %}
<section class="source" id="source-{{ s.name }}"><h2>Source {{ s.name }}</h2>
<div class="cards">
 <div class="card">Freshness<b class="{{ 'bad' if s.breached else 'ok' }}">{{ s.freshness }}</b>
  SLO {{ s.slo }}{% if s.breached %} — breached{% endif %}</div>
 <div class="card">Last success<b>{{ s.last_success|ts }}</b></div>
 <div class="card">Open quarantine<b>{{ s.quarantine_open }}</b><a href="{{ root }}/quarantine?source={{ s.name }}">review</a></div>
 <div class="card">Indexed documents<b>{{ s.documents_indexed }}</b></div>
</div>
{% for chart in s.charts %}{{ chart }}{% endfor %}
</section>
{% else %}<p>No sync has run yet.</p>{% endfor %}
{% endblock %}"""


def _ts(value: object) -> str:
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S UTC")
    return "—" if value in (None, "") else str(value)


@lru_cache(maxsize=1)
def _env():  # noqa: ANN202
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.DictLoader({"base": BASE, "quarantine": QUARANTINE, "detail": DETAIL, "monitoring": MONITORING}),
        autoescape=True,
    )
    env.filters["ts"] = _ts
    return env


def render(template: str, **context: object) -> str:
    return _env().get_template(template).render(statuses=STATUSES, **context)


def safe_svg(svg: str) -> Markup:
    """Charts are built from escaped text by :mod:`docsync.ui.charts`."""
    return Markup(svg)
