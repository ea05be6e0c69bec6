"""The docsync web app the Airflow API server mounts at ``/docsync`` (plugins/docsync_plugin.py):
quarantine review and freshness/lag pages, their JSON API, and Prometheus ``/metrics``.

Authentication and authorization are Airflow's: the user comes from the Airflow JWT (the
UI's ``_token`` cookie or an ``Authorization: Bearer`` header) through
``airflow.api_fastapi.core_api.security.get_user``, and the configured auth manager decides
per source (:mod:`docsync.ui.access`): a user sees a source's quarantine entries, freshness
and metrics only with read access to the source's sync DAG, and acts on its entries only
with permission to run that DAG. Entries of other sources answer 404, as if they did not
exist. Airflow is imported on the first request only, so importing this module stays cheap.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from fastapi import Body, Depends, FastAPI, HTTPException, Query, Request, status
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, RedirectResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from docsync import metrics, quarantine, state
from docsync.config import Settings, load_settings
from docsync.ui import access

if TYPE_CHECKING:
    from airflow.api_fastapi.auth.managers.models.base_user import BaseUser
    from sqlalchemy.engine import Engine

    from docsync.ui.charts import Chart

_bearer = HTTPBearer(auto_error=False)
ACTIONS = tuple(quarantine.ACTIONS)


# --- auth: Airflow's user and auth manager -------------------------------------------------


async def airflow_user(request: Request, bearer: HTTPAuthorizationCredentials | None = Depends(_bearer)) -> BaseUser:
    """The authenticated Airflow user (401 without a valid token, 403 for an invalid one).
    What they may see is decided per source (:mod:`docsync.ui.access`)."""
    from airflow.api_fastapi.core_api.security import get_user

    return await get_user(request, None, bearer)


def reviewer(request: Request, user=Depends(airflow_user)) -> BaseUser:
    """An authenticated user sending a reviewer action as JSON (permission: per source)."""
    # JSON only: a cross-site form cannot send it without a CORS preflight (CSRF), and the
    # UI's cookie is SameSite=lax on top of that.
    if request.headers.get("content-type", "").split(";")[0].strip().lower() != "application/json":
        raise HTTPException(status.HTTP_415_UNSUPPORTED_MEDIA_TYPE, "Send the action as JSON, e.g. {\"note\": \"...\"}.")
    return user


# --- helpers ------------------------------------------------------------------------------


def _settings() -> Settings:
    return load_settings()


def _engine(settings: Settings) -> Engine:
    return state.get_engine(settings.state_url)


def _root(request: Request) -> str:
    return request.scope.get("root_path", "").rstrip("/")


def _jsonable(row: dict) -> dict:
    return {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in row.items()}


def _readable(settings: Settings, user: BaseUser) -> list[str]:
    """The sources in the state store the user may see, sorted."""
    names = state.source_names(_engine(settings))
    return sorted(access.readable_sources(user, names, settings))


def _entries(
    settings: Settings, readable: list[str], source: str, status_: str, stage: str, q: str, limit: int
) -> list[dict]:
    return state.quarantine_entries(
        _engine(settings), source=source or None, status=None if status_ == "all" else status_ or None,
        stage=stage or None, path_contains=q, sources=readable, limit=limit,
    )


def _visible_entry(settings: Settings, user: BaseUser, entry_id: int) -> dict:
    """The entry, if it exists and the user may see its source (404 otherwise, so that ids
    of other sources' entries reveal nothing)."""
    entry = state.quarantine_entry(_engine(settings), entry_id)
    if entry is None or not access.readable_sources(user, [entry["source"]], settings):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"No quarantine entry {entry_id}.")
    return entry


def _detail(settings: Settings, user: BaseUser, entry_id: int) -> dict:
    engine = _engine(settings)
    entry = _visible_entry(settings, user, entry_id)
    return {
        "entry": entry,
        "history": state.quarantine_history(engine, entry_id),
        "document": state.document_state(engine, entry["doc_id"]),
    }


def _source_view(settings: Settings, source: str) -> dict:
    engine = _engine(settings)
    latest = metrics.latest_values(engine, source, settings.sync.freshness_slo_s, settings.sync.run_deadline_min * 60)
    age = latest["freshness_s"]
    stamp = latest.get("last_success_timestamp_s")
    return {
        "name": source,
        "freshness_s": None if math.isnan(age) else age,
        "slo_s": settings.sync.freshness_slo_s,
        "breached": bool(latest["freshness_slo_breached"]),
        "last_success": datetime.fromtimestamp(stamp, tz=UTC) if stamp else None,
        "quarantine_open": int(latest.get("quarantine_open", 0)),
        "quarantine_oldest_s": latest.get("quarantine_oldest_age_seconds", 0.0),
        "documents_indexed": int(latest.get("documents_indexed_total", 0)),
        "backlog": int(latest.get("backlog_documents", 0)),
        "backlog_oldest_s": latest.get("backlog_oldest_age_seconds", 0.0),
        "revocation_backlog": int(latest.get("revocation_backlog_documents", 0)),
        "revocation_backlog_oldest_s": latest.get("revocation_backlog_oldest_age_seconds", 0.0),
        "unfinished_runs": int(latest.get("unfinished_runs", 0)),
        "stale_processing": int(latest.get("stale_processing_documents", 0)),
        "stale_embedding": int(latest.get("stale_embedding_documents", 0)),
        "reprocessed": int(latest.get("reprocessed", 0)),
        "propagation": _lag_view(latest, "propagation_lag_seconds"),
        "revocation": _lag_view(latest, "revocation_lag_seconds"),
        "latest": {k: v for k, v in latest.items() if not math.isnan(v)},
        "evaluation": _evaluation_view(latest),
    }


