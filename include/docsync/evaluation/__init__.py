"""Retrieval evaluation: labelled sets (:mod:`.eval_set`), metrics (:mod:`.scoring`), the
evaluation run (:mod:`.evaluate`, ``docsync eval`` and the evaluation DAG) and the label-free
canary after each sync that changed the index (:mod:`.canary`). Nothing here runs at import:
the modules import the index, the embedder and the state store when called."""
