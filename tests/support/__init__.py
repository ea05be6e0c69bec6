"""Helpers shared by the tests (not tests themselves): Airflow CLI environments, a Chromium
DevTools client, a SharePoint Graph-export builder, a private Samba server, PostgreSQL access."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
