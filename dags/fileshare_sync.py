"""Airflow DAG fileshare_sync: keep the Qdrant collection of a file share (local/NFS path
or smb://) in sync. Configuration: DOCSYNC_* environment variables (README, "Configuration")."""

import os

from docsync.dagfactory import build_sync_dag

dag = build_sync_dag(
    "fileshare_sync",
    source_name=os.environ.get("DOCSYNC_SOURCE_NAME", "fileshare"),
    schedule=os.environ.get("DOCSYNC_FILESHARE_SCHEDULE", "@hourly") or None,
    source_kind="fileshare",
    doc_md=__doc__,
)
