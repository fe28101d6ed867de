"""The `VectorStore` contract shared by the embedded (Qdrant Edge) and server (qdrant-client) stores."""

from __future__ import annotations

import re
import uuid
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Literal

from core.errors import CollectionNotFoundError
from core.types import ScoredChunk

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


_COLLECTION_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")


def check_collection_name(collection: str) -> str:
    """Return `collection` when it is a valid name, else raise a ValueError that says the rule."""
    # Names become folder names of the embedded store, so they stay portable and path-safe.
    if not isinstance(collection, str) or not _COLLECTION_NAME.fullmatch(collection):
        raise ValueError(
            f"Invalid collection name {collection!r}: use 1 to 64 letters, digits, '-' or '_' (for example 'my-docs')."
        )
    return collection


def collection_not_found(collection: str) -> CollectionNotFoundError:
    """The error for an absent collection, with what to do next."""
    return CollectionNotFoundError(
        f"The collection '{collection}' does not exist. Create it (rag collections create {collection}) "
        "or ingest documents into it first."
    )


def check_query_spec(spec: QuerySpec) -> None:
    """Reject a search request that no store could answer, with a ValueError that says why."""
    if spec.top_k <= 0 or spec.candidates <= 0:
        raise ValueError(
            f"top_k and candidates must be > 0 (got top_k={spec.top_k}, candidates={spec.candidates})"
        )
    if spec.mode not in ("hybrid", "dense", "sparse"):
        raise ValueError(f"Unknown search mode {spec.mode!r}: use 'hybrid', 'dense' or 'sparse'.")
    if spec.fusion not in ("rrf", "dbsf"):
        raise ValueError(f"Unknown fusion {spec.fusion!r}: use 'rrf' or 'dbsf'.")
    if spec.mode in ("hybrid", "dense") and spec.dense is None:
        raise ValueError(f"A {spec.mode} search needs a dense query vector.")
    if spec.mode in ("hybrid", "sparse") and spec.sparse is None:
        raise ValueError(f"A {spec.mode} search needs a sparse query vector.")


def check_point_id(point_id: str) -> str:
    """The canonical form of a UUID point id; a ValueError for anything else."""
    try:
        return str(uuid.UUID(str(point_id)))
    except ValueError:
        raise ValueError(f"Point ids must be UUID strings (got {point_id!r}).") from None


def scored_chunk(point_id: Any, score: float, payload: dict[str, Any] | None) -> ScoredChunk:
    """A search result from a backend's id, score and payload (the chunk text is `payload['text']`)."""
    payload = dict(payload or {})
    return ScoredChunk(
        id=str(point_id), score=float(score), text=str(payload.get("text", "")), payload=payload
    )
