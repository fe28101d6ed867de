"""The embedded store: Qdrant Edge in this process, one shard per collection under a root folder."""

from __future__ import annotations

import json
import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import qdrant_edge as edge

from core.errors import StoreBusyError, StoreError
from core.types import ScoredChunk
from store.base import (
    DENSE,
    SPARSE,
    Filters,
    Point,
    QuerySpec,
    SparseVec,
    VectorStore,
    check_collection_name,
    check_point_id,
    check_query_spec,
    collection_not_found,
    scored_chunk,
)
from store.filters import edge_filter

CONFIG_FILE = "edge_config.json"
INDEXED_FIELDS = ("document_id", "file_type", "level")
_WRITE_BATCH = 512
_SCROLL_PAGE = 1000


@dataclass
class _OpenShard:
    """One open Edge shard and the lock that makes every read and write on it one step."""

    shard: edge.EdgeShard
    lock: threading.RLock = field(default_factory=threading.RLock)
    users: int = 0
    closed: bool = False


class _ShardRegistry:
    """The shards open in this process, shared by every EdgeStore.

    Edge lets one opener hold a shard (a second open fails even in the same process), so
    two EdgeStore objects on the same folder must share one handle and one lock.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._open: dict[Path, _OpenShard] = {}

    def acquire(
        self, path: Path, collection: str, config: edge.EdgeConfig | None = None
    ) -> _OpenShard:
        """The open shard at `path`, opened (or created with `config`) on first use."""
        with self._lock:
            entry = self._open.get(path)
            if entry is None:
                entry = _OpenShard(shard=_open_shard(path, collection, config))
                self._open[path] = entry
            entry.users += 1
            return entry

    def release(self, path: Path) -> None:
        """One user is done with the shard; the last one flushes and closes it."""
        with self._lock:
            entry = self._open.get(path)
            if entry is None:
                return
            entry.users -= 1
            if entry.users <= 0:
                del self._open[path]
                _close(entry)

    def discard(self, path: Path) -> None:
        """Close the shard for every user (its collection is being deleted)."""
        with self._lock:
            entry = self._open.pop(path, None)
            if entry is not None:
                _close(entry)


def _open_shard(path: Path, collection: str, config: edge.EdgeConfig | None) -> edge.EdgeShard:
    try:
        if config is not None and not (path / CONFIG_FILE).exists():
            return edge.EdgeShard.create(str(path), config)
        return edge.EdgeShard.load(str(path))
    except Exception as exc:  # Edge raises a bare Exception; its text tells the cases apart.
        if "WouldBlock" in str(exc):
            raise StoreBusyError(
                f"The collection '{collection}' is open in another process (the web app or another rag command). "
                "Stop that process, or set RAG_QDRANT_URL to use a Qdrant server that several processes can share."
            ) from exc
        raise StoreError(f"Cannot open the collection '{collection}' at {path}: {exc}") from exc


def _close(entry: _OpenShard) -> None:
    with entry.lock:
        if not entry.closed:
            entry.closed = True
            entry.shard.flush()
            entry.shard.close()


_REGISTRY = _ShardRegistry()


class EdgeStore(VectorStore):
    """Collections as Qdrant Edge shards in `root/<collection>/`, opened lazily and kept open.

    One process owns a shard at a time; a second process gets a StoreBusyError that says
    what to do. Within the process one lock per shard serialises writes against reads, so
    `replace_document` is atomic for every reader.
    """

    name = "edge"

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)
        self._held: dict[Path, _OpenShard] = {}
        self._held_lock = threading.Lock()

    # Collections

    def list_collections(self) -> list[str]:
        """Names of the folders under the root that hold a shard, sorted."""
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if (p / CONFIG_FILE).is_file())

    def collection_exists(self, collection: str) -> bool:
        """Whether `root/<collection>/` holds a shard."""
        return (self._path(collection) / CONFIG_FILE).is_file()

    def create_collection(self, collection: str, dense_dim: int) -> None:
        """Create a shard with a cosine dense vector of `dense_dim` and an IDF sparse vector."""
        if dense_dim <= 0:
            raise ValueError(f"dense_dim must be > 0 (got {dense_dim})")
        path = self._path(collection)
        if self.collection_exists(collection):
            _check_dimension(collection, path, dense_dim)
            return
        config = edge.EdgeConfig(
            vectors={DENSE: edge.EdgeVectorParams(size=dense_dim, distance=edge.Distance.Cosine)},
            # IDF is computed by the engine, so BM25 documents only carry term-frequency weights.
            sparse_vectors={SPARSE: edge.EdgeSparseVectorParams(modifier=edge.Modifier.Idf)},
        )
        self.root.mkdir(parents=True, exist_ok=True)
        with self._shard(collection, config) as shard:
            for name in INDEXED_FIELDS:
                shard.update(
                    edge.UpdateOperation.create_field_index(name, edge.PayloadSchemaType.Keyword)
                )
            shard.flush()

    def delete_collection(self, collection: str) -> None:
        """Close the shard and remove its folder."""
        path = self._path(collection)
        if not self.collection_exists(collection):
            raise collection_not_found(collection)
        with self._held_lock:
            self._held.pop(path, None)
        _REGISTRY.discard(path)
        shutil.rmtree(path)

    # Writes

    def upsert(self, collection: str, points: list[Point]) -> None:
        """Insert or overwrite points, then flush."""
        edge_points = [_to_edge_point(p) for p in points]
        with self._shard(collection) as shard:
            _upsert(shard, edge_points)
            shard.flush()

    def replace_document(self, collection: str, document_id: str, points: list[Point]) -> None:
        """Delete the document's points and upsert `points` while holding the shard's lock."""
        edge_points = [_to_edge_point(p) for p in points]
        with self._shard(collection) as shard:
            # Readers wait on the same lock, so none sees the document half-replaced.
            shard.update(
                edge.UpdateOperation.delete_points_by_filter(_document_filter(document_id))
            )
            _upsert(shard, edge_points)
            shard.flush()

    def delete_document(self, collection: str, document_id: str) -> int:
        """Delete every point of a document; returns how many were deleted."""
        with self._shard(collection) as shard:
            document = _document_filter(document_id)
            deleted = shard.count(edge.CountRequest(exact=True, filter=document))
            if deleted:
                shard.update(edge.UpdateOperation.delete_points_by_filter(document))
                shard.flush()
            return deleted

    # Reads

    def query(self, collection: str, spec: QuerySpec) -> list[ScoredChunk]:
        """One Edge query: a nearest search on one vector, or two prefetches fused by RRF or DBSF."""
        check_query_spec(spec)
        request = _query_request(spec)
        with self._shard(collection) as shard:
            if request is None:
                return []
            found = shard.query(request)
        return [scored_chunk(p.id, p.score, p.payload) for p in found]

    def scroll(
        self, collection: str, filters: Filters | None = None, limit: int | None = None
    ) -> list[ScoredChunk]:
        """Points matching the filters, in id order, with payloads (parents included)."""
        if limit is not None and limit <= 0:
            raise ValueError(f"limit must be > 0 (got {limit})")
        condition = edge_filter(filters)
        found: list[ScoredChunk] = []
        offset: Any = None
        with self._shard(collection) as shard:
            while limit is None or len(found) < limit:
                page = _SCROLL_PAGE if limit is None else min(_SCROLL_PAGE, limit - len(found))
                records, offset = shard.scroll(
                    edge.ScrollRequest(
                        offset=offset,
                        limit=page,
                        filter=condition,
                        with_payload=True,
                        with_vector=False,
                    )
                )
                found.extend(scored_chunk(r.id, 0.0, r.payload) for r in records)
                if offset is None:
                    break
        return found

    def retrieve(self, collection: str, ids: list[str]) -> list[ScoredChunk]:
        """Points by id in the order asked (missing ids left out), parents included."""
        wanted = list(dict.fromkeys(check_point_id(i) for i in ids))
        if not wanted:
            return []
        with self._shard(collection) as shard:
            records = shard.retrieve(wanted, with_payload=True, with_vector=False)
        by_id = {str(r.id): r for r in records}
        return [scored_chunk(i, 0.0, by_id[i].payload) for i in wanted if i in by_id]

    def count(self, collection: str, filters: Filters | None = None) -> int:
        """Exact number of points matching the filters."""
        with self._shard(collection) as shard:
            return shard.count(edge.CountRequest(exact=True, filter=edge_filter(filters)))

    def close(self) -> None:
        """Release this store's shards; the last user of a shard flushes and closes it."""
        with self._held_lock:
            paths, self._held = list(self._held), {}
        for path in paths:
            _REGISTRY.release(path)

    # Plumbing

    def _path(self, collection: str) -> Path:
        return (self.root / check_collection_name(collection)).absolute()

    @contextmanager
    def _shard(
        self, collection: str, config: edge.EdgeConfig | None = None
    ) -> Iterator[edge.EdgeShard]:
        """The collection's open shard, with its lock held for the whole block."""
        path = self._path(collection)
        if config is None and not (path / CONFIG_FILE).is_file():
            raise collection_not_found(collection)
        with self._held_lock:
            entry = self._held.get(path)
            if entry is None or entry.closed:
                entry = _REGISTRY.acquire(path, collection, config)
                self._held[path] = entry
        with entry.lock:
            if entry.closed:  # deleted by another thread since we looked it up
                raise collection_not_found(collection)
            yield entry.shard


