"""Index engines other than a Qdrant server or qdrant-client's local mode (``docsync.index``
picks one by ``DOCSYNC_QDRANT_ENGINE``): :mod:`.edge`, Qdrant's engine embedded in-process."""
