"""The one place where docsync reads its configuration.

Every setting is an environment variable with a documented default (see README,
"Configuration"). Airflow deployments set them in the worker environment or via
`AIRFLOW_VAR_*`-style secrets; DAG params may override the source root per run.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path

# No network, no telemetry: set before any library that reads them is imported.
OFFLINE_ENV = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "DO_NOT_TRACK": "1",
    "ORT_DISABLE_TELEMETRY": "1",
    "UNSTRUCTURED_DISABLE_NOTICE": "1",
    "SCARF_ANALYTICS": "false",
    "GX_ANALYTICS_ENABLED": "false",
    "TOKENIZERS_PARALLELISM": "false",
    "TQDM_DISABLE": "1",  # model-loading and GX progress bars only clutter task logs
}


def apply_offline_env() -> None:
    """Force offline/no-telemetry variables into this process's environment."""
    for key, value in OFFLINE_ENV.items():
        os.environ.setdefault(key, value)


apply_offline_env()

DEFAULT_PII_ENTITIES = (
    "PERSON",
    "EMAIL_ADDRESS",
    "PHONE_NUMBER",
    "US_SSN",
    "CREDIT_CARD",
    "IBAN_CODE",
    "IP_ADDRESS",
    "US_BANK_NUMBER",
    "US_PASSPORT",
    "US_DRIVER_LICENSE",
)

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def _env(name: str, default: str) -> str:
    value = os.environ.get(name)
    return default if value is None or value == "" else value


def _list(name: str, default: tuple[str, ...] = ()) -> tuple[str, ...]:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    return tuple(part.strip() for part in raw.split(",") if part.strip())


def _ocr_scope(value: str) -> str:
    scope = value.strip().lower()
    if scope not in ("page", "document"):
        raise ValueError(f"DOCSYNC_OCR_CONFIDENCE_SCOPE must be 'page' or 'document', not {value!r}")
    return scope


@dataclass(frozen=True)
class Settings:
    """Resolved configuration. Build with :func:`load_settings`; tests use `replace()`."""

    home: Path
    state_url: str
    staging_dir: str
    qdrant_url: str | None
    qdrant_path: Path
    qdrant_api_key: str | None = field(repr=False)  # secrets never appear in repr() or logs
    qdrant_conn_id: str | None
    collection_prefix: str
    source_name: str
    fileshare_root: str
    include_globs: tuple[str, ...]
    exclude_globs: tuple[str, ...]
    max_file_bytes: int
    batch_size: int
    max_delete_fraction: float
    chunk_tokens: int
    chunk_overlap: int
    ocr_min_confidence: float
    ocr_dpi: int
    ocr_lang: str
    ocr_min_page_chars: int
    pii_entities: tuple[str, ...]
    pii_hmac_key: str | None = field(repr=False)
    pii_score_threshold: float
    expectations_dir: Path
    doc_timeout_s: int
    default_principals: tuple[str, ...]
    acl_mode: str
    smb_username: str | None
    smb_password: str | None = field(repr=False)
    freshness_slo_s: int
    extra: dict = field(default_factory=dict)
    source_kind: str = "fileshare"  # fileshare | sharepoint: which Source open_source() builds
    sharepoint_root: str = ""  # SharePoint export folder (manifest.json or library.csv + files/)
    data_docs: bool = True  # GX Data Docs per run under home/data_docs/<source>/site
    data_docs_keep_runs: int = 20
    # Roots a run may use (DAG param `root`, --root): local paths or smb:// URLs; a sub-folder of
    # one is allowed too. The configured root of the source kind is always allowed.
    allowed_roots: tuple[str, ...] = ()
    # Owners whose ACL sidecars are trusted besides the document's own owner: `uid:<n>`,
    # `gid:<n>`, `user:<name>`, `group:<name>` (see docsync.sources.acl.TrustedOwners).
    trusted_sidecar_owners: tuple[str, ...] = ()
    # The organisation's UPN domains: bob@<domain> is the principal user:bob (docsync.principals).
    principal_domains: tuple[str, ...] = ()
    ocr_confidence_scope: str = "page"  # page: lowest page confidence | document: mean over words
    reconcile_interval_h: float = 24.0  # full state/Qdrant check on runs that wrote nothing; 0 = every run
    batch_budget_s: int = 7200  # a batch's total processing time; what does not fit is deferred
    workers: int = 1  # CLI/run_sync: batches processed in parallel processes (the DAG maps tasks instead)
    max_page_pixels: int = 40_000_000  # a page is rendered for OCR at most this large; bigger image frames are refused
    max_doc_memory_bytes: int = 2048 * 2**20  # memory one document's preparation may add (docsync.limits); 0 = no limit

    def collection(self, source_name: str | None = None) -> str:
        """Qdrant collection of a source: one collection per source."""
        return f"{self.collection_prefix}_{source_name or self.source_name}"

    def source_root(self) -> str:
        """The default root of the configured source kind."""
        return self.sharepoint_root if self.source_kind == "sharepoint" else self.fileshare_root

    def with_overrides(self, **kwargs) -> "Settings":
        return replace(self, **{k: v for k, v in kwargs.items() if v is not None})


