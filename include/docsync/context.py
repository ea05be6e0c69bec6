"""One task's context: settings, the state store engine, the source and the run's files,
each built once per task instead of once per helper call."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING

from docsync import state
from docsync.records import RunFiles

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from docsync.config import Settings
    from docsync.sources import Source


@dataclass
class RunContext:
    """What every step of one run of one source needs."""

    settings: Settings
    source_name: str
    run_id: str
    _sources: dict[str, Source] = field(default_factory=dict, repr=False)

    @cached_property
    def engine(self) -> Engine:
        return state.get_engine(self.settings.state_url)

    @cached_property
    def files(self) -> RunFiles:
        return RunFiles(self.settings, self.source_name, self.run_id)

    @property
    def collection(self) -> str:
        return self.settings.collection(self.source_name)

    def source(self, root: str | None = None) -> Source:
        """The run's source at ``root`` (the configured root when empty), opened once."""
        from docsync.sources import open_source

        key = root or ""
        if key not in self._sources:
            self._sources[key] = open_source(self.settings, root or None, self.source_name)
        return self._sources[key]
