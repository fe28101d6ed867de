"""The `VectorStore` contract shared by the embedded (Qdrant Edge) and server (qdrant-client) stores."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Literal

from rag.schema import ScoredChunk

DENSE = "dense"
SPARSE = "sparse"

SearchMode = Literal["hybrid", "dense", "sparse"]
# Filters: payload field -> one value or a list of accepted values (all fields must match).
Filters = dict[str, Any]


@dataclass
class SparseVec:
    """A sparse vector: parallel lists of term indices and weights."""

    indices: list[int]
    values: list[float]


@dataclass
class Point:
    """One stored chunk. Parents of recursive chunking are stored with no vectors."""

    id: str
    payload: dict[str, Any]
    dense: list[float] | None = None
    sparse: SparseVec | None = None


@dataclass
class QuerySpec:
    """A search request. `weights` are the RRF weights of (dense, sparse) in hybrid mode."""

    dense: list[float] | None = None
    sparse: SparseVec | None = None
    mode: SearchMode = "hybrid"
    top_k: int = 5
    candidates: int = 40
    filters: Filters = field(default_factory=dict)
    fusion: Literal["rrf", "dbsf"] = "rrf"
    rrf_k: int = 60
    weights: tuple[float, float] = (1.0, 1.0)


class VectorStore(ABC):
    """Collections of chunks with dense + sparse vectors and payloads."""

    name: str = "abstract"

    @abstractmethod
    def list_collections(self) -> list[str]:
        """Names of the existing collections, sorted."""

    @abstractmethod
    def collection_exists(self, collection: str) -> bool: ...

    @abstractmethod
    def create_collection(self, collection: str, dense_dim: int) -> None:
        """Create an empty collection; a no-op when it exists with the same dimension."""

    @abstractmethod
    def delete_collection(self, collection: str) -> None:
        """Delete a collection and all its points; CollectionNotFoundError when absent."""

    @abstractmethod
    def upsert(self, collection: str, points: list[Point]) -> None: ...

    @abstractmethod
    def replace_document(self, collection: str, document_id: str, points: list[Point]) -> None:
        """Swap all points of one document for `points` so that no query sees a mix of both."""

    @abstractmethod
    def delete_document(self, collection: str, document_id: str) -> int:
        """Delete every point of a document; returns how many were deleted."""

    @abstractmethod
    def query(self, collection: str, spec: QuerySpec) -> list[ScoredChunk]:
        """Best `spec.top_k` points for the query, best first. Points with no vectors never match."""

    @abstractmethod
    def scroll(self, collection: str, filters: Filters | None = None, limit: int | None = None) -> list[ScoredChunk]:
        """Points matching the filters (score 0), in id order, payload only."""

    @abstractmethod
    def retrieve(self, collection: str, ids: list[str]) -> list[ScoredChunk]:
        """Points by id (missing ids are left out)."""

    @abstractmethod
    def count(self, collection: str, filters: Filters | None = None) -> int: ...

    def close(self) -> None:
        """Release files and connections."""
