"""The embedded store: Qdrant Edge in this process, one shard per collection under a root folder."""

from __future__ import annotations

import json
import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import qdrant_edge as edge

from core.errors import CollectionNotFoundError, StoreBusyError, StoreError
from store.base import DENSE, SPARSE, Record, SearchPlan, SparseVec, StoredPoint, VectorStore
from store.filters import Where, edge_filter

CONFIG_FILE = "edge_config.json"
_INDEX_TYPES = {"keyword": edge.PayloadSchemaType.Keyword, "float": edge.PayloadSchemaType.Float}


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
    what to do. Within the process one lock per shard serialises writes against reads, so a
    replace is finished as soon as it commits (`replace_grace` 0); Edge's write-ahead log
    keeps every write in order across a crash, so the replace protocol of the base holds.
    """

    name = "edge"
    write_batch = 512

    def __init__(self, root: Path | str) -> None:
        super().__init__()
        self.root = Path(root)
        self._held: dict[Path, _OpenShard] = {}
        self._held_lock = threading.Lock()

    def close(self) -> None:
        """Release this store's shards; the last user of a shard flushes and closes it."""
        with self._held_lock:
            paths, self._held = list(self._held), {}
        for path in paths:
            _REGISTRY.release(path)

    # Collections

    def _names(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return [p.name for p in self.root.iterdir() if (p / CONFIG_FILE).is_file()]

    def _has(self, collection: str) -> bool:
        return (self._path(collection) / CONFIG_FILE).is_file()

    def _make(self, collection: str, dense_dim: int) -> None:
        config = edge.EdgeConfig(
            vectors={DENSE: edge.EdgeVectorParams(size=dense_dim, distance=edge.Distance.Cosine)},
            # IDF is computed by the engine, so BM25 documents only carry term-frequency weights.
            sparse_vectors={SPARSE: edge.EdgeSparseVectorParams(modifier=edge.Modifier.Idf)},
        )
        self.root.mkdir(parents=True, exist_ok=True)
        self._entry(collection, config)

    def _dense_dim(self, collection: str) -> int | None:
        config = json.loads((self._path(collection) / CONFIG_FILE).read_text())
        return config["vectors"][DENSE]["size"]

    def _drop(self, collection: str) -> None:
        path = self._path(collection)
        with self._held_lock:
            self._held.pop(path, None)
        _REGISTRY.discard(path)
        shutil.rmtree(path)

    @contextmanager
    def _open(self, collection: str) -> Iterator[edge.EdgeShard]:
        """The collection's open shard, with its lock held for the whole block."""
        if not self._has(collection):
            raise CollectionNotFoundError(collection)
        entry = self._entry(collection)
        with entry.lock:
            if entry.closed:  # deleted by another thread since we looked it up
                raise CollectionNotFoundError(collection)
            yield entry.shard

    def _ensure_indexes(
        self, shard: edge.EdgeShard, fields: dict[str, Literal["keyword", "float"]]
    ) -> None:
        have = set(shard.info().payload_schema)
        for name, kind in fields.items():
            if name not in have:
                shard.update(edge.UpdateOperation.create_field_index(name, _INDEX_TYPES[kind]))

    # Points

    def _write(self, shard: edge.EdgeShard, points: list[StoredPoint]) -> None:
        shard.update(edge.UpdateOperation.upsert_points([_edge_point(p) for p in points]))

    def _delete(self, shard: edge.EdgeShard, where: Where) -> None:
        shard.update(edge.UpdateOperation.delete_points_by_filter(edge_filter(where)))

    def _set_payload(self, shard: edge.EdgeShard, where: Where, payload: dict[str, Any]) -> None:
        shard.update(edge.UpdateOperation.set_payload_by_filter(edge_filter(where), payload))

    def _scroll(
        self, shard: edge.EdgeShard, where: Where, offset: Any, limit: int
    ) -> tuple[list[Record], Any]:
        request = edge.ScrollRequest(
            offset=offset,
            limit=limit,
            filter=edge_filter(where),
            with_payload=True,
            with_vector=False,
        )
        records, offset = shard.scroll(request)
        return [Record(str(r.id), 0.0, r.payload or {}) for r in records], offset

    def _count(self, shard: edge.EdgeShard, where: Where) -> int:
        return shard.count(edge.CountRequest(exact=True, filter=edge_filter(where)))

    def _search(self, shard: edge.EdgeShard, plan: SearchPlan) -> list[Record]:
        return self._search_many(shard, [plan])[0]

    def _search_many(self, shard: edge.EdgeShard, plans: list[SearchPlan]) -> list[list[Record]]:
        if not plans:
            return []
        if len(plans) == 1:
            found = [shard.query(_request(plans[0]))]
        else:
            found = shard.query_batch(edge.QueryBatchRequest([_request(plan) for plan in plans]))
        return [[Record(str(p.id), p.score, p.payload or {}) for p in points] for points in found]

    def _optimize(self, shard: edge.EdgeShard) -> bool:
        # Edge builds no index by itself: until this runs, new points are searched by brute force.
        return bool(shard.optimize())

    def _flush(self, shard: edge.EdgeShard) -> None:
        shard.flush()

    # Plumbing

    def _path(self, collection: str) -> Path:
        # The base checks every name before a primitive sees it, so it is a safe folder name.
        return (self.root / collection).absolute()

    def _entry(self, collection: str, config: edge.EdgeConfig | None = None) -> _OpenShard:
        """This store's hold on the collection's shard, taken (or created with `config`) on first use."""
        path = self._path(collection)
        with self._held_lock:
            entry = self._held.get(path)
            if entry is None or entry.closed:
                entry = _REGISTRY.acquire(path, collection, config)
                self._held[path] = entry
            return entry


def _request(plan: SearchPlan) -> edge.QueryRequest:
    """The Edge query of a search plan: one nearest search, or prefetches fused by RRF or DBSF."""
    nearest = [
        (edge.Query.Nearest(_edge_vector(s.vector), using=s.using), edge_filter(s.where))
        for s in plan.searches
    ]
    if not plan.fused:
        query, where = nearest[0]
        return edge.QueryRequest(limit=plan.top_k, query=query, filter=where, with_payload=True)
    fusion: Any = (
        edge.Fusion.Dbsf()
        if plan.fusion == "dbsf"
        else edge.Fusion.Rrf(plan.rrf_k, weights=[s.weight for s in plan.searches])
    )
    return edge.QueryRequest(
        limit=plan.top_k,
        prefetches=[edge.Prefetch(limit=plan.candidates, query=q, filter=w) for q, w in nearest],
        query=fusion,
        filter=edge_filter(plan.where),
        with_payload=True,
    )


def _edge_point(point: StoredPoint) -> edge.Point:
    vectors = {name: _edge_vector(vector) for name, vector in point.vectors.items()}
    return edge.Point(point.id, vectors, point.payload)


def _edge_vector(vector: list[float] | SparseVec) -> Any:
    if isinstance(vector, SparseVec):
        return edge.SparseVector(vector.indices, vector.values)
    return vector
