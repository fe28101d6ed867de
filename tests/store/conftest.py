"""Store fixtures: every contract test runs on the embedded (Edge) and the server (qdrant-client) store."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from qdrant_client import QdrantClient

from store.base import VectorStore
from store.edge import EdgeStore
from store.server import ServerStore


def build_store(kind: str, root: Path) -> VectorStore:
    """A fresh, empty store of one kind: "edge" on `root`, "server" on an in-process qdrant-client."""
    if kind == "edge":
        return EdgeStore(root)
    return ServerStore(client=QdrantClient(":memory:"))


@pytest.fixture(params=["edge", "server"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[VectorStore]:
    """An empty store, once per backend."""
    built = build_store(request.param, tmp_path / "edge")
    yield built
    built.close()


@pytest.fixture
def edge_store(tmp_path: Path) -> Iterator[EdgeStore]:
    """An empty embedded store on a temporary folder."""
    built = EdgeStore(tmp_path / "edge")
    yield built
    built.close()


@pytest.fixture(name="build_store")
def build_store_fixture() -> Callable[[str, Path], VectorStore]:
    """The store builder, for tests that need both backends side by side."""
    return build_store
