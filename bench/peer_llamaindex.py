"""Child (LlamaIndex venv): one sync of a text share with LlamaIndex's ``IngestionPipeline``
(persisted docstore, upserts-and-delete) into embedded Qdrant."""

from __future__ import annotations

import os
from pathlib import Path

from bench.child import PII_ENTITIES, emit, offline_tldextract, peer_args, presidio_nlp_config, timed

ACL_SUFFIX = ".acl.json"


def presidio_transform():
    """A TransformComponent anonymizing every node's text with Presidio (docsync's entities,
    replaced by their type), first in the pipeline: the docstore's dedup runs before it, so
    unchanged documents are not anonymized again."""
    from llama_index.core.schema import TransformComponent
    from presidio_analyzer import AnalyzerEngine
    from presidio_analyzer.nlp_engine import NlpEngineProvider
    from presidio_anonymizer import AnonymizerEngine

    offline_tldextract()
    analyzer = AnalyzerEngine(nlp_engine=NlpEngineProvider(nlp_configuration=presidio_nlp_config()).create_engine())
    anonymizer = AnonymizerEngine()

    class PresidioAnonymize(TransformComponent):
        def __call__(self, nodes, **kwargs):
            # New nodes, the inputs untouched: the pipeline stores the *input* documents' hashes in
            # its docstore afterwards; changed in place, they would never match on the next run.
            out = []
            for node in nodes:
                text = node.get_content()
                found = analyzer.analyze(text=text, language="en", entities=PII_ENTITIES)
                copy = node.model_copy(deep=True)
                copy.set_content(anonymizer.anonymize(text=text, analyzer_results=found).text)
                out.append(copy)
            return out

    return PresidioAnonymize()


def main() -> None:
    args, work = peer_args()
    os.environ.setdefault("LLAMA_INDEX_CACHE_DIR", str(work / "cache"))

    from llama_index.core import Document
    from llama_index.core.ingestion import DocstoreStrategy, IngestionPipeline
    from llama_index.core.node_parser import SentenceSplitter
    from llama_index.core.storage.docstore import SimpleDocumentStore
    from llama_index.embeddings.huggingface import HuggingFaceEmbedding
    from llama_index.vector_stores.qdrant import QdrantVectorStore
    from qdrant_client import QdrantClient

    result: dict = {}
    with timed(result):
        embed = HuggingFaceEmbedding(model_name=args.model, device="cpu", embed_batch_size=32, normalize=True)
        tokenizer = embed._model.tokenizer
        splitter = SentenceSplitter(
            chunk_size=200, chunk_overlap=32, tokenizer=lambda t: tokenizer.encode(t, add_special_tokens=False)
        )
        client = QdrantClient(path=str(work / "qdrant"))
        pipeline = IngestionPipeline(
            transformations=[presidio_transform(), splitter, embed] if args.anonymize else [splitter, embed],
            docstore=SimpleDocumentStore(),
            vector_store=QdrantVectorStore(client=client, collection_name="bench"),
            docstore_strategy=DocstoreStrategy.UPSERTS_AND_DELETE,
        )
        persist_dir = work / "pipeline"
        if persist_dir.exists():
            pipeline.load(str(persist_dir))
        share = Path(args.share)
        documents = [
            Document(text=p.read_text(encoding="utf-8"), id_=p.relative_to(share).as_posix(),
                     metadata={"path": p.relative_to(share).as_posix()})
            for p in sorted(share.rglob("*"))
            if p.is_file() and not p.name.endswith(ACL_SUFFIX)
        ]
        nodes = pipeline.run(documents=documents)
        pipeline.persist(str(persist_dir))
        client.close()
    result["embedded_texts"] = len(nodes)  # run() returns only the nodes it transformed (embedded)
    result["summary"] = {"documents": len(documents), "docstore_docs": len(pipeline.docstore.get_all_document_hashes())}
    emit(result)


if __name__ == "__main__":
    main()
