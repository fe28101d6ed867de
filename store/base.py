"""The `VectorStore` contract, and the one implementation of it both backends share.

The base class owns everything that is the same on every backend: name and argument checks,
batching, scroll paging, turning a `QuerySpec` into a search, point conversion, the messages a
person sees, and the replace protocol that makes `replace_document` atomic. A backend (Qdrant
Edge in this process, a Qdrant server through qdrant-client) supplies the primitives below the
"Backend primitives" line: open a collection, write, delete, set payload, scroll a page, count,
search, flush.
"""

from __future__ import annotations

import re
import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

from core.errors import CollectionNotFoundError, StoreError
from core.types import ScoredChunk
from store.filters import Below, Filters, HasId, HasVector, Match, Where, user_where

DENSE = "dense"
SPARSE = "sparse"

SearchMode = Literal["hybrid", "dense", "sparse"]

# Fields the base keeps in each stored payload beside the caller's (never returned to callers).
RESERVED = "_store_"
_ID = "_store_id"  # the caller's point id (the stored id differs when a replace avoided a clash)
_VERSION = "_store_version"  # the replace that wrote the point
_STATE = "_store_state"  # NEW until that replace is finished, then LIVE; JOURNAL on a commit
_AT = "_store_at"  # when it was written, seconds since the epoch
_DOCUMENT = "_store_document"  # the document a journal point is about
NEW, LIVE, JOURNAL = "new", "live", "journal"
_JOURNAL_IDS = uuid.UUID("6f1d2c43-5b7e-4d0a-9c39-2f0f4a1e8b57")

# Payload indexes: the caller's usual filter fields, then the two the replace protocol looks
# up by (each index makes every flush slower; the protocol's other fields are only ever read
# together with an indexed one).
INDEXES: dict[str, Literal["keyword", "float"]] = {
    "document_id": "keyword",
    "file_type": "keyword",
    "level": "keyword",
    _ID: "keyword",
    _STATE: "keyword",
}


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


@dataclass(frozen=True)
class Record:
    """A point as a backend returns it: its stored id, score (0 outside searches) and payload."""

    id: str
    score: float
    payload: dict[str, Any]


@dataclass(frozen=True)
class StoredPoint:
    """A point as the base hands it to a backend: stored id, full payload, vectors by name."""

    id: str
    payload: dict[str, Any]
    vectors: dict[str, list[float] | SparseVec]


@dataclass(frozen=True)
class Search:
    """One nearest-neighbour search on the named vector, among the points `where` admits."""

    using: str
    vector: list[float] | SparseVec
    weight: float
    where: Where


@dataclass(frozen=True)
class SearchPlan:
    """A search built from a QuerySpec: one search, or several fused by RRF or DBSF."""

    searches: tuple[Search, ...]
    fused: bool  # False: the first search alone; True: each search a prefetch, then fusion
    fusion: Literal["rrf", "dbsf"]
    rrf_k: int
    top_k: int
    candidates: int
    where: Where


@dataclass(frozen=True)
class _Replace:
    """A committed replace, as its journal point records it."""

    id: str
    document: str
    version: str
    at: float


