"""Airflow DAGs fileshare_retrieval_eval and sharepoint_retrieval_eval: retrieval quality of a
source's collection on its labelled evaluation set ($DOCSYNC_EVAL_DIR/<source>.jsonl), after
every sync that updated the collection and at least weekly. The task fails on ACL violations,
stale hits or a recall@10 drop beyond DOCSYNC_EVAL_MARGIN_POINTS (README, "Retrieval evaluation")."""

import os

from docsync.evaldag import build_eval_dag

fileshare_eval = build_eval_dag(
    "fileshare_retrieval_eval", source_name=os.environ.get("DOCSYNC_SOURCE_NAME", "fileshare"), doc_md=__doc__
)
sharepoint_eval = build_eval_dag("sharepoint_retrieval_eval", source_name="sharepoint", doc_md=__doc__)
