"""The one place where docsync reads its configuration.

Every setting is an environment variable with a documented default (see README,
"Configuration"). Airflow deployments set them in the worker environment or via
`AIRFLOW_VAR_*`-style secrets; DAG params may override the source root per run (within
``DOCSYNC_ALLOWED_ROOTS``). Settings are grouped per component (``settings.source``,
``.qdrant``, ``.ocr``, ``.pii``, ``.sync``); secrets never appear in ``repr()``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

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
DEFAULT_EMBED_MODEL = "all-MiniLM-L6-v2"
DEFAULT_EMBED_BACKEND = "torch"  # onnx-int8 is opt-in: switching re-embeds (docsync reindex)


def embed_model_spec() -> str:
    """DOCSYNC_EMBED_MODEL: a sentence-transformers model directory or an installed model
    package (resolved by docsync.embed, which every embedding goes through)."""
    return _env("DOCSYNC_EMBED_MODEL", DEFAULT_EMBED_MODEL)


def embed_backend() -> str:
    """DOCSYNC_EMBED_BACKEND: ``torch`` (default: sentence-transformers on torch, fp32) or
    ``onnx-int8`` (ONNX Runtime, int8 weights exported offline from the model, docsync.embed_onnx;
    ~30% less CPU, recall@10 unchanged on the demo set: README "Benchmarks")."""
    value = _env("DOCSYNC_EMBED_BACKEND", DEFAULT_EMBED_BACKEND).strip().lower()
    if value not in ("torch", "onnx-int8"):
        raise ValueError(f"DOCSYNC_EMBED_BACKEND must be 'torch' or 'onnx-int8', not {value!r}")
    return value


def embed_onnx_dir() -> Path:
    """DOCSYNC_EMBED_ONNX_DIR: where the int8 exports live (default: share/docsync/onnx in the
    Python environment, written by `make setup`; DOCSYNC_HOME/onnx when that is read-only)."""
    import sys

    default = Path(sys.prefix) / "share" / "docsync" / "onnx"
    if not default.exists() and not os.access(sys.prefix, os.W_OK):
        default = Path(_env("DOCSYNC_HOME", str(Path.cwd() / ".docsync"))) / "onnx"
    return Path(_env("DOCSYNC_EMBED_ONNX_DIR", str(default))).expanduser().resolve()


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


def _search_mode(value: str) -> str:
    mode = value.strip().lower()
    if mode not in ("dense", "hybrid"):
        raise ValueError(f"DOCSYNC_SEARCH_MODE must be 'dense' or 'hybrid', not {value!r}")
    return mode


def _host_socket(value: str) -> str:
    """DOCSYNC_WORKER_HOST_SOCKET: the worker host's socket path; "off" (or "none") = no host."""
    return "" if value.strip().lower() in ("off", "none", "0") else value


@dataclass(frozen=True)
class SourceSettings:
    """Where documents come from and how their access is read."""

    name: str  # DOCSYNC_SOURCE_NAME: names the collection and the state rows
    kind: str  # DOCSYNC_SOURCE_KIND: fileshare | sharepoint, which Source open_source() builds
    fileshare_root: str  # local/NFS path or smb://host/share/path
    sharepoint_root: str  # SharePoint export folder (manifest.json or library.csv + files/)
    include_globs: tuple[str, ...]
    exclude_globs: tuple[str, ...]
    max_file_bytes: int
    acl_mode: str  # sidecar_or_posix | sidecar | posix
    default_principals: tuple[str, ...]
    # Roots a run may use (DAG param `root`, --root): local paths or smb:// URLs; a sub-folder of
    # one is allowed too. The configured root of the source kind is always allowed.
    allowed_roots: tuple[str, ...] = ()
    # Owners whose ACL sidecars are trusted besides the document's own owner: `uid:<n>`,
    # `gid:<n>`, `user:<name>`, `group:<name>` (see docsync.sources.acl.TrustedOwners).
    trusted_sidecar_owners: tuple[str, ...] = ()
    # The organisation's UPN domains: bob@<domain> is the principal user:bob (docsync.principals).
    principal_domains: tuple[str, ...] = ()
    smb_username: str | None = None
    smb_password: str | None = field(default=None, repr=False)  # secrets never appear in repr() or logs

    def root(self) -> str:
        """The default root of the configured source kind."""
        return self.sharepoint_root if self.kind == "sharepoint" else self.fileshare_root


