"""Great Expectations validation of documents and chunks with the suites in `expectations/`.

Each failing row is mapped back to its document, which is quarantined with the failing
expectation named. Expectations marked ``overridable`` are waived for documents a
reviewer released; access and PII expectations never are.

Validation is pure: it returns a :class:`Validation` (the failures and the GX result) and
writes nothing. The process step publishes the result in the run's GX Data Docs with
:func:`docsync.data_docs.record`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from docsync.config import Settings, apply_offline_env
from docsync.errors import Failure, Stage

if TYPE_CHECKING:
    from great_expectations.core import ExpectationSuite
    from great_expectations.core.batch_definition import BatchDefinition
    from great_expectations.data_context import AbstractDataContext

apply_offline_env()
log = logging.getLogger(__name__)

DOCUMENT_SUITE = "documents.json"
CHUNK_SUITE = "chunks.json"


@dataclass(frozen=True, eq=False)  # eq: a Validation compares as its failures (Mapping)
class Validation(Mapping[str, Failure]):
    """What one expectation suite found in one batch of rows.

    ``failures`` maps each failing document to its first :class:`Failure`, and the
    Validation reads as that mapping (``doc_id in v``, ``v.get(doc_id)``, ``v == {}``).
    ``result`` is the GX suite validation result behind it (None when there were no rows),
    which :func:`docsync.data_docs.record` publishes, sanitized.
    """

    failures: dict[str, Failure] = field(default_factory=dict)
    result: Any = None  # great_expectations ExpectationSuiteValidationResult

    def __getitem__(self, doc_id: str) -> Failure:
        return self.failures[doc_id]

    def __iter__(self) -> Iterator[str]:
        return iter(self.failures)

    def __len__(self) -> int:
        return len(self.failures)


def _substitute(value: Any, ocr_min_confidence: float) -> Any:
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
def _runtime(
    expectations_dir: str, suite_file: str, ocr_min_confidence: float
) -> tuple[AbstractDataContext, ExpectationSuite, BatchDefinition]:
    """Ephemeral GX context, the suite and a reusable dataframe batch definition."""
    import great_expectations as gx
    from great_expectations.expectations.expectation_configuration import ExpectationConfiguration

    for name in ("great_expectations", "great_expectations.core"):
        logging.getLogger(name).setLevel(logging.WARNING)
    context = gx.get_context(mode="ephemeral")
    try:
        context.variables.progress_bars = {"globally": False}
    except Exception:  # cosmetic only: a GX version without the setting still validates
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


def _validate(rows: list[dict], suite_file: str, settings: Settings, overrides: set[str]) -> Validation:
    """The documents among ``rows`` that fail an expectation of the suite, with the GX result."""
    if not rows:
        return Validation()
    import pandas as pd

    _context, suite, batch_definition = _runtime(
        str(settings.sync.expectations_dir), suite_file, settings.ocr.min_confidence
    )
    frame = pd.DataFrame(rows)
    batch = batch_definition.get_batch(batch_parameters={"dataframe": frame})
    result = batch.validate(
        suite, result_format={"result_format": "COMPLETE", "unexpected_index_column_names": ["doc_id"]}
    )
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
                stage=Stage.VALIDATE,
                reason=f"failed expectation {name} of suite {suite.name}: {meta.get('reason', 'see suite')}",
                error=detail,
            )
    return Validation(failures, result)


def validate_documents(rows: list[dict], settings: Settings, overrides: set[str] = frozenset()) -> Validation:
    """Document rows against the document suite (record the result with data_docs.record)."""
    return _validate(rows, DOCUMENT_SUITE, settings, set(overrides))


def validate_chunks(rows: list[dict], settings: Settings, overrides: set[str] = frozenset()) -> Validation:
    """Chunk rows against the chunk suite (record the result with data_docs.record)."""
    return _validate(rows, CHUNK_SUITE, settings, set(overrides))