def _evaluation_view(latest: dict[str, float]) -> dict | None:
    """The last retrieval evaluation for the page's card (None before the first)."""
    if "eval_passed" not in latest:
        return None
    return {"passed": bool(latest["eval_passed"]), "recall_at_10": latest.get("eval_recall_at_10"),
            "mrr": latest.get("eval_mrr"), "violations": int(latest.get("eval_acl_violations", 0)),
            "stale": int(latest.get("eval_stale_hits", 0)), "canary": latest.get("canary_hit_rate")}


def _finite(value: float | None) -> float | None:
    return None if value is None or math.isinf(value) else value


def _lag_view(values: dict[str, float], name: str) -> dict:
    """A lag histogram for the page: how many changes, and the bucket bounds of p50 and p95."""
    def bound(q: float) -> str:
        b = metrics.quantile_bound(values, name, q)
        return "–" if b is None else "over 7 days" if math.isinf(b) else f"≤ {_human(b)}"

    return {"count": int(values.get(f"{name}_count", 0)), "p50": bound(0.5), "p95": bound(0.95)}


def _human(seconds: float | None) -> str:
    if seconds is None:
        return "never synced"
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def _charts(settings: Settings, source: str) -> list[Chart]:
    from docsync.ui.charts import line_chart

    runs = [r for r in metrics.history(_engine(settings), source) if r["status"] == "success"]
    labels = [r["finished_at"].strftime("%m-%d %H:%M") for r in runs]

    def series(names: tuple[str, ...], key: str = "{}") -> dict:
        return {n: [r["values"].get(key.format(n)) for r in runs] for n in names}

    return [
        line_chart("Lag per run: propagation p95 (bucket bound), longest revocation", labels, {
            "propagation p95": [_finite(metrics.quantile_bound(r["values"], "propagation_lag_seconds", 0.95)) for r in runs],
            "revocation max": [r["values"].get("revocation_lag_max_s") for r in runs],
        }, " s"),
        line_chart("Documents per run", labels, series(("indexed", "quarantined", "deleted"))),
        line_chart("Chunks embedded and OCR pages per run", labels, series(("chunks_embedded", "ocr_pages"))),
        line_chart("Stage durations (summed over batches)", labels, series(metrics.STAGES, "stage_{}_s"), " s"),
        *_quality_charts(settings, source, runs, labels),
    ]


def _quality_charts(settings: Settings, source: str, runs: list[dict], labels: list[str]) -> list[Chart]:
    """Retrieval quality over time: the evaluations (per evaluation run) and the canary (per sync
    run that changed the index)."""
    from docsync.ui.charts import line_chart

    evals = state.eval_history(_engine(settings), source)
    eval_labels = [e["recorded_at"].strftime("%m-%d %H:%M") for e in evals]

    def finite(values: dict, name: str) -> float | None:
        value = values.get(name)
        return None if value is None or math.isnan(value) else value

    def eval_series(names: dict[str, str]) -> dict:
        return {label: [finite(e["metrics"], name) for e in evals] for label, name in names.items()}

    return [
        line_chart("Retrieval quality per evaluation", eval_labels, eval_series(
            {"recall@10": "eval_recall_at_10", "recall@1": "eval_recall_at_1", "MRR": "eval_mrr",
             "nDCG@10": "eval_ndcg_at_10"})),
        line_chart("ACL violations and stale hits per evaluation (must be 0)", eval_labels, eval_series(
            {"ACL violations": "eval_acl_violations", "stale hits": "eval_stale_hits"})),
        line_chart("Canary hit rate per run that changed the index", labels,
                   {"hit rate": [finite(r["values"], "canary_hit_rate") for r in runs]}),
    ]


# --- the app ------------------------------------------------------------------------------
# Route and dependency parameters are left unannotated where FastAPI would have to resolve
# Airflow's user type, which is imported only on a request.


