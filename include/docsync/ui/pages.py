"""HTML of the plugin pages: the Jinja2 templates in ``templates/`` (autoescaped; the
quarantine preview is anonymized text and is rendered as text, never as markup)."""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import jinja2

STATUSES = ("open", "retry", "released", "dismissed", "resolved", "all")
TEMPLATES = Path(__file__).with_name("templates")


def _ts(value: object) -> str:
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S UTC")
    return "—" if value in (None, "") else str(value)


@lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    """The pages' Jinja2 environment: every value is escaped unless a template says otherwise
    (none does)."""
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True, undefined=jinja2.StrictUndefined
    )
    env.filters["ts"] = _ts
    return env


def render(page: str, **context: object) -> str:
    """``templates/<page>.html`` rendered with ``context``."""
    return environment().get_template(f"{page}.html").render(statuses=STATUSES, **context)