def _check_dimension(collection: str, path: Path, dense_dim: int) -> None:
    stored = json.loads((path / CONFIG_FILE).read_text())["vectors"][DENSE]["size"]
    if stored != dense_dim:
        raise StoreError(
            f"The collection '{collection}' holds {stored}-dimensional vectors, not {dense_dim}: "
            "use the embedding model it was built with, or delete the collection and ingest again."
        )


def _to_edge_point(point: Point) -> edge.Point:
    vectors: dict[str, Any] = {}
    if point.dense is not None:
        vectors[DENSE] = [float(x) for x in point.dense]
    if point.sparse is not None and point.sparse.indices:
        vectors[SPARSE] = _sparse(point.sparse)
    # A point with no vectors (a parent chunk) is kept for retrieve/scroll; searches skip it.
    return edge.Point(check_point_id(point.id), vectors, point.payload)


def _sparse(vector: SparseVec) -> edge.SparseVector:
    return edge.SparseVector(list(vector.indices), [float(v) for v in vector.values])


def _upsert(shard: edge.EdgeShard, points: list[edge.Point]) -> None:
    for start in range(0, len(points), _WRITE_BATCH):
        shard.update(edge.UpdateOperation.upsert_points(points[start : start + _WRITE_BATCH]))


def _document_filter(document_id: str) -> edge.Filter:
    return edge.Filter(
        must=[edge.FieldCondition("document_id", match=edge.MatchValue(document_id))]
    )


