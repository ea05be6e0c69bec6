"""docsync: keep a Qdrant vector index in sync with an organisation's documents."""

__version__ = "0.1.0"
