"""Child (LangChain venv): one sync of a text share with LangChain's indexing API
(``index()`` + ``SQLRecordManager``, cleanup="incremental") into embedded Qdrant."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from bench.child import PII_ENTITIES, emit, offline_tldextract, peer_args, presidio_nlp_config, timed

if TYPE_CHECKING:
    from collections.abc import Iterator

    from langchain_core.documents import Document

ACL_SUFFIX = ".acl.json"


def load_documents(share: Path) -> Iterator[Document]:
    from langchain_core.documents import Document

    for path in sorted(share.rglob("*")):
        if path.is_file() and not path.name.endswith(ACL_SUFFIX):
            rel = path.relative_to(share).as_posix()
            yield Document(page_content=path.read_text(encoding="utf-8"), metadata={"source": rel})


def anonymized(documents: Iterator[Document]) -> Iterator[Document]:
    """langchain-experimental's PresidioAnonymizer on every document before splitting and
    ``index()``: docsync's entities, replaced by their type (``<PERSON>``), no fake values."""
    from langchain_core.documents import Document
    from langchain_experimental.data_anonymizer import PresidioAnonymizer

    offline_tldextract()
    anonymizer = PresidioAnonymizer(analyzed_fields=PII_ENTITIES, languages_config=presidio_nlp_config(),
                                    add_default_faker_operators=False)
    for doc in documents:
        yield Document(page_content=anonymizer.anonymize(doc.page_content), metadata=doc.metadata)


def main() -> None:
    args, work = peer_args()

    from langchain_classic.indexes import SQLRecordManager
    from langchain_core.embeddings import Embeddings
    from langchain_core.indexing import index
    from langchain_huggingface import HuggingFaceEmbeddings
    from langchain_qdrant import QdrantVectorStore
    from langchain_text_splitters import RecursiveCharacterTextSplitter
    from qdrant_client import QdrantClient, models

    class Counting(Embeddings):
        def __init__(self, inner: Embeddings) -> None:
            self.inner, self.texts = inner, 0

        def embed_documents(self, texts: list[str]) -> list[list[float]]:
            self.texts += len(texts)
            return self.inner.embed_documents(texts)

        def embed_query(self, text: str) -> list[float]:
            return self.inner.embed_query(text)

    result: dict = {}
    with timed(result):
        embeddings = Counting(
            HuggingFaceEmbeddings(
                model_name=args.model,
                model_kwargs={"device": "cpu", "local_files_only": True},
                encode_kwargs={"normalize_embeddings": True, "batch_size": 32},
            )
        )
        splitter = RecursiveCharacterTextSplitter.from_huggingface_tokenizer(
            embeddings.inner._client.tokenizer, chunk_size=200, chunk_overlap=32
        )
        client = QdrantClient(path=str(work / "qdrant"))
        if not client.collection_exists("bench"):
            client.create_collection(
                "bench", vectors_config=models.VectorParams(size=384, distance=models.Distance.COSINE)
            )
        store = QdrantVectorStore(client=client, collection_name="bench", embedding=embeddings)
        manager = SQLRecordManager("qdrant/bench", db_url=f"sqlite:///{work / 'records.db'}")
        manager.create_schema()
        documents = load_documents(Path(args.share))
        chunks = splitter.split_documents(anonymized(documents) if args.anonymize else documents)
        # Default key encoder (SHA-1 based UUIDs): Qdrant accepts only UUID or integer point IDs.
        outcome = index(chunks, manager, store, cleanup="incremental", source_id_key="source", batch_size=100)
        client.close()
    result["embedded_texts"] = embeddings.texts
    result["summary"] = dict(outcome) | {"chunks": len(chunks)}
    emit(result)


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    main()
