"""Airflow DAG sharepoint_sync: keep the Qdrant collection `docsync_sharepoint` in sync with a
SharePoint document-library export (Microsoft Graph JSON or library CSV, with permissions) in
DOCSYNC_SHAREPOINT_ROOT. Export format: README, "SharePoint exports"; other configuration:
DOCSYNC_* environment variables (README, "Configuration")."""

import os

from docsync.dagfactory import build_sync_dag

dag = build_sync_dag(
    "sharepoint_sync",
    source_name="sharepoint",
    schedule=os.environ.get("DOCSYNC_SHAREPOINT_SCHEDULE", "@hourly") or None,
    source_kind="sharepoint",
    doc_md=__doc__,
)
