"""Airflow plugin: the docsync quarantine review and freshness/lag pages in the Airflow UI
(Browse menu), their JSON API and Prometheus /metrics, served by the API server at /docsync.
The logic lives in docsync.webapi; authentication is Airflow's own."""

from airflow.plugins_manager import AirflowPlugin

from docsync.webapi import create_app


class DocsyncPlugin(AirflowPlugin):
    name = "docsync"
    fastapi_apps = [{"app": create_app(), "url_prefix": "/docsync", "name": "docsync"}]
    external_views = [
        {
            "name": "Docsync quarantine",
            "href": "/docsync/quarantine",
            "url_route": "docsync-quarantine",
            "destination": "nav",
            "category": "browse",
        },
        {
            "name": "Docsync freshness",
            "href": "/docsync/monitoring",
            "url_route": "docsync-monitoring",
            "destination": "nav",
            "category": "browse",
        },
    ]
