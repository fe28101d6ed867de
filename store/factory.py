"""Choose the vector store from the settings: a Qdrant server when a URL is set, else Qdrant Edge."""

from __future__ import annotations

from core.settings import Settings
from store.base import VectorStore
from store.edge import EdgeStore
from store.server import ServerStore


def make_store(settings: Settings) -> VectorStore:
    """ServerStore for `settings.qdrant_url` (":memory:" runs in-process), else EdgeStore under the stores folder."""
    if settings.qdrant_url:
        return ServerStore(url=settings.qdrant_url, api_key=settings.qdrant_api_key)
    return EdgeStore(settings.stores_dir / "edge")