class VectorStore(ABC):
    """Collections of chunks with dense + sparse vectors and payloads.

    `replace_document(collection, document_id, points)` swaps every point of a document for
    `points` atomically, on every backend:

    - a reader (query, scroll, retrieve, count) sees the whole old version or the whole new
      one, never a mix and never neither;
    - a failure or a crash at any moment leaves the old version whole, or (once the swap has
      committed) the new one whole; the next replace, or the next open of the collection,
      finishes or clears what was left half done, and replacing again completes the swap.

    How: the new points are written tagged with a fresh version and the state NEW, which every
    read leaves out; where a new id is already taken (by the old version), the point goes under
    a stored id derived from id and version, and reads map it back. Then one journal point
    (one atomic write) commits the swap: from then on reads show the new version and leave out
    every other version of the document. Finishing marks the new points LIVE, deletes the other
    versions and the journal point. A backend whose readers wait on the writer's lock (Edge)
    finishes at once; one whose readers run alongside (a server) keeps the old version for
    `replace_grace` seconds first, so that a read that looked at the journal just before the
    commit still finds the old version whole.
    """

    name: str = "abstract"
    write_batch: int = 256
    scroll_page: int = 1000
    replace_grace: float = 0.0

    def __init__(self) -> None:
        self._repaired: set[str] = set()

    # Collections

    def list_collections(self) -> list[str]:
        """Names of the existing collections, sorted."""
        return sorted(self._names())

    def collection_exists(self, collection: str) -> bool:
        """Whether the collection exists (a ValueError for an invalid name)."""
        return self._has(check_collection_name(collection))

    def require_collection(self, collection: str) -> None:
        """Raise CollectionNotFoundError, with what to do next, when the collection is absent."""
        if not self.collection_exists(collection):
            raise CollectionNotFoundError(collection)

    def create_collection(self, collection: str, dense_dim: int) -> None:
        """Create an empty collection; a no-op when it exists with the same dimension."""
        check_collection_name(collection)
        if dense_dim <= 0:
            raise ValueError(f"dense_dim must be > 0 (got {dense_dim})")
        if self._has(collection):
            stored = self._dense_dim(collection)
            if stored != dense_dim:
                raise StoreError(
                    f"The collection '{collection}' holds {stored}-dimensional vectors, not {dense_dim}: "
                    "use the embedding model it was built with, or delete the collection and ingest again."
                )
            return
        self._make(collection, dense_dim)
        with self._use(collection):
            pass  # opening it creates the payload indexes

    def delete_collection(self, collection: str) -> None:
        """Delete a collection and all its points; CollectionNotFoundError when absent."""
        self.require_collection(collection)
        self._drop(collection)
        self._repaired.discard(collection)

    # Writes

    def upsert(self, collection: str, points: list[Point]) -> None:
        """Insert points, or overwrite the points with the same ids (in the version readers see)."""
        points = _checked(points)
        with self._use(collection) as handle:
            journal = self._journal(handle)
            visible = _visible(journal)
            current = {entry.document: entry.version for entry in journal}
            for batch in _batches(points, self.write_batch):
                existing = self._lookup(handle, [p.id for p in batch], visible)
                stored = []
                for point in batch:
                    document = point.payload.get("document_id")
                    old = existing.get(point.id)
                    # A point joins the version of its document that readers see now.
                    if old is not None and old.payload.get("document_id") == document:
                        version = old.payload.get(_VERSION)
                    else:
                        version = current.get(document) if isinstance(document, str) else None
                    reserved: dict[str, Any] = {_ID: point.id, _STATE: LIVE, _AT: time.time()}
                    if version:
                        reserved[_VERSION] = version
                    stored.append(_stored(point, old.id if old else point.id, reserved))
                self._write(handle, stored)
            self._flush(handle)

    def replace_document(self, collection: str, document_id: str, points: list[Point]) -> None:
        """Swap every point of a document for `points`, atomically (see the class docstring).

        Every point's payload must carry `document_id`. An empty `points` empties the document.
        """
        points = _checked(points)
        for point in points:
            if point.payload.get("document_id") != document_id:
                raise ValueError(
                    f"Point {point.id} belongs to document {point.payload.get('document_id')!r}, "
                    f"not {document_id!r}: replace_document writes one document's points."
                )
        version = uuid.uuid4().hex
        with self._use(collection) as handle:
            self._finish_replaces(handle, self.replace_grace)
            for batch in _batches(points, self.write_batch):
                taken = self._taken(handle, [p.id for p in batch])
                reserved = {_VERSION: version, _STATE: NEW, _AT: time.time()}
                self._write(
                    handle,
                    [
                        _stored(
                            p,
                            _versioned_id(p.id, version) if p.id in taken else p.id,
                            {_ID: p.id, **reserved},
                        )
                        for p in batch
                    ],
                )
            written = self._count(
                handle, Where(must=(Match("document_id", document_id), Match(_VERSION, version)))
            )
            if written != len(points):
                raise StoreError(
                    f"The new version of document {document_id!r} was not written whole "
                    f"({written} of {len(points)} points): the old version is kept; ingest it again."
                )
            # The commit: one point, written in one step, switches readers to the new version.
            entry = _Replace(_journal_id(document_id), document_id, version, time.time())
            self._write(handle, [_journal_point(entry)])
            if self.replace_grace <= 0:
                self._finish(handle, entry)
            self._flush(handle)

    def delete_document(self, collection: str, document_id: str) -> int:
        """Delete every point of a document (any version); returns how many readers saw."""
        document = Where(must=(Match("document_id", document_id),))
        with self._use(collection) as handle:
            journal = self._journal(handle)
            deleted = self._count(handle, document & _visible(journal))
            self._delete(handle, document)
            entries = tuple(e.id for e in journal if e.document == document_id)
            if entries:
                self._delete(handle, Where(must=(HasId(entries),)))
            self._flush(handle)
        return deleted

    # Reads

    def query(self, collection: str, spec: QuerySpec) -> list[ScoredChunk]:
        """Best `spec.top_k` points for the query, best first. Points with no vectors never match."""
        check_query_spec(spec)
        searches = _searches(spec)
        wanted = user_where(spec.filters)
        with self._use(collection) as handle:
            if not searches:  # a sparse query whose words are all unknown
                return []
            where = wanted & _visible(self._journal(handle))
            plan = SearchPlan(
                searches=tuple(
                    Search(using, vector, weight, where & Where(must=(HasVector(using),)))
                    for using, vector, weight in searches
                ),
                fused=spec.mode == "hybrid",
                fusion=spec.fusion,
                rrf_k=spec.rrf_k,
                top_k=spec.top_k,
                candidates=spec.candidates,
                where=where,
            )
            records = self._search(handle, plan)
        return [_chunk(r) for r in records]

    def scroll(
        self, collection: str, filters: Filters | None = None, limit: int | None = None
    ) -> list[ScoredChunk]:
        """Points matching the filters (score 0), sorted by id, payload only, parents included.

        With `limit`, at most that many of them.
        """
        if limit is not None and limit <= 0:
            raise ValueError(f"limit must be > 0 (got {limit})")
        wanted = user_where(filters)
        with self._use(collection) as handle:
            where = wanted & _visible(self._journal(handle))
            records = self._scroll_all(handle, where, limit)
        return sorted((_chunk(r) for r in records), key=lambda c: c.id)

    def retrieve(self, collection: str, ids: list[str]) -> list[ScoredChunk]:
        """Points by id in the order asked (missing ids left out), parents included."""
        wanted = list(dict.fromkeys(check_point_id(i) for i in ids))
        if not wanted:
            return []
        with self._use(collection) as handle:
            found = self._lookup(handle, wanted, _visible(self._journal(handle)))
        return [_chunk(found[i]) for i in wanted if i in found]

    def count(self, collection: str, filters: Filters | None = None) -> int:
        """Exact number of points matching the filters."""
        wanted = user_where(filters)
        with self._use(collection) as handle:
            return self._count(handle, wanted & _visible(self._journal(handle)))

    @abstractmethod
    def close(self) -> None:
        """Release files and connections."""

    # The replace protocol and its repair

    @contextmanager
    def _use(self, collection: str) -> Iterator[Any]:
        """The open collection; the first use in this store repairs what a crash left behind."""
        check_collection_name(collection)
        with self._open(collection) as handle:
            if collection not in self._repaired:
                self._ensure_indexes(handle, INDEXES)
                self._finish_replaces(handle, self.replace_grace)
                self._flush(handle)
                self._repaired.add(collection)
            yield handle

    def _journal(self, handle: Any) -> list[_Replace]:
        """The committed replaces not yet finished."""
        records = self._scroll_all(handle, Where(must=(Match(_STATE, JOURNAL),)))
        return [
            _Replace(
                r.id, str(r.payload[_DOCUMENT]), str(r.payload[_VERSION]), float(r.payload[_AT])
            )
            for r in records
        ]

    def _finish_replaces(self, handle: Any, grace: float) -> None:
        """Finish the replaces committed more than `grace` seconds ago; clear older uncommitted points."""
        now = time.time()
        pending: list[str] = []
        for entry in self._journal(handle):
            if entry.at <= now - grace:
                self._finish(handle, entry)
            else:
                pending.append(entry.version)
        # NEW points of no commit are what a failed or killed replace wrote (the old version
        # stands) or what a later commit of the same document superseded before it was finished.
        # Twice the grace: a superseded version was committed up to a replace's length after its
        # points were written, and a reader may still look at it for `grace` after that.
        leftovers = Where(
            must=(Match(_STATE, NEW), Below(_AT, now - 2 * grace)),
            must_not=(Match(_VERSION, tuple(pending)),) if pending else (),
        )
        if self._count(handle, leftovers):  # only then a write: read-only keys can still read
            self._delete(handle, leftovers)

    def _finish(self, handle: Any, entry: _Replace) -> None:
        """Make a committed version the document's only one and drop its journal point."""
        document = Match("document_id", entry.document)
        version = Match(_VERSION, entry.version)
        self._set_payload(handle, Where(must=(document, version)), {_STATE: LIVE})
        self._delete(handle, Where(must=(document,), must_not=(version,)))
        self._delete(handle, Where(must=(HasId((entry.id,)),)))

    def _scroll_all(self, handle: Any, where: Where, limit: int | None = None) -> list[Record]:
        """Every record `where` admits (at most `limit`), page by page."""
        found: list[Record] = []
        offset: Any = None
        while limit is None or len(found) < limit:
            page = self.scroll_page if limit is None else min(self.scroll_page, limit - len(found))
            records, offset = self._scroll(handle, where, offset, page)
            found.extend(records)
            if offset is None:
                break
        return found

    def _lookup(self, handle: Any, ids: list[str], visible: Where) -> dict[str, Record]:
        """The visible records of these caller ids, by caller id."""
        where = Where(should=(HasId(tuple(ids)), Match(_ID, tuple(ids)))) & visible
        return {_caller_id(r): r for r in self._scroll_all(handle, where)}

    def _taken(self, handle: Any, ids: list[str]) -> set[str]:
        """Which of these ids are stored ids of any point, visible or not."""
        return {r.id for r in self._scroll_all(handle, Where(must=(HasId(tuple(ids)),)))}

    # Backend primitives

    @abstractmethod
    def _names(self) -> list[str]:
        """Names of the existing collections."""

    @abstractmethod
    def _has(self, collection: str) -> bool:
        """Whether the collection exists."""

    @abstractmethod
    def _make(self, collection: str, dense_dim: int) -> None:
        """Create an empty collection: a cosine vector DENSE of `dense_dim`, an IDF sparse vector SPARSE."""

    @abstractmethod
    def _dense_dim(self, collection: str) -> int | None:
        """The dimension of the collection's DENSE vector."""

    @abstractmethod
    def _drop(self, collection: str) -> None:
        """Delete the collection and its points."""

    @abstractmethod
    def _open(self, collection: str) -> AbstractContextManager[Any]:
        """A handle on the collection for the block; CollectionNotFoundError when absent."""

    @abstractmethod
    def _ensure_indexes(self, handle: Any, fields: dict[str, Literal["keyword", "float"]]) -> None:
        """Create the payload indexes that are missing."""

    @abstractmethod
    def _write(self, handle: Any, points: list[StoredPoint]) -> None:
        """Insert or overwrite points by stored id."""

    @abstractmethod
    def _delete(self, handle: Any, where: Where) -> None:
        """Delete the points `where` admits."""

    @abstractmethod
    def _set_payload(self, handle: Any, where: Where, payload: dict[str, Any]) -> None:
        """Set these payload fields on the points `where` admits."""

    @abstractmethod
    def _scroll(
        self, handle: Any, where: Where, offset: Any, limit: int
    ) -> tuple[list[Record], Any]:
        """One page of points `where` admits, in stored-id order, and the next page's offset."""

    @abstractmethod
    def _count(self, handle: Any, where: Where) -> int:
        """Exact number of points `where` admits."""

    @abstractmethod
    def _search(self, handle: Any, plan: SearchPlan) -> list[Record]:
        """The plan's best `top_k` points, best first, with payloads."""

    @abstractmethod
    def _flush(self, handle: Any) -> None:
        """Make the writes so far durable."""