@dataclass(frozen=True)
class QdrantSettings:
    """Where the index lives: embedded (a directory) by default, a server by URL or connection."""

    url: str | None
    path: Path
    conn_id: str | None
    collection_prefix: str
    api_key: str | None = field(default=None, repr=False)
    engine: str = "edge"  # embedded engine: "edge" (qdrant-edge-py) or "local" (qdrant-client local mode)


@dataclass(frozen=True)
class OcrSettings:
    """Scanned pages: when and how they are read with tesseract."""

    min_confidence: float
    dpi: int
    lang: str
    min_page_chars: int
    confidence_scope: str = "page"  # page: lowest page confidence | document: mean over words
    max_page_pixels: int = 40_000_000  # a page is rendered at most this large; bigger image frames are refused


@dataclass(frozen=True)
class PiiSettings:
    """What anonymization removes, and how."""

    entities: tuple[str, ...]
    score_threshold: float
    hmac_key: str | None = field(default=None, repr=False)  # pseudonyms instead of <TYPE> tags


@dataclass(frozen=True)
class SyncSettings:
    """How a run is cut, bounded, validated and checked."""

    batch_size: int
    max_delete_fraction: float
    chunk_tokens: int
    chunk_overlap: int
    doc_timeout_s: int
    freshness_slo_s: int
    expectations_dir: Path
    batch_budget_s: float = 7200  # a batch's total processing time; what does not fit is deferred
    max_doc_memory_bytes: int = 2048 * 2**20  # memory one document's preparation may add (docsync.limits); 0 = no limit
    # A DAG run's plan stops walking once it staged this many batches (0: the whole walk): an
    # initial load of millions of documents is processed a slice per run (docsync.walk).
    plan_slice_batches: int = 0
    workers: int = 1  # CLI/run_sync: batches processed in parallel processes (the DAG maps tasks instead)
    # Batches a deployment processes at once (all worker hosts' workers; 0: this machine's worker
    # host, DOCSYNC_WORKERS or one per core). A DAG run maps one task per group of batches, sized
    # from this (docsync.batching.task_groups), so task overhead does not grow with the batch count.
    process_parallelism: int = 0
    reconcile_interval_h: float = 24.0  # full state/Qdrant check on runs that wrote nothing; 0 = every run
    data_docs: bool = True  # GX Data Docs per run under home/data_docs/<source>/site
    data_docs_keep_runs: int = 20
    run_deadline_min: float = 360.0  # a run not finished this long after it was queued missed its deadline
    # Retrieval evaluation (docsync.evaluation): sets at eval_dir/<source>.jsonl, the recall@10 drop
    # (percentage points) that fails an evaluation, the canary's sample per run (0: off), the search mode.
    eval_dir: Path = PROJECT_ROOT / ".docsync" / "eval"
    eval_margin_points: float = 5.0
    canary_samples: int = 5
    search_mode: str = "hybrid"
    # Re-processing of documents on a stale text fingerprint (docsync.fingerprint.Budget): documents
    # ("200") or time ("30m") per run; PII-stricter changes ignore it when reprocess_urgent is on.
    reprocess_budget: str = "200"
    reprocess_urgent: bool = True
    host_socket: str = ""  # the worker host's Unix socket (docsync.worker_host); "" = process in the task
    host_worker_max_mb: int = 3072  # a host worker over this RSS after a batch is replaced (bounded memory)

    @property
    def host_workers(self) -> int:
        """The worker host's processes by default: DOCSYNC_WORKERS when above 1, else one per core."""
        return self.workers if self.workers > 1 else max(1, os.cpu_count() or 1)


