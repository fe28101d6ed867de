"""Choose the vector store from the settings: a Qdrant server when a URL is set, else Qdrant Edge."""

from __future__ import annotations

import logging

from core.settings import Settings
from store.base import VectorStore
from store.edge import EdgeStore
from store.server import CollectionLayout, ServerStore

log = logging.getLogger(__name__)

# Settings that only a Qdrant server reads, with the value that means "not set".
_SERVER_ONLY = {
    "qdrant_shards": None,
    "qdrant_replication_factor": None,
    "qdrant_write_consistency": None,
    "qdrant_on_disk_payload": None,
    "qdrant_on_disk_vectors": None,
    "qdrant_quantization": "none",
}


def make_store(settings: Settings) -> VectorStore:
    """ServerStore for `settings.qdrant_url` (":memory:" runs in-process), else EdgeStore under the stores folder."""
    if settings.qdrant_url:
        return ServerStore(
            url=settings.qdrant_url, api_key=settings.qdrant_api_key, layout=collection_layout(settings)
        )
    ignored = [f"RAG_{name.upper()}" for name, unset in _SERVER_ONLY.items() if getattr(settings, name) != unset]
    if ignored:
        log.warning("%s apply to a Qdrant server only: set RAG_QDRANT_URL, or unset them "
                    "(the embedded store ignores them).", ", ".join(ignored))
    return EdgeStore(settings.stores_dir / "edge")


def collection_layout(settings: Settings) -> CollectionLayout:
    """How the server lays out new collections, from the RAG_QDRANT_* settings."""
    return CollectionLayout(
        shards=settings.qdrant_shards,
        replication_factor=settings.qdrant_replication_factor,
        write_consistency=settings.qdrant_write_consistency,
        on_disk_payload=settings.qdrant_on_disk_payload,
        on_disk_vectors=settings.qdrant_on_disk_vectors,
        quantization=settings.qdrant_quantization,
        oversampling=settings.qdrant_oversampling,
    )