def _query_request(spec: QuerySpec) -> edge.QueryRequest | None:
    """The Edge request for `spec`, or None when the query vectors are empty."""
    searches: list[tuple[str, Any, float]] = []
    if spec.mode in ("hybrid", "dense") and spec.dense is not None:
        searches.append((DENSE, [float(x) for x in spec.dense], spec.weights[0]))
    if spec.mode in ("hybrid", "sparse") and spec.sparse is not None and spec.sparse.indices:
        searches.append((SPARSE, _sparse(spec.sparse), spec.weights[1]))
    if not searches:
        return None
    if spec.mode != "hybrid":
        name, vector, _ = searches[0]
        return edge.QueryRequest(
            limit=spec.top_k,
            query=edge.Query.Nearest(vector, using=name),
            filter=edge_filter(spec.filters, (name,)),
            with_payload=True,
        )
    prefetches = [
        edge.Prefetch(
            limit=spec.candidates,
            query=edge.Query.Nearest(vector, using=name),
            filter=edge_filter(spec.filters, (name,)),
        )
        for name, vector, _ in searches
    ]
    fusion: Any = (
        edge.Fusion.Dbsf()
        if spec.fusion == "dbsf"
        else edge.Fusion.Rrf(spec.rrf_k, weights=[w for *_, w in searches])
    )
    return edge.QueryRequest(
        limit=spec.top_k,
        prefetches=prefetches,
        query=fusion,
        filter=edge_filter(spec.filters),
        with_payload=True,
    )
