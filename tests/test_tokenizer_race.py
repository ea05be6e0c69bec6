"""The tokenizer race of issue 14 (item 1): chunking counted tokens with the embedding
model's own fast tokenizer while BackgroundEmbedder encoded with it on another thread. A fast
tokenizer's truncation and padding are mutable state on the instance, set by every call: a
count (no truncation) switched the encoder's truncation off mid-batch, and a whole run failed
with "Unable to create tensor, you should probably activate truncation and/or padding".
Real model, real threads; on the old code this fails within the first embedding batch."""

from __future__ import annotations

import threading
import time

import numpy as np

from docsync.chunk import _windows, count_tokens
from docsync.embed import MODEL_MAX_TOKENS, embed_texts, get_model, get_tokenizer

LONG = " ".join(f"token{i} alpha beta" for i in range(600))  # ~4,000 tokens: needs truncation
TEXTS = [LONG[: 400 + 300 * i] for i in range(8)]  # different lengths: needs padding


def test_counting_while_encoding_on_another_thread_never_breaks_the_encoder():
    reference = np.array(embed_texts(TEXTS))  # single-threaded, before any counting
    assert count_tokens(LONG) > MODEL_MAX_TOKENS
    errors: list[str] = []
    done = threading.Event()
    counts = 0

    def chunker() -> None:
        nonlocal counts
        while not done.is_set():
            try:
                count_tokens(LONG)
                _windows(LONG[:4000], 200, 32)
                counts += 1
            except Exception as exc:
                errors.append(f"chunker: {exc!r}")
                done.set()

    def encoder() -> None:
        deadline = time.monotonic() + 8
        rounds = 0
        while (time.monotonic() < deadline or rounds < 3) and not done.is_set():
            try:
                vectors = np.array(embed_texts(TEXTS))
            except Exception as exc:
                errors.append(f"encoder: {exc!r}")
                break
            rounds += 1
            if not np.allclose(vectors, reference, atol=1e-4):  # truncated and padded as alone
                errors.append("encoder: vectors differ from the single-threaded ones")
                break
        done.set()

    threads = [threading.Thread(target=chunker), threading.Thread(target=chunker), threading.Thread(target=encoder)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert not errors, errors[:3]
    assert counts > 10  # the chunkers really ran alongside


def test_chunking_tokenizer_is_its_own_instance_per_thread_with_the_models_vocabulary():
    mine = get_tokenizer()
    assert mine is get_tokenizer()  # one per thread, reused
    assert mine is not get_model().tokenizer
    other: list = []
    thread = threading.Thread(target=lambda: other.append(get_tokenizer()))
    thread.start()
    thread.join()
    assert other[0] is not mine
    text = "Zoë's naïve café — “quotes”, 12,345.67 and alice.admin@corp.internal " * 20
    model_ids = get_model().tokenizer(text, add_special_tokens=False)["input_ids"]
    assert mine(text, add_special_tokens=False)["input_ids"] == model_ids
    assert count_tokens(text) == len(model_ids)
