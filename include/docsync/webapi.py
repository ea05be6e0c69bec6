"""The docsync web app the Airflow API server mounts at ``/docsync`` (plugins/docsync_plugin.py):
quarantine review and freshness/lag pages, their JSON API, and Prometheus ``/metrics``.

Authentication and authorization are Airflow's: the user comes from the Airflow JWT (the
UI's ``_token`` cookie or an ``Authorization: Bearer`` header) through
``airflow.api_fastapi.core_api.security.get_user``, and the configured auth manager decides:
reading needs read access to DAGs, acting on the quarantine needs permission to run DAGs.
Airflow is imported on the first request only, so importing this module stays cheap.
"""

from __future__ import annotations

import math
from datetime import datetime, timezone

from fastapi import Body, Depends, FastAPI, HTTPException, Query, Request, status
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, RedirectResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from docsync import metrics, quarantine, state
from docsync.config import Settings, load_settings

_bearer = HTTPBearer(auto_error=False)
ACTIONS = tuple(quarantine.ACTIONS)


# --- auth: Airflow's user and auth manager -------------------------------------------------


async def airflow_user(request: Request, bearer: HTTPAuthorizationCredentials | None = Depends(_bearer)):  # noqa: ANN201
    """The authenticated Airflow user (401 without a valid token, 403 for an invalid one)."""
    from airflow.api_fastapi.core_api.security import get_user

    return await get_user(request, None, bearer)


def _authorized(user, method: str) -> bool:  # noqa: ANN001
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity

    entity = None if method == "GET" else DagAccessEntity.RUN
    return get_auth_manager().is_authorized_dag(method=method, access_entity=entity, user=user)


def reader(user=Depends(airflow_user)):  # noqa: ANN001, ANN201
    if not _authorized(user, "GET"):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "Reading the docsync quarantine needs read access to DAGs.")
    return user


def reviewer(request: Request, user=Depends(airflow_user)):  # noqa: ANN001, ANN201
    # JSON only: a cross-site form cannot send it without a CORS preflight (CSRF), and the
    # UI's cookie is SameSite=lax on top of that.
    if request.headers.get("content-type", "").split(";")[0].strip().lower() != "application/json":
        raise HTTPException(status.HTTP_415_UNSUPPORTED_MEDIA_TYPE, "Send the action as JSON, e.g. {\"note\": \"...\"}.")
    if not _authorized(user, "PUT"):
        raise HTTPException(
            status.HTTP_403_FORBIDDEN, "Acting on the docsync quarantine needs permission to run DAGs in Airflow."
        )
    return user


# --- helpers ------------------------------------------------------------------------------


def _settings() -> Settings:
    return load_settings()


def _engine(settings: Settings):  # noqa: ANN202
    return state.get_engine(settings.state_url)


def _root(request: Request) -> str:
    return request.scope.get("root_path", "").rstrip("/")


def _jsonable(row: dict) -> dict:
    return {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in row.items()}


def _entries(settings: Settings, source: str, status_: str, stage: str, q: str, limit: int) -> list[dict]:
    entries = quarantine.list_entries(
        _engine(settings), source=source or None, status=None if status_ == "all" else status_ or None,
        stage=stage or None, limit=limit,
    )
    for entry in entries:
        entry["first_seen"], entry["last_seen"] = state.as_utc(entry["first_seen"]), state.as_utc(entry["last_seen"])
    return [e for e in entries if q.lower() in e["path"].lower()] if q else entries


def _detail(settings: Settings, entry_id: int) -> dict:
    engine = _engine(settings)
    entry = quarantine.get_entry(engine, entry_id)
    if entry is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"No quarantine entry {entry_id}.")
    for key in ("first_seen", "last_seen"):
        entry[key] = state.as_utc(entry[key])
    with engine.connect() as conn:
        doc = conn.execute(
            state.documents.select().with_only_columns(
                state.documents.c.status, state.documents.c.indexed_at, state.documents.c.chunk_count
            ).where(state.documents.c.doc_id == entry["doc_id"])
        ).mappings().first()
    history = [h | {"at": state.as_utc(h["at"])} for h in quarantine.history(engine, entry_id)]
    document = dict(doc) | {"indexed_at": state.as_utc(doc["indexed_at"])} if doc else None
    return {"entry": entry, "history": history, "document": document}


def _source_view(settings: Settings, source: str) -> dict:
    engine = _engine(settings)
    latest = metrics.latest_values(engine, source, settings.freshness_slo_s)
    age = latest["freshness_s"]
    stamp = latest.get("last_success_timestamp_s")
    return {
        "name": source,
        "freshness_s": None if math.isnan(age) else age,
        "slo_s": settings.freshness_slo_s,
        "breached": bool(latest["freshness_slo_breached"]),
        "last_success": datetime.fromtimestamp(stamp, tz=timezone.utc) if stamp else None,
        "quarantine_open": int(latest.get("quarantine_open", 0)),
        "documents_indexed": int(latest.get("documents_indexed_total", 0)),
        "latest": {k: v for k, v in latest.items() if not math.isnan(v)},
    }


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


