"""Data sets ingested into store collections once, keyed by their documents and the chunking."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from evaluation.datasets import Dataset
from ingest.pipeline import ChunkingOptions

CACHE_FORMAT = 12  # 2: the document name in the sparse text too; 3: document dates in the payload;
# 4: each document's capitalised terms in the payload; 5: HTML and DOCX list items keep their markers,
# <pre> blocks are fenced; 6: PDF words broken at a line end are mended ("transmission", "stock-based");
# 7: a chunk is embedded with the headings above it that its text lacks; 8: HTML and DOCX headings
# are written as Markdown writes them ("## Steps"); 9: Markdown comments read as blank space; 10: a PDF's
# chunks are embedded without its outline's headings; 11: a sentence too long for a chunk is cut at line
# ends and never inside a number; 12: Markdown's underlined headings are headings and its chunks are
# embedded with links read as their text


@dataclass
class IngestedCollection:
    """A data set's documents in a store collection, ready to query."""

    collection: str
    chunks: int
    files: int
    failed: list[str]
    seconds: float
    reused: bool


def embedding_space(service: Any) -> str:
    """The embedding model setting, with @int8 when the quantized export embeds (its vectors differ)."""
    from retrieval.embedder import vector_space

    service.embedder.warm_up()  # an auto backend settles (ONNX, or torch for a model it cannot export)
    return vector_space(service.settings.embedding_model, service.embedder.backend)


class CollectionCache:
    """Ingested data set collections, keyed by the documents (relative paths and hashes), the
    chunking and the embedder, so reruns, copies of a data set and grid cells with the same
    chunking reuse one ingestion."""

    def __init__(self, service: Any, root: Path | None = None) -> None:
        self.service = service
        self.root = root or service.settings.cache_dir / "eval"

    def key(self, dataset: Dataset, options: ChunkingOptions) -> str:
        """sha256 over everything that changes the stored chunks."""
        digest = hashlib.sha256()
        header = {
            "format": CACHE_FORMAT,
            "chunking": asdict(options),
            "embedder": embedding_space(self.service),
        }
        digest.update(json.dumps(header, sort_keys=True).encode())
        for path in dataset.document_files():
            digest.update(dataset.relative_document(path).encode() + b"\0")
            digest.update(hashlib.sha256(path.read_bytes()).digest())
        return digest.hexdigest()

    def ingest(
        self, dataset: Dataset, options: ChunkingOptions, progress: Callable[[dict[str, Any]], None] | None = None
    ) -> IngestedCollection:
        """The collection holding `dataset`'s documents chunked with `options`; ingested once."""
        key = self.key(dataset, options)
        collection = f"eval-{key[:20]}"
        marker = self.root / f"{key}.json"
        store = self.service.store
        if marker.is_file() and store.collection_exists(collection):
            info = json.loads(marker.read_text(encoding="utf-8"))
            return IngestedCollection(collection, info["chunks"], info["files"], info["failed"], 0.0, True)
        if store.collection_exists(collection):
            # A partial ingestion (interrupted): start again from empty.
            store.delete_collection(collection)
        report = self.service.ingest([dataset.documents_dir], collection, options, progress=progress)
        failed = [f"{f.path}: {f.error}" for f in report.failed]
        info = {"dataset": str(dataset.root), "chunking": asdict(options), "chunks": report.chunks_added,
                "files": len(report.files), "failed": failed, "seconds": report.seconds}
        self.root.mkdir(parents=True, exist_ok=True)
        marker.write_text(json.dumps(info, indent=1), encoding="utf-8")
        return IngestedCollection(collection, report.chunks_added, len(report.files), failed, report.seconds, False)