@dataclass(frozen=True)
class DirectorySettings:
    """The LDAP/AD directory (or LDIF export) that a user's groups come from (docsync.directory)."""

    name: str = "directory"  # DOCSYNC_DIRECTORY_NAME: names the snapshot in the state store and the metrics
    # The Airflow connection of the directory: host, port, login (bind DN), password; its extra may
    # override the settings below. Credentials live there (or in a secrets backend), never here.
    conn_id: str = "docsync_directory"
    base_dn: str = ""
    tls: str = "starttls"  # starttls | ldaps | none (plain LDAP: only for a directory on this host)
    ca_file: str | None = None  # CA bundle that signed the directory's certificate (default: the system's)
    # AD users (not computers, not contacts) or OpenLDAP accounts; a clause a directory does not know is just false
    user_filter: str = "(|(&(objectCategory=person)(objectClass=user))(objectClass=inetOrgPerson)(objectClass=posixAccount))"
    group_filter: str = "(|(objectClass=group)(objectClass=groupOfNames)(objectClass=groupOfUniqueNames)(objectClass=posixGroup))"
    page_size: int = 500
    ldif_path: str | None = None  # read this LDIF export instead of a server
    unknown_user: str = "everyone"  # what a user the directory does not know gets: everyone | none
    max_age_s: int = 4 * 3600  # older last good snapshot: DocsyncDirectorySnapshotStale


def _choice(name: str, default: str, allowed: tuple[str, ...]) -> str:
    value = _env(name, default).strip().lower()
    if value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(allowed)}, not {value!r}")
    return value


_COMPONENTS = {"source": SourceSettings, "qdrant": QdrantSettings, "ocr": OcrSettings, "pii": PiiSettings,
               "sync": SyncSettings, "directory": DirectorySettings}
# Each setting's flat name (the DOCSYNC_* variable it is read from, lower-cased and without the
# prefix or unit) -> where it lives: what `replace` and `with_overrides` accept, so that callers
# changing one setting need not know the grouping.
FLAT_NAMES: dict[str, tuple[str, str]] = {
    "source_name": ("source", "name"),
    "source_kind": ("source", "kind"),
    "qdrant_url": ("qdrant", "url"),
    "qdrant_path": ("qdrant", "path"),
    "qdrant_conn_id": ("qdrant", "conn_id"),
    "qdrant_api_key": ("qdrant", "api_key"),
    "qdrant_engine": ("qdrant", "engine"),
    "collection_prefix": ("qdrant", "collection_prefix"),
    "ocr_min_confidence": ("ocr", "min_confidence"),
    "ocr_dpi": ("ocr", "dpi"),
    "ocr_lang": ("ocr", "lang"),
    "ocr_min_page_chars": ("ocr", "min_page_chars"),
    "ocr_confidence_scope": ("ocr", "confidence_scope"),
    "max_page_pixels": ("ocr", "max_page_pixels"),
    "pii_entities": ("pii", "entities"),
    "pii_score_threshold": ("pii", "score_threshold"),
    "pii_hmac_key": ("pii", "hmac_key"),
} | {
    f.name: ("source", f.name) for f in fields(SourceSettings) if f.name not in ("name", "kind")
} | {f.name: ("sync", f.name) for f in fields(SyncSettings)} | {
    f"directory_{f.name}": ("directory", f.name) for f in fields(DirectorySettings)
}


@dataclass(frozen=True)
class Settings:
    """Resolved configuration. Build with :func:`load_settings`; change with :meth:`replace`."""

    home: Path
    state_url: str
    staging_dir: str
    source: SourceSettings
    qdrant: QdrantSettings
    ocr: OcrSettings
    pii: PiiSettings
    sync: SyncSettings
    directory: DirectorySettings = field(default_factory=DirectorySettings)
    extra: dict = field(default_factory=dict)

    def collection(self, source_name: str | None = None) -> str:
        """Qdrant collection of a source: one collection per source."""
        return f"{self.qdrant.collection_prefix}_{source_name or self.source.name}"

    def replace(self, **changes: Any) -> Settings:
        """A copy with some settings changed, by their flat names (``doc_timeout_s``,
        ``ocr_dpi``, ``source_name``, ...) or top-level names (``home``, ``state_url``)."""
        top: dict[str, Any] = {}
        nested: dict[str, dict[str, Any]] = {}
        for name, value in changes.items():
            if name in FLAT_NAMES:
                component, attr = FLAT_NAMES[name]
                nested.setdefault(component, {})[attr] = value
            elif name in ("home", "state_url", "staging_dir", "extra", *_COMPONENTS):
                top[name] = value
            else:
                raise TypeError(f"unknown setting {name!r}")
        for component, values in nested.items():
            top[component] = replace(top.get(component, getattr(self, component)), **values)
        return replace(self, **top)

    def with_overrides(self, **changes: Any) -> Settings:
        """:meth:`replace` with the changes that are not None (command-line options left out)."""
        return self.replace(**{k: v for k, v in changes.items() if v is not None})