def _charts(settings: Settings, source: str) -> list:
    from docsync.ui.charts import line_chart
    from docsync.ui.pages import safe_svg

    runs = [r for r in metrics.history(_engine(settings), source) if r["status"] == "success"]
    labels = [r["finished_at"].strftime("%m-%d %H:%M") for r in runs]

    def series(names: tuple[str, ...], key: str = "{}") -> dict:
        return {n: [r["values"].get(key.format(n)) for r in runs] for n in names}

    return [
        safe_svg(line_chart("Lag, modification → indexed", labels, series(("p50", "p95", "max"), "lag_{}_s"), " s")),
        safe_svg(line_chart("Documents per run", labels, series(("indexed", "quarantined", "deleted")))),
        safe_svg(line_chart("Chunks embedded and OCR pages per run", labels, series(("chunks_embedded", "ocr_pages")))),
        safe_svg(line_chart("Stage durations (summed over batches)", labels, series(metrics.STAGES, "stage_{}_s"), " s")),
    ]


# --- the app ------------------------------------------------------------------------------


def create_app() -> FastAPI:
    app = FastAPI(title="docsync", docs_url=None, redoc_url=None, openapi_url=None)

    @app.exception_handler(HTTPException)
    async def _errors(request: Request, exc: HTTPException):  # noqa: ANN202
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
                 limit: int = 500, user=Depends(reader)) -> list[dict]:  # noqa: ANN001
        rows = _entries(_settings(), source, status_, stage, q, min(limit, 5000))
        return [_jsonable({k: v for k, v in e.items() if k != "preview"}) for e in rows]

    @app.get("/api/quarantine/{entry_id}")
    def api_show(entry_id: int, user=Depends(reader)) -> dict:  # noqa: ANN001
        detail = _detail(_settings(), entry_id)
        return _jsonable(detail["entry"]) | {
            "history": [_jsonable(h) for h in detail["history"]],
            "document": _jsonable(detail["document"]) if detail["document"] else None,
        }

    @app.post("/api/quarantine/{entry_id}/{action}")
    def api_act(entry_id: int, action: str, body: dict = Body(default_factory=dict), user=Depends(reviewer)) -> dict:  # noqa: ANN001
        if action not in ACTIONS:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"Unknown action {action!r}; use one of {list(ACTIONS)}.")
        note = body.get("note") or ""
        if not isinstance(note, str):
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_ENTITY, "'note' must be a string.")
        try:
            entry = quarantine.act(_engine(_settings()), entry_id, action, actor=user.get_name(), note=note)
        except LookupError as exc:
            raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from exc
        except ValueError as exc:
            raise HTTPException(status.HTTP_400_BAD_REQUEST, str(exc)) from exc
        return _jsonable({k: v for k, v in entry.items() if k != "preview"})

    @app.get("/api/sources")
    def api_sources(user=Depends(reader)) -> list[dict]:  # noqa: ANN001
        settings = _settings()
        return [_jsonable(_source_view(settings, s)) for s in metrics.sources(_engine(settings))]

    @app.get("/metrics", response_class=PlainTextResponse)
    def prometheus(user=Depends(reader)) -> PlainTextResponse:  # noqa: ANN001
        settings = _settings()
        return PlainTextResponse(
            metrics.exposition(_engine(settings), settings.freshness_slo_s),
            media_type="text/plain; version=0.0.4; charset=utf-8",
        )

    # Pages
    @app.get("/quarantine", response_class=HTMLResponse)
    def page_quarantine(request: Request, source: str = "", status_: str = Query("open", alias="status"),
                        stage: str = "", q: str = "", user=Depends(reader)) -> HTMLResponse:  # noqa: ANN001
        from docsync.ui.pages import render

        settings = _settings()
        engine = _engine(settings)
        everything = quarantine.list_entries(engine, status=None, limit=5000)
        return HTMLResponse(render(
            "quarantine", title="Quarantine", root=_root(request), user=user.get_name(),
            entries=_entries(settings, source, status_, stage, q, 500),
            sources=metrics.sources(engine), stages=sorted({e["stage"] for e in everything}),
            f={"source": source, "status": status_, "stage": stage, "q": q},
        ))

    @app.get("/quarantine/{entry_id}", response_class=HTMLResponse)
    def page_entry(request: Request, entry_id: int, user=Depends(reader)) -> HTMLResponse:  # noqa: ANN001
        from docsync.ui.pages import render

        detail = _detail(_settings(), entry_id)
        return HTMLResponse(render(
            "detail", title=detail["entry"]["path"], root=_root(request), user=user.get_name(),
            e=detail["entry"], doc=detail["document"], history=detail["history"],
            can_act=_authorized(user, "PUT"), action_url=f"{_root(request)}/api/quarantine/{entry_id}/",
        ))

    @app.get("/monitoring", response_class=HTMLResponse)
    def page_monitoring(request: Request, user=Depends(reader)) -> HTMLResponse:  # noqa: ANN001
        from docsync.ui.pages import render

        settings = _settings()
        views = []
        for name in metrics.sources(_engine(settings)):
            view = _source_view(settings, name)
            views.append(view | {"freshness": _human(view["freshness_s"]), "slo": _human(view["slo_s"]),
                                 "charts": _charts(settings, name)})
        return HTMLResponse(render("monitoring", title="Freshness and lag", root=_root(request),
                                   user=user.get_name(), sources=views))

    return app
