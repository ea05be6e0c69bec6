"""Which sources an Airflow user may see and act on in the docsync plugin.

Quarantine entries (paths, reasons, anonymized previews) and freshness belong to a source,
and a source belongs to the sync DAG that fills it. A user sees a source's entries, charts
and metrics only if Airflow's auth manager lets them read that DAG, and acts on its entries
only if it lets them run it: the same decision Airflow's own UI and API make for the DAG
(FAB per-DAG permissions, Keycloak resources, teams in multi-team mode, ...). A source no
DAG is registered for is shown to nobody (fail closed); register extra DAGs built with
``docsync.dagfactory.build_sync_dag`` in ``DOCSYNC_SOURCE_DAGS``.

Airflow is imported inside the functions: they run in the API server, on a request.
"""

from __future__ import annotations

import os
from collections import defaultdict
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterable

    from airflow.api_fastapi.auth.managers.models.base_user import BaseUser

    from docsync.config import Settings

SOURCE_DAGS_ENV = "DOCSYNC_SOURCE_DAGS"
# The DAGs of dags/: fileshare_sync syncs the source named DOCSYNC_SOURCE_NAME,
# sharepoint_sync the source "sharepoint".
FILESHARE_DAG, SHAREPOINT_DAG, SHAREPOINT_SOURCE = "fileshare_sync", "sharepoint_sync", "sharepoint"


def source_dags(settings: Settings) -> dict[str, str]:
    """source name -> id of the DAG that syncs it: the project's two DAGs, then the entries
    of ``DOCSYNC_SOURCE_DAGS`` (``source=dag_id,...``), which win."""
    dags = {SHAREPOINT_SOURCE: SHAREPOINT_DAG, settings.source.name: FILESHARE_DAG}
    for item in os.environ.get(SOURCE_DAGS_ENV, "").split(","):
        if not item.strip():
            continue
        source, sep, dag_id = (part.strip() for part in item.partition("="))
        if not (sep and source and dag_id):
            raise ValueError(f"{SOURCE_DAGS_ENV}: {item.strip()!r} is not of the form source=dag_id")
        dags[source] = dag_id
    return dags


def _teams(dag_ids: Iterable[str]) -> dict[str, str | None]:
    """dag id -> owning team, as Airflow's own DAG endpoints pass it (multi-team mode only;
    otherwise no DAG belongs to a team)."""
    from airflow.configuration import conf

    if not conf.getboolean("core", "multi_team", fallback=False):
        return {}
    from airflow.models.dag import DagModel

    return DagModel.get_dag_id_to_team_name_mapping(sorted(set(dag_ids)))


def readable_sources(user: BaseUser, sources: Iterable[str], settings: Settings) -> set[str]:
    """The sources among ``sources`` whose DAG the user may read."""
    from airflow.api_fastapi.app import get_auth_manager

    dags = source_dags(settings)
    wanted = {source: dags[source] for source in sources if source in dags}
    teams = _teams(wanted.values())
    by_team: dict[str | None, set[str]] = defaultdict(set)
    for dag_id in wanted.values():
        by_team[teams.get(dag_id)].add(dag_id)
    readable: set[str] = set()
    for team, dag_ids in by_team.items():
        readable |= get_auth_manager().filter_authorized_dag_ids(
            dag_ids=dag_ids, user=user, method="GET", team_name=team
        )
    return {source for source, dag_id in wanted.items() if dag_id in readable}


def may_act(user: BaseUser, source: str, settings: Settings) -> bool:
    """Whether the user may run the source's DAG, which acting on its quarantine amounts to
    (a retry or release makes the next run process the document)."""
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity, DagDetails

    dag_id = source_dags(settings).get(source)
    if dag_id is None:
        return False
    return get_auth_manager().is_authorized_dag(
        method="PUT",
        access_entity=DagAccessEntity.RUN,
        details=DagDetails(id=dag_id, team_name=_teams([dag_id]).get(dag_id)),
        user=user,
    )
