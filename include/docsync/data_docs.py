"""GX Data Docs for every run: the document and chunk validation results of each batch,
as a static HTML site per source at ``$DOCSYNC_HOME/data_docs/<source>/site/index.html``
(pages grouped by run; the GX project with the stored results is ``.../<source>/gx``).

Data Docs never show a value that may be PII: unexpected values are kept only for
columns of ids and numbers (at most ``MAX_VALUES`` of them), never for chunk text.
Each batch stores the results of its validations (:func:`record`, called by the process
step with what :mod:`docsync.validate` returned); the run's pages and the index are
rendered once, when the run is finalized (:func:`build`). Only the newest
``DOCSYNC_DATA_DOCS_KEEP_RUNS`` runs are kept; ``DOCSYNC_DATA_DOCS=0`` turns it all off.
Data Docs never fail a batch or a run: errors are logged.
"""

from __future__ import annotations

import contextlib
import copy
import fcntl
import logging
import shutil
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from docsync.storage import safe_name

if TYPE_CHECKING:
    from great_expectations.core import ExpectationSuiteValidationResult
    from great_expectations.data_context import FileDataContext
    from great_expectations.data_context.types.resource_identifiers import ValidationResultIdentifier

    from docsync.config import Settings
    from docsync.validate import Validation

log = logging.getLogger(__name__)

SITE = "docsync"
MAX_VALUES = 10
# Columns whose unexpected values may be shown: ids, types and numbers, never text.
SAFE_COLUMNS = frozenset(
    {
        "doc_id", "point_id", "mime", "text_length", "replacement_ratio", "ocr_confidence",
        "allowed_count", "pii_rescan_hits", "token_count", "markup_ratio",
    }
)
WITHHELD = "[value withheld: may contain PII]"
_LIST_KEYS = ("partial_unexpected_list", "partial_unexpected_counts", "partial_unexpected_index_list")
_DROP_KEYS = ("unexpected_list", "unexpected_index_list", "unexpected_index_query", "details")


def site_dir(settings: Settings, source: str) -> Path:
    return Path(settings.home) / "data_docs" / safe_name(source)


def index_page(settings: Settings, source: str) -> Path:
    return site_dir(settings, source) / "site" / "index.html"


def _clean_index_entry(entry: Any, keep_value: bool) -> Any:
    if not isinstance(entry, dict):
        return entry if keep_value else WITHHELD
    return {k: v for k, v in entry.items() if keep_value or k in ("doc_id", "point_id")}


def sanitize(result: ExpectationSuiteValidationResult) -> ExpectationSuiteValidationResult:
    """A copy of a suite validation result that is safe to publish (see module doc)."""
    clean = copy.deepcopy(result)
    for item in clean.results:
        column = item.expectation_config.kwargs.get("column")
        safe = column in SAFE_COLUMNS
        data = dict(item.result or {})
        for key in _DROP_KEYS:
            data.pop(key, None)
        unexpected = data.get("unexpected_count") or 0
        if safe:
            for key in _LIST_KEYS:
                if isinstance(data.get(key), list):
                    data[key] = data[key][:MAX_VALUES]
        else:
            data["partial_unexpected_list"] = [WITHHELD] if unexpected else []
            data["partial_unexpected_counts"] = [{"value": WITHHELD, "count": unexpected}] if unexpected else []
            data["partial_unexpected_index_list"] = [
                _clean_index_entry(e, False) for e in (data.get("partial_unexpected_index_list") or [])[:MAX_VALUES]
            ]
        item.result = data
        info = item.exception_info or {}
        if isinstance(info, dict) and info.get("raised_exception"):
            message = str(info.get("exception_message") or "")[:300]
            item.exception_info = {"raised_exception": True, "exception_message": message, "exception_traceback": None}
    return clean


