"""Airflow DAG directory_sync: read users, groups and memberships from Active Directory / LDAP
(the Airflow connection DOCSYNC_DIRECTORY_CONN_ID, default `docsync_directory`) or from an LDIF
export (DOCSYNC_DIRECTORY_LDIF), so that `index.search(..., user=...)` and `docsync principals`
resolve a user's nested groups. Setup: README, "Directory groups"."""

import os

from docsync.dagfactory import build_directory_dag

dag = build_directory_dag(
    "directory_sync",
    schedule=os.environ.get("DOCSYNC_DIRECTORY_SCHEDULE", "*/15 * * * *") or None,
    doc_md=__doc__,
)