_COLLECTION_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")


def check_collection_name(collection: str) -> str:
    """Return `collection` when it is a valid name, else raise a ValueError that says the rule."""
    # Names become folder names of the embedded store, so they stay portable and path-safe.
    if not isinstance(collection, str) or not _COLLECTION_NAME.fullmatch(collection):
        raise ValueError(
            f"Invalid collection name {collection!r}: use 1 to 64 letters, digits, '-' or '_' (for example 'my-docs')."
        )
    return collection


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


def _checked(points: list[Point]) -> list[Point]:
    """The points with canonical ids, the last one of each id kept; reserved payload fields refused."""
    by_id: dict[str, Point] = {}
    for point in points:
        reserved = [key for key in point.payload if key.startswith(RESERVED)]
        if reserved:
            raise ValueError(
                f"Payload fields starting with {RESERVED!r} are the store's own: {reserved}."
            )
        canonical = check_point_id(point.id)
        by_id[canonical] = Point(canonical, point.payload, point.dense, point.sparse)
    return list(by_id.values())


def _batches(points: list[Point], size: int) -> Iterator[list[Point]]:
    for start in range(0, len(points), size):
        yield points[start : start + size]


def _searches(spec: QuerySpec) -> list[tuple[str, list[float] | SparseVec, float]]:
    """(vector name, query vector, weight) for each search the spec asks for; empty sparse ones left out."""
    searches: list[tuple[str, list[float] | SparseVec, float]] = []
    if spec.mode in ("hybrid", "dense") and spec.dense is not None:
        searches.append((DENSE, [float(x) for x in spec.dense], spec.weights[0]))
    if spec.mode in ("hybrid", "sparse") and spec.sparse is not None and spec.sparse.indices:
        searches.append((SPARSE, _sparse(spec.sparse), spec.weights[1]))
    return searches


