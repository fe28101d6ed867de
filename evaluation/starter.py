"""The pipeline a user would build from LlamaIndex's starter docs, measured beside ours.

It is LlamaIndex itself, as its starter example runs it: `SimpleDirectoryReader(dir).load_data()`
(with `llama-index-readers-file`, which `pip install llama-index` brings: pypdf, one document per
PDF page, `file_path` and `page_label` embedded with the text; files it cannot read are skipped
with a warning), `VectorStoreIndex.from_documents(docs)` with the default transformation
`SentenceSplitter(chunk_size=1024, chunk_overlap=20)` into the default in-memory vector store,
and `index.as_retriever(similarity_top_k=k)`: dense top-k, no reranker. Only the embedding model
is ours (the bundled MiniLM, the same one our pipeline uses), so the comparison isolates the
pipeline's choices. The built index is persisted under the cache folder, keyed by the files.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import time
from pathlib import Path
from typing import Any

from core.trace import Trace
from core.types import ScoredChunk
from evaluation.collection_cache import IngestedCollection, embedding_space
from evaluation.config import STARTER_LABEL, EvalConfig
from evaluation.datasets import Dataset

STARTER_CHUNK_SIZE = 1024
STARTER_CHUNK_OVERLAP = 20
STARTER_FORMAT = "llamaindex-starter-1"

log = logging.getLogger(__name__)


def starter_config(depth: int = 30) -> EvalConfig:
    """SentenceSplitter 1024/20, dense top-k, no reranker, retrieval only (no answers)."""
    return EvalConfig(
        chunker="sentence",
        chunk_size=STARTER_CHUNK_SIZE,
        chunk_overlap=STARTER_CHUNK_OVERLAP,
        retrieval="dense",
        fusion="rrf",
        sparse_gain=0.0,
        name_boost=0.0,
        recency_boost=0.0,
        reranker="none",
        depth=depth,
        answers=False,
        label=STARTER_LABEL,
        starter=True,
    )


class StarterRetriever:
    """LlamaIndex's starter index over one data set, answering `retrieve(collection, query, top_k)`
    with our `ScoredChunk`s so the runner scores it like our pipeline."""

    def __init__(self, index: Any, documents_dir: Path) -> None:
        self.index = index
        self.documents_dir = Path(documents_dir).resolve()

    def retrieve(self, collection: str, query: str, top_k: int = 5, filters: Any = None, *,
                 mode: str | None = None, weights: Any = None, trace: Trace | None = None) -> list[ScoredChunk]:
        """The `top_k` nearest nodes (dense: `mode` and fusion `weights` are ignored). `filters` are not
        supported: the starter's index has none."""
        if filters:
            raise ValueError("The LlamaIndex starter index cannot filter documents: run it without hard negatives.")
        t0 = time.perf_counter()
        nodes = self.index.as_retriever(similarity_top_k=top_k).retrieve(query)
        if trace is not None:
            trace.add_time("retrieve", (time.perf_counter() - t0) * 1000)
        return [self._chunk(n) for n in nodes]

    def _chunk(self, scored: Any) -> ScoredChunk:
        node = scored.node
        meta = dict(node.metadata or {})
        path = Path(str(meta.get("file_path", "")))
        try:
            source = path.resolve().relative_to(self.documents_dir).as_posix()
        except ValueError:
            source = str(meta.get("file_name") or path.name)
        label = str(meta.get("page_label", "1"))
        page = int(label) if label.isdigit() else 0
        payload = {"source": source, "file_name": path.name, "page": page, "page_label": label}
        return ScoredChunk(id=node.node_id, score=float(scored.score or 0.0), text=node.get_content(), payload=payload)


def build_starter(service: Any, dataset: Dataset, cache_root: Path, key: str) -> tuple[StarterRetriever, IngestedCollection]:
    """Load the persisted starter index for `key`, or build it the way the starter example does."""
    from llama_index.core import (
        SimpleDirectoryReader,
        StorageContext,
        VectorStoreIndex,
        load_index_from_storage,
    )
    from llama_index.core.node_parser import SentenceSplitter

    from ingest.chunkers import LlamaIndexEmbedding

    # Our embedder, in the batches of 64 texts the starter's figures were measured with.
    embed_model = LlamaIndexEmbedding(service.embedder, embed_batch_size=64)
    folder = cache_root / f"starter-{key[:20]}"
    marker = folder / "info.json"
    if marker.is_file():
        info = json.loads(marker.read_text(encoding="utf-8"))
        index = load_index_from_storage(StorageContext.from_defaults(persist_dir=str(folder)), embed_model=embed_model)
        collection = IngestedCollection(folder.name, info["chunks"], info["files"], info["failed"], 0.0, True)
        return StarterRetriever(index, dataset.documents_dir), collection
    started = time.perf_counter()
    files = dataset.document_files()
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):  # its reader prints skipped files; stdout may be JSON
        documents = SimpleDirectoryReader(input_dir=str(dataset.documents_dir), recursive=True).load_data()
    for line in printed.getvalue().splitlines():
        log.warning("LlamaIndex: %s", line)
    loaded = {Path(str(d.metadata.get("file_path", ""))).resolve() for d in documents}
    failed = [dataset.relative_document(p) + ": LlamaIndex's reader skipped it" for p in files if p.resolve() not in loaded]
    index = VectorStoreIndex.from_documents(
        documents,
        embed_model=embed_model,
        transformations=[SentenceSplitter(chunk_size=STARTER_CHUNK_SIZE, chunk_overlap=STARTER_CHUNK_OVERLAP)],
    )
    chunks = len(index.docstore.docs)
    folder.mkdir(parents=True, exist_ok=True)
    index.storage_context.persist(persist_dir=str(folder))
    seconds = time.perf_counter() - started
    info = {"dataset": str(dataset.root), "chunks": chunks, "files": len(files) - len(failed), "failed": failed,
            "seconds": seconds}
    marker.write_text(json.dumps(info, indent=1), encoding="utf-8")
    return StarterRetriever(index, dataset.documents_dir), IngestedCollection(
        folder.name, chunks, info["files"], failed, seconds, False)


def starter_key(cache: Any, dataset: Dataset) -> str:
    """The cache key of the starter index: the files, their hashes, the format and the embedder."""
    digest = hashlib.sha256()
    digest.update(json.dumps([STARTER_FORMAT, STARTER_CHUNK_SIZE, STARTER_CHUNK_OVERLAP,
                              embedding_space(cache.service)]).encode())
    for path in dataset.document_files():
        digest.update(dataset.relative_document(path).encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()