def load_settings() -> Settings:
    """Read settings from the environment (call again after changing it)."""
    home = Path(_env("DOCSYNC_HOME", str(Path.cwd() / ".docsync"))).resolve()
    return Settings(
        home=home,
        state_url=_env("DOCSYNC_STATE_URL", f"sqlite:///{home / 'state.db'}"),
        staging_dir=_env("DOCSYNC_STAGING", str(home / "staging")),
        source=SourceSettings(
            name=_env("DOCSYNC_SOURCE_NAME", "fileshare"),
            kind=_env("DOCSYNC_SOURCE_KIND", "fileshare"),
            fileshare_root=_env("DOCSYNC_FILESHARE_ROOT", str(PROJECT_ROOT / ".demo" / "corpus")),
            sharepoint_root=_env("DOCSYNC_SHAREPOINT_ROOT", str(PROJECT_ROOT / ".demo" / "sharepoint")),
            include_globs=_list("DOCSYNC_INCLUDE", ("**/*",)),
            exclude_globs=_list("DOCSYNC_EXCLUDE", ("**/.*", "**/~$*", "**/*.tmp")),
            max_file_bytes=int(float(_env("DOCSYNC_MAX_FILE_MB", "100")) * 1024 * 1024),
            acl_mode=_env("DOCSYNC_ACL_MODE", "sidecar_or_posix"),
            default_principals=_list("DOCSYNC_DEFAULT_PRINCIPALS"),
            allowed_roots=_list("DOCSYNC_ALLOWED_ROOTS"),
            trusted_sidecar_owners=_list("DOCSYNC_TRUSTED_SIDECAR_OWNERS"),
            principal_domains=_list("DOCSYNC_PRINCIPAL_DOMAINS"),
            smb_username=_env("DOCSYNC_SMB_USERNAME", "") or None,
            smb_password=_env("DOCSYNC_SMB_PASSWORD", "") or None,
        ),
        qdrant=QdrantSettings(
            url=_env("DOCSYNC_QDRANT_URL", "") or None,
            path=Path(_env("DOCSYNC_QDRANT_PATH", str(home / "qdrant"))),
            conn_id=_env("DOCSYNC_QDRANT_CONN_ID", "") or None,
            collection_prefix=_env("DOCSYNC_COLLECTION_PREFIX", "docsync"),
            api_key=_env("DOCSYNC_QDRANT_API_KEY", "") or None,
            engine=_env("DOCSYNC_QDRANT_ENGINE", "edge").strip().lower(),
        ),
        ocr=OcrSettings(
            min_confidence=float(_env("DOCSYNC_OCR_MIN_CONFIDENCE", "55")),
            dpi=int(_env("DOCSYNC_OCR_DPI", "300")),
            lang=_env("DOCSYNC_OCR_LANG", "eng"),
            min_page_chars=int(_env("DOCSYNC_OCR_MIN_PAGE_CHARS", "16")),
            confidence_scope=_ocr_scope(_env("DOCSYNC_OCR_CONFIDENCE_SCOPE", "page")),
            max_page_pixels=int(float(_env("DOCSYNC_MAX_PAGE_PIXELS", "40000000"))),
        ),
        pii=PiiSettings(
            entities=_list("DOCSYNC_PII_ENTITIES", DEFAULT_PII_ENTITIES),
            score_threshold=float(_env("DOCSYNC_PII_SCORE_THRESHOLD", "0.35")),
            hmac_key=_env("DOCSYNC_PII_HMAC_KEY", "") or None,
        ),
        sync=SyncSettings(
            batch_size=int(_env("DOCSYNC_BATCH_SIZE", "25")),
            max_delete_fraction=float(_env("DOCSYNC_MAX_DELETE_FRACTION", "0.2")),
            chunk_tokens=int(_env("DOCSYNC_CHUNK_TOKENS", "200")),
            chunk_overlap=int(_env("DOCSYNC_CHUNK_OVERLAP", "32")),
            doc_timeout_s=int(_env("DOCSYNC_DOC_TIMEOUT_S", "600")),
            freshness_slo_s=int(_env("DOCSYNC_FRESHNESS_SLO_S", str(24 * 3600))),
            expectations_dir=Path(_env("DOCSYNC_EXPECTATIONS_DIR", str(PROJECT_ROOT / "expectations"))),
            batch_budget_s=float(_env("DOCSYNC_BATCH_BUDGET_S", "7200")),
            max_doc_memory_bytes=int(float(_env("DOCSYNC_MAX_DOC_MEMORY_MB", "2048")) * 2**20),
            workers=max(1, int(_env("DOCSYNC_WORKERS", "1"))),
            plan_slice_batches=max(0, int(_env("DOCSYNC_PLAN_SLICE_BATCHES", "0"))),
            process_parallelism=max(0, int(_env("DOCSYNC_PROCESS_PARALLELISM", "0"))),
            reconcile_interval_h=float(_env("DOCSYNC_RECONCILE_INTERVAL_H", "24")),
            data_docs=_env("DOCSYNC_DATA_DOCS", "1").strip().lower() not in ("0", "false", "no", "off"),
            data_docs_keep_runs=int(_env("DOCSYNC_DATA_DOCS_KEEP_RUNS", "20")),
            run_deadline_min=float(_env("DOCSYNC_RUN_DEADLINE_MIN", "360")),
            eval_dir=Path(_env("DOCSYNC_EVAL_DIR", str(home / "eval"))),
            eval_margin_points=float(_env("DOCSYNC_EVAL_MARGIN_POINTS", "5")),
            canary_samples=max(0, int(_env("DOCSYNC_CANARY_SAMPLES", "5"))),
            search_mode=_search_mode(_env("DOCSYNC_SEARCH_MODE", "hybrid")),
            reprocess_budget=_env("DOCSYNC_REPROCESS_BUDGET", "200"),
            reprocess_urgent=_env("DOCSYNC_REPROCESS_URGENT", "1").strip().lower() not in ("0", "false", "no", "off"),
            host_socket=_host_socket(_env("DOCSYNC_WORKER_HOST_SOCKET", str(home / "worker-host.sock"))),
            host_worker_max_mb=int(_env("DOCSYNC_HOST_WORKER_MAX_MB", "3072")),
        ),
        directory=DirectorySettings(
            name=_env("DOCSYNC_DIRECTORY_NAME", "directory"),
            conn_id=_env("DOCSYNC_DIRECTORY_CONN_ID", "docsync_directory"),
            base_dn=_env("DOCSYNC_DIRECTORY_BASE_DN", ""),
            tls=_choice("DOCSYNC_DIRECTORY_TLS", "starttls", ("starttls", "ldaps", "none")),
            ca_file=_env("DOCSYNC_DIRECTORY_CA_FILE", "") or None,
            user_filter=_env("DOCSYNC_DIRECTORY_USER_FILTER", DirectorySettings.user_filter),
            group_filter=_env("DOCSYNC_DIRECTORY_GROUP_FILTER", DirectorySettings.group_filter),
            page_size=int(_env("DOCSYNC_DIRECTORY_PAGE_SIZE", "500")),
            ldif_path=_env("DOCSYNC_DIRECTORY_LDIF", "") or None,
            unknown_user=_choice("DOCSYNC_DIRECTORY_UNKNOWN_USER", "everyone", ("everyone", "none")),
            max_age_s=int(_env("DOCSYNC_DIRECTORY_MAX_AGE_S", str(4 * 3600))),
        ),
    )