def load_settings() -> Settings:
    """Read settings from the environment (call again after changing it)."""
    home = Path(_env("DOCSYNC_HOME", str(Path.cwd() / ".docsync"))).resolve()
    qdrant_url = _env("DOCSYNC_QDRANT_URL", "") or None
    return Settings(
        home=home,
        state_url=_env("DOCSYNC_STATE_URL", f"sqlite:///{home / 'state.db'}"),
        staging_dir=_env("DOCSYNC_STAGING", str(home / "staging")),
        qdrant_url=qdrant_url,
        qdrant_path=Path(_env("DOCSYNC_QDRANT_PATH", str(home / "qdrant"))),
        qdrant_api_key=_env("DOCSYNC_QDRANT_API_KEY", "") or None,
        qdrant_conn_id=_env("DOCSYNC_QDRANT_CONN_ID", "") or None,
        collection_prefix=_env("DOCSYNC_COLLECTION_PREFIX", "docsync"),
        source_name=_env("DOCSYNC_SOURCE_NAME", "fileshare"),
        fileshare_root=_env("DOCSYNC_FILESHARE_ROOT", str(PROJECT_ROOT / ".demo" / "corpus")),
        include_globs=_list("DOCSYNC_INCLUDE", ("**/*",)),
        exclude_globs=_list("DOCSYNC_EXCLUDE", ("**/.*", "**/~$*", "**/*.tmp")),
        max_file_bytes=int(float(_env("DOCSYNC_MAX_FILE_MB", "100")) * 1024 * 1024),
        batch_size=int(_env("DOCSYNC_BATCH_SIZE", "25")),
        max_delete_fraction=float(_env("DOCSYNC_MAX_DELETE_FRACTION", "0.2")),
        chunk_tokens=int(_env("DOCSYNC_CHUNK_TOKENS", "200")),
        chunk_overlap=int(_env("DOCSYNC_CHUNK_OVERLAP", "32")),
        ocr_min_confidence=float(_env("DOCSYNC_OCR_MIN_CONFIDENCE", "55")),
        ocr_dpi=int(_env("DOCSYNC_OCR_DPI", "300")),
        ocr_lang=_env("DOCSYNC_OCR_LANG", "eng"),
        ocr_min_page_chars=int(_env("DOCSYNC_OCR_MIN_PAGE_CHARS", "16")),
        pii_entities=_list("DOCSYNC_PII_ENTITIES", DEFAULT_PII_ENTITIES),
        pii_hmac_key=_env("DOCSYNC_PII_HMAC_KEY", "") or None,
        pii_score_threshold=float(_env("DOCSYNC_PII_SCORE_THRESHOLD", "0.35")),
        expectations_dir=Path(_env("DOCSYNC_EXPECTATIONS_DIR", str(PROJECT_ROOT / "expectations"))),
        doc_timeout_s=int(_env("DOCSYNC_DOC_TIMEOUT_S", "600")),
        default_principals=_list("DOCSYNC_DEFAULT_PRINCIPALS"),
        acl_mode=_env("DOCSYNC_ACL_MODE", "sidecar_or_posix"),
        smb_username=_env("DOCSYNC_SMB_USERNAME", "") or None,
        smb_password=_env("DOCSYNC_SMB_PASSWORD", "") or None,
        freshness_slo_s=int(_env("DOCSYNC_FRESHNESS_SLO_S", str(24 * 3600))),
        source_kind=_env("DOCSYNC_SOURCE_KIND", "fileshare"),
        sharepoint_root=_env("DOCSYNC_SHAREPOINT_ROOT", str(PROJECT_ROOT / ".demo" / "sharepoint")),
        data_docs=_env("DOCSYNC_DATA_DOCS", "1").strip().lower() not in ("0", "false", "no", "off"),
        data_docs_keep_runs=int(_env("DOCSYNC_DATA_DOCS_KEEP_RUNS", "20")),
        allowed_roots=_list("DOCSYNC_ALLOWED_ROOTS"),
        trusted_sidecar_owners=_list("DOCSYNC_TRUSTED_SIDECAR_OWNERS"),
        principal_domains=_list("DOCSYNC_PRINCIPAL_DOMAINS"),
        ocr_confidence_scope=_ocr_scope(_env("DOCSYNC_OCR_CONFIDENCE_SCOPE", "page")),
        reconcile_interval_h=float(_env("DOCSYNC_RECONCILE_INTERVAL_H", "24")),
        batch_budget_s=int(_env("DOCSYNC_BATCH_BUDGET_S", "7200")),
        workers=max(1, int(_env("DOCSYNC_WORKERS", "1"))),
        max_page_pixels=int(float(_env("DOCSYNC_MAX_PAGE_PIXELS", "40000000"))),
        max_doc_memory_bytes=int(float(_env("DOCSYNC_MAX_DOC_MEMORY_MB", "2048")) * 2**20),
    )
