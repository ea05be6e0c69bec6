"""docsync: keep a Qdrant vector index in sync with an organisation's documents."""

from docsync.config import apply_offline_env

# No network, no telemetry: set before any library that reads these variables is imported,
# whichever docsync module is imported first.
apply_offline_env()

__version__ = "0.1.0"