def create_app() -> FastAPI:
    app = FastAPI(title="docsync", docs_url=None, redoc_url=None, openapi_url=None)

    @app.exception_handler(HTTPException)
    async def _errors(request: Request, exc: HTTPException) -> JSONResponse | RedirectResponse:
        """Pages send an unauthenticated browser to Airflow's login; the API answers JSON."""
        api = request.url.path.startswith(f"{_root(request)}/api") or request.url.path.endswith("/metrics")
        if exc.status_code == status.HTTP_401_UNAUTHORIZED and request.method == "GET" and not api:
            from airflow.api_fastapi.app import get_auth_manager

            return RedirectResponse(get_auth_manager().get_url_login(next_url=str(request.url)), status_code=302)
        return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)

    @app.get("/", include_in_schema=False)
    def index(request: Request) -> RedirectResponse:
        return RedirectResponse(f"{_root(request)}/quarantine", status_code=302)

    # JSON API
    @app.get("/api/quarantine")
    def api_list(source: str = "", status_: str = Query("open", alias="status"), stage: str = "", q: str = "",
                 limit: int = 500, user=Depends(airflow_user)) -> list[dict]:
        settings = _settings()
        rows = _entries(settings, _readable(settings, user), source, status_, stage, q, min(limit, 5000))
        return [_jsonable({k: v for k, v in e.items() if k != "preview"}) for e in rows]

    @app.get("/api/quarantine/{entry_id}")
    def api_show(entry_id: int, user=Depends(airflow_user)) -> dict:
        detail = _detail(_settings(), user, entry_id)
        return _jsonable(detail["entry"]) | {
            "history": [_jsonable(h) for h in detail["history"]],
            "document": _jsonable(detail["document"]) if detail["document"] else None,
        }

    @app.post("/api/quarantine/{entry_id}/{action}")
    def api_act(entry_id: int, action: str, body: dict = Body(default_factory=dict), user=Depends(reviewer)) -> dict:
        if action not in ACTIONS:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"Unknown action {action!r}; use one of {list(ACTIONS)}.")
        note = body.get("note") or ""
        if not isinstance(note, str):
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_ENTITY, "'note' must be a string.")
        settings = _settings()
        entry = _visible_entry(settings, user, entry_id)
        if not access.may_act(user, entry["source"], settings):
            dag_id = access.source_dags(settings).get(entry["source"])
            raise HTTPException(
                status.HTTP_403_FORBIDDEN,
                f"Acting on the docsync quarantine of source {entry['source']!r} needs permission to run DAGs "
                f"in Airflow: its DAG {dag_id}.",
            )
        try:
            entry = quarantine.act(_engine(settings), entry_id, action, actor=user.get_name(), note=note)
        except LookupError as exc:
            raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from exc
        except ValueError as exc:
            raise HTTPException(status.HTTP_400_BAD_REQUEST, str(exc)) from exc
        return _jsonable({k: v for k, v in entry.items() if k != "preview"})

    @app.get("/api/sources")
    def api_sources(user=Depends(airflow_user)) -> list[dict]:
        settings = _settings()
        return [_jsonable(_source_view(settings, s)) for s in _readable(settings, user)]

    @app.get("/metrics", response_class=PlainTextResponse)
    def prometheus(user=Depends(airflow_user)) -> PlainTextResponse:
        settings = _settings()
        return PlainTextResponse(
            metrics.exposition(_engine(settings), settings.sync.freshness_slo_s, _readable(settings, user),
                               settings.sync.run_deadline_min * 60),
            media_type="text/plain; version=0.0.4; charset=utf-8",
        )

    # Pages
    @app.get("/quarantine", response_class=HTMLResponse)
    def page_quarantine(request: Request, source: str = "", status_: str = Query("open", alias="status"),
                        stage: str = "", q: str = "", user=Depends(airflow_user)) -> HTMLResponse:
        from docsync.ui.pages import render

        settings = _settings()
        readable = _readable(settings, user)
        return HTMLResponse(render(
            "quarantine", title="Quarantine", root=_root(request), user=user.get_name(),
            entries=_entries(settings, readable, source, status_, stage, q, 500),
            sources=readable, stages=state.quarantine_stages(_engine(settings), readable),
            f={"source": source, "status": status_, "stage": stage, "q": q},
        ))

    @app.get("/quarantine/{entry_id}", response_class=HTMLResponse)
    def page_entry(request: Request, entry_id: int, user=Depends(airflow_user)) -> HTMLResponse:
        from docsync.ui.pages import render

        settings = _settings()
        detail = _detail(settings, user, entry_id)
        source = detail["entry"]["source"]
        return HTMLResponse(render(
            "detail", title=detail["entry"]["path"], root=_root(request), user=user.get_name(),
            e=detail["entry"], doc=detail["document"], history=detail["history"],
            can_act=access.may_act(user, source, settings), dag_id=access.source_dags(settings).get(source, ""),
            action_url=f"{_root(request)}/api/quarantine/{entry_id}/",
        ))

    @app.get("/monitoring", response_class=HTMLResponse)
    def page_monitoring(request: Request, user=Depends(airflow_user)) -> HTMLResponse:
        from docsync.ui.pages import render

        settings = _settings()
        views = []
        for name in _readable(settings, user):
            view = _source_view(settings, name)
            views.append(view | {"freshness": _human(view["freshness_s"]), "slo": _human(view["slo_s"]),
                                 "ages": {k: _human(view[k]) for k in ("backlog_oldest_s", "revocation_backlog_oldest_s",
                                                                        "quarantine_oldest_s")},
                                 "charts": _charts(settings, name)})
        return HTMLResponse(render("monitoring", title="Freshness, lag and backlog", root=_root(request),
                                   user=user.get_name(), sources=views))

    return app
