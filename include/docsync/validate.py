"""Great Expectations validation of documents and chunks with the suites in `expectations/`.

Each failing row is mapped back to its document, which is quarantined with the failing
expectation named. Expectations marked ``overridable`` are waived for documents a
reviewer released; access and PII expectations never are.
"""

from __future__ import annotations

import json
import logging
from functools import lru_cache
from pathlib import Path

from docsync.config import Settings, apply_offline_env
from docsync.quarantine import Failure

apply_offline_env()
log = logging.getLogger(__name__)

DOCUMENT_SUITE = "documents.json"
CHUNK_SUITE = "chunks.json"
DocsTarget = tuple[str, str, str]  # (source, run id, batch name) of a run's GX Data Docs page


def _substitute(value, ocr_min_confidence: float):  # noqa: ANN001, ANN202
    """Suite values of the form $NAME come from settings."""
    if isinstance(value, str) and value.startswith("$"):
        return {"$OCR_MIN_CONFIDENCE": ocr_min_confidence}[value]
    return value


def load_suite_dict(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise RuntimeError(f"cannot load expectation suite {path}: {exc}. Check DOCSYNC_EXPECTATIONS_DIR.") from exc


@lru_cache(maxsize=4)
def _runtime(expectations_dir: str, suite_file: str, ocr_min_confidence: float):  # noqa: ANN202
    """Ephemeral GX context, the suite and a reusable dataframe batch definition."""
    import great_expectations as gx
    from great_expectations.expectations.expectation_configuration import ExpectationConfiguration

    for name in ("great_expectations", "great_expectations.core"):
        logging.getLogger(name).setLevel(logging.WARNING)
    context = gx.get_context(mode="ephemeral")
    try:
        context.variables.progress_bars = {"globally": False}
    except Exception:  # noqa: BLE001 - cosmetic only
        pass
    raw = load_suite_dict(Path(expectations_dir) / suite_file)
    configs = []
    for item in raw["expectations"]:
        kwargs = {k: _substitute(v, ocr_min_confidence) for k, v in item["kwargs"].items()}
        configs.append(ExpectationConfiguration(type=item["type"], kwargs=kwargs, meta=item.get("meta", {})))
    suite = context.suites.add(
        gx.ExpectationSuite(name=raw["name"], expectations=[c.to_domain_obj() for c in configs])
    )
    source = context.data_sources.add_pandas(f"docsync_{raw['name']}")
    batch_definition = source.add_dataframe_asset(raw["name"]).add_batch_definition_whole_dataframe("all")
    return context, suite, batch_definition


def _validate(
    rows: list[dict], suite_file: str, settings: Settings, overrides: set[str], docs: DocsTarget | None = None
) -> dict[str, Failure]:
    """doc_id -> first failure, for the rows whose document fails an expectation. With
    ``docs`` (source, run id, batch name) the result also goes to the run's GX Data Docs."""
    if not rows:
        return {}
    import pandas as pd

    _context, suite, batch_definition = _runtime(
        str(settings.expectations_dir), suite_file, settings.ocr_min_confidence
    )
    frame = pd.DataFrame(rows)
    batch = batch_definition.get_batch(batch_parameters={"dataframe": frame})
    result = batch.validate(
        suite, result_format={"result_format": "COMPLETE", "unexpected_index_column_names": ["doc_id"]}
    )
    if docs is not None:
        from docsync import data_docs

        data_docs.record(settings, result, *docs)
    failures: dict[str, Failure] = {}
    for item in result.results:
        if item.success:
            continue
        config = item.expectation_config
        meta = config.meta or {}
        column = config.kwargs.get("column", "")
        name = f"{config.type}({column})"
        unexpected = item.result.get("unexpected_index_list")
        if unexpected is None:  # the expectation itself errored: fail closed for every row
            doc_ids = {r["doc_id"] for r in rows}
            detail = str(item.exception_info)[:500]
        else:
            doc_ids = {u["doc_id"] for u in unexpected}
            detail = ""
        for doc_id in doc_ids:
            if doc_id in failures or (meta.get("overridable") and doc_id in overrides):
                continue
            failures[doc_id] = Failure(
                stage="validate",
                reason=f"failed expectation {name} of suite {suite.name}: {meta.get('reason', 'see suite')}",
                error=detail,
            )
    return failures


def validate_documents(
    rows: list[dict], settings: Settings, overrides: set[str] = frozenset(), docs: DocsTarget | None = None
) -> dict[str, Failure]:
    return _validate(rows, DOCUMENT_SUITE, settings, set(overrides), docs)


def validate_chunks(
    rows: list[dict], settings: Settings, overrides: set[str] = frozenset(), docs: DocsTarget | None = None
) -> dict[str, Failure]:
    return _validate(rows, CHUNK_SUITE, settings, set(overrides), docs)