def _sparse(vector: SparseVec) -> SparseVec:
    return SparseVec([int(i) for i in vector.indices], [float(v) for v in vector.values])


def _stored(point: Point, stored_id: str, reserved: dict[str, Any]) -> StoredPoint:
    vectors: dict[str, list[float] | SparseVec] = {}
    if point.dense is not None:
        vectors[DENSE] = [float(x) for x in point.dense]
    if point.sparse is not None and point.sparse.indices:
        vectors[SPARSE] = _sparse(point.sparse)
    # A point with no vectors (a parent chunk) is kept for retrieve/scroll; searches skip it.
    return StoredPoint(stored_id, {**point.payload, **reserved}, vectors)


def _versioned_id(point_id: str, version: str) -> str:
    """A stored id for `point_id` in one version, apart from the id the old version holds."""
    return str(uuid.uuid5(uuid.UUID(point_id), version))


def _journal_id(document_id: str) -> str:
    return str(uuid.uuid5(_JOURNAL_IDS, document_id))


def _journal_point(entry: _Replace) -> StoredPoint:
    payload = {_STATE: JOURNAL, _DOCUMENT: entry.document, _VERSION: entry.version, _AT: entry.at}
    return StoredPoint(entry.id, payload, {})


def _visible(journal: list[_Replace]) -> Where:
    """What readers may see: no journal points, no NEW points of uncommitted replaces, and of a
    document with a committed replace only the committed version."""
    versions = tuple(entry.version for entry in journal)
    if not versions:
        return Where(must_not=(Match(_STATE, (JOURNAL, NEW)),))
    committed = Match(_VERSION, versions)
    documents = Match("document_id", tuple(sorted({entry.document for entry in journal})))
    return Where(
        must_not=(
            Match(_STATE, JOURNAL),
            Where(must=(Match(_STATE, NEW),), must_not=(committed,)),
            Where(must=(documents,), must_not=(committed,)),
        )
    )


def _caller_id(record: Record) -> str:
    return str(record.payload.get(_ID, record.id))


def _chunk(record: Record) -> ScoredChunk:
    """A search result from a backend record (the chunk text is `payload['text']`)."""
    payload = {k: v for k, v in (record.payload or {}).items() if not k.startswith(RESERVED)}
    return ScoredChunk(
        id=_caller_id(record),
        score=float(record.score),
        text=str(payload.get("text", "")),
        payload=payload,
    )
