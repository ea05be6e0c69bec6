"""The sync's steps, one module per DAG task, in run order:

plan -> updates (deletes and ACL-only changes first) -> process (mapped over batches)
-> write (mapped, one writer) -> finalize -> reconcile.

Each module exposes its task's function; ``docsync.pipeline.run_sync`` runs them all in one
process (CLI, tests) and ``docsync.dagfactory`` maps them onto Airflow tasks.
"""