@contextlib.contextmanager
def _locked(directory: Path):
    """One writer per source site at a time (parallel batches of a run share it)."""
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / ".lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@lru_cache(maxsize=8)
def _context(root: str) -> FileDataContext:
    """File-backed GX context of one source's docs, with the site at ``<root>/site``."""
    import great_expectations as gx

    for name in ("great_expectations", "great_expectations.core"):
        logging.getLogger(name).setLevel(logging.WARNING)
    context = gx.get_context(mode="file", project_root_dir=root)
    sites = context.get_config().data_docs_sites or {}
    if SITE not in sites:
        context.add_data_docs_site(
            site_name=SITE,
            site_config={
                "class_name": "SiteBuilder",
                "show_how_to_buttons": False,
                "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": "../site/"},
                "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
            },
        )
    for other in [name for name in sites if name != SITE]:
        context.delete_data_docs_site(other)
    return context


def _prune(root: Path, keep: int) -> None:
    """Delete the stored results and pages of all but the newest ``keep`` runs."""
    stores = [root / "gx" / "uncommitted" / "validations", root / "site" / "validations"]
    runs: dict[str, float] = {}
    for store in stores:
        for suite_dir in store.glob("*") if store.exists() else []:
            for run_dir in suite_dir.iterdir() if suite_dir.is_dir() else []:
                runs[run_dir.name] = max(runs.get(run_dir.name, 0.0), run_dir.stat().st_mtime)
    for run in sorted(runs, key=runs.get, reverse=True)[max(keep, 1) :]:
        for store in stores:
            for suite_dir in store.glob("*"):
                shutil.rmtree(suite_dir / run, ignore_errors=True)


def _key(result: ExpectationSuiteValidationResult, run_id: str, batch: str) -> ValidationResultIdentifier:
    from great_expectations.core.run_identifier import RunIdentifier
    from great_expectations.data_context.types.resource_identifiers import (
        ExpectationSuiteIdentifier,
        ValidationResultIdentifier,
    )

    return ValidationResultIdentifier(
        expectation_suite_identifier=ExpectationSuiteIdentifier(name=result.suite_name),
        run_id=RunIdentifier(run_name=safe_name(run_id)),
        batch_identifier=safe_name(batch),
    )


def record(settings: Settings, source: str, run_id: str, batch: str, validation: Validation) -> None:
    """Store one batch's validation result (sanitized) for the run's Data Docs (cheap:
    the HTML is rendered once per run by :func:`build`). A validation of no rows has no
    result and stores nothing."""
    result = validation.result
    if not settings.sync.data_docs or result is None:
        return
    root = site_dir(settings, source)
    try:
        with _locked(root):
            _context(str(root)).validation_results_store.set(_key(result, run_id, batch), sanitize(result))
    except Exception as exc:  # documentation only: validation already decided, never fail the batch
        log.warning("GX validation result of %s run %s not stored for Data Docs: %s: %s",
                    source, run_id, type(exc).__name__, exc)


def build(settings: Settings, source: str, run_id: str) -> Path | None:
    """Render the run's validation pages and the site index; drop runs beyond the newest
    ``data_docs_keep_runs``. Returns the index page, or None (off, nothing stored, error)."""
    if not settings.sync.data_docs:
        return None
    root = site_dir(settings, source)
    if not (root / "gx").exists():
        return None
    try:
        with _locked(root):
            context = _context(str(root))
            run_name = safe_name(run_id)
            keys = [k for k in context.validation_results_store.list_keys() if k.run_id.run_name == run_name]
            if not keys:
                return None
            _prune(root, settings.sync.data_docs_keep_runs)
            context.build_data_docs(site_names=[SITE], resource_identifiers=keys)
        log.info("GX Data Docs of %s run %s: %s", source, run_id, index_page(settings, source))
        return index_page(settings, source)
    except Exception as exc:  # documentation only: never fail the run
        log.warning("GX Data Docs of %s run %s not built: %s: %s", source, run_id, type(exc).__name__, exc)
        return None
