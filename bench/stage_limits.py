"""Child: raw throughput of one stage, outside docsync's pipeline
(``python -m bench.stage_limits embed|ocr|qdrant``)."""

from __future__ import annotations

import argparse
import random
import tempfile
import uuid

from bench.child import emit, timed


def embed(count: int) -> dict:
    """Chunks/s of all-MiniLM-L6-v2 on ~160-token texts, batch 32 (as docsync.embed)."""
    from docsync.chunk import count_tokens
    from docsync.demo.share import _share_doc
    from docsync.embed import get_model

    rng = random.Random("embed")
    words = " ".join(_share_doc(rng, i, ".txt") for i in range(count + 50)).split()
    texts = [" ".join(words[i * 135 : (i + 1) * 135]) for i in range(count)]
    model = get_model()
    model.encode(texts[:32], batch_size=32)  # warm-up
    result = {"items": count, "mean_tokens": round(sum(count_tokens(t) for t in texts) / count, 1)}
    with timed(result):
        model.encode(texts, batch_size=32, normalize_embeddings=True, convert_to_numpy=True)
    return rates(result)


def rates(result: dict) -> dict:
    """Items per wall second and per CPU second (the latter holds up on a busy machine)."""
    result["per_s"] = round(result["items"] / result["wall_s"], 3)
    result["per_cpu_s"] = round(result["items"] / result["cpu_s"], 3)
    return result


def corpus_pages(pdf_dir: str, count: int, dpi: int = 300) -> list:
    """The first ``count`` pages of the scanned PDFs under ``pdf_dir``, rendered as docsync does."""
    from pathlib import Path

    import pypdfium2 as pdfium

    images = []
    for path in sorted(Path(pdf_dir).rglob("scan-*.pdf")):
        pdf = pdfium.PdfDocument(str(path))
        for page in pdf:
            images.append(page.render(scale=dpi / 72, grayscale=True).to_pil())
            if len(images) >= count:
                return images
    return images


def ocr(count: int, workers: int, pdf_dir: str | None = None) -> dict:
    """Pages/s of tesseract (OMP_THREAD_LIMIT=1) on 300 dpi scanned pages, ``workers`` in parallel:
    the corpus's own scanned pages when ``pdf_dir`` is given, generated ones otherwise."""
    from bench.corpus import scanned_page_images
    from docsync.ocr import ocr_images

    images = corpus_pages(pdf_dir, count) if pdf_dir else scanned_page_images(count)
    result: dict = {"items": len(images), "workers": workers, "pages_from": pdf_dir or "generated"}
    with timed(result):
        pages = list(ocr_images(enumerate(images, 1), workers=workers))
    result["mean_confidence"] = round(sum(p.confidence for p in pages) / len(pages), 1)
    return rates(result)


def qdrant(count: int) -> dict:
    """Points/s upserted into embedded (local-mode) Qdrant, docsync-like payloads, batches of 256."""
    import numpy as np
    from qdrant_client import QdrantClient, models

    from docsync.index import UPSERT_BATCH

    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(count, 384)).astype("float32")
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    text = "lorem ipsum dolor sit amet " * 40
    with tempfile.TemporaryDirectory() as tmp:
        client = QdrantClient(path=tmp)
        client.create_collection("bench", vectors_config=models.VectorParams(size=384, distance=models.Distance.COSINE))
        points = [
            models.PointStruct(
                id=str(uuid.uuid4()),
                vector=vectors[i].tolist(),
                payload={"doc_id": f"d{i // 3}", "path": f"dir/doc-{i // 3}.txt", "text": text,
                         "allowed_principals": ["group:staff"], "denied_principals": []},
            )
            for i in range(count)
        ]
        result: dict = {"items": count}
        with timed(result):
            for start in range(0, count, UPSERT_BATCH):
                client.upsert("bench", points=points[start : start + UPSERT_BATCH], wait=True)
        client.close()
    return rates(result)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("stage", choices=["embed", "ocr", "qdrant"])
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--pdf-dir", help="ocr: take the scanned pages of this corpus")
    args = parser.parse_args()
    if args.stage == "embed":
        emit(embed(args.count))
    elif args.stage == "ocr":
        emit(ocr(args.count, args.workers, args.pdf_dir))
    else:
        emit(qdrant(args.count))


if __name__ == "__main__":
    main()
