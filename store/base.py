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
import threading
import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

from core.errors import CollectionNotFoundError, StoreBusyError, StoreError
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

# Versions whose NEW points a `Replacement` of this process is still writing: the clean-up of
# uncommitted points leaves them alone (their _AT may be old: a large document is written in
# slices). Process-wide because two store objects may share one collection.
_STAGING: set[str] = set()
_STAGING_LOCK = threading.Lock()

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

    `replace_documents` does the same for many documents in a few writes and one flush, and
    `replacing` gives the `Replacement` behind both, which takes a large document in slices.
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
        try:
            self.replace_documents(collection, {document_id: points})
        except ReplaceError as exc:
            raise exc.failed[document_id] from None

    def replace_documents(self, collection: str, documents: Mapping[str, list[Point]]) -> None:
        """`replace_document` for several documents at once, in a few large writes and one flush.

        Each document is swapped atomically on its own, as `replace_document` swaps one. Bad input
        (a point of another document, a reserved field, a bad id) raises a ValueError before anything
        is written. A document whose points could not all be written keeps its old version while the
        others are replaced; a ReplaceError then names it and says why.
        """
        checked = {
            document: _document_points(document, points) for document, points in documents.items()
        }
        _check_unique(checked)
        with self.replacing(collection) as replacement:
            for document, points in checked.items():
                replacement.add(document, points)
            failed = replacement.commit()
        if failed:
            raise ReplaceError(failed)

    def replacing(self, collection: str) -> Replacement:
        """A replacement of documents in `collection`, written as it is fed and committed at once.

        Use it for documents too large to hold whole, or to gather many small ones into few writes.
        """
        return Replacement(self, collection)

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
        return self.query_many(collection, [spec])[0]

    def query_many(self, collection: str, specs: list[QuerySpec]) -> list[list[ScoredChunk]]:
        """Several queries of one collection, each answered as `query` answers it, in one step: one
        look at the replace journal, one batch in the engine when the backend has one."""
        for spec in specs:
            check_query_spec(spec)
        with self._use(collection) as handle:
            visible = _visible(self._journal(handle))
            plans = [_plan(spec, user_where(spec.filters) & visible) for spec in specs]
            searched = self._search_many(handle, [plan for plan in plans if plan is not None])
        found = iter(searched)
        return [[_chunk(r) for r in next(found)] if plan is not None else [] for plan in plans]

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

    def optimize(self, collection: str) -> bool:
        """Build the search indexes of the points written since the last call (HNSW for the dense
        vectors), blocking until done; True when something was built. A backend that indexes in
        the background (a Qdrant server) has nothing to do."""
        with self._use(collection) as handle:
            return self._optimize(handle)

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
        journal = self._journal(handle)
        self._finish(handle, [entry for entry in journal if entry.at <= now - grace])
        pending = [entry.version for entry in journal if entry.at > now - grace]
        with _STAGING_LOCK:
            pending.extend(_STAGING)
        # NEW points of no commit are what a failed or killed replace wrote (the old version
        # stands) or what a later commit of the same document superseded before it was finished;
        # those of a replacement this process is still writing stay.
        # Twice the grace: a superseded version was committed up to a replace's length after its
        # points were written, and a reader may still look at it for `grace` after that.
        leftovers = Where(
            must=(Match(_STATE, NEW), Below(_AT, now - 2 * grace)),
            must_not=(Match(_VERSION, tuple(pending)),) if pending else (),
        )
        if self._count(handle, leftovers):  # only then a write: read-only keys can still read
            self._delete(handle, leftovers)

    def _finish(self, handle: Any, entries: list[_Replace]) -> None:
        """Make each committed version its document's only one and drop the journal points, for
        all the entries at once (each version belongs to one document)."""
        if not entries:
            return
        documents = Match("document_id", tuple(entry.document for entry in entries))
        versions = Match(_VERSION, tuple(entry.version for entry in entries))
        self._set_payload(handle, Where(must=(documents, versions)), {_STATE: LIVE})
        self._delete(handle, Where(must=(documents,), must_not=(versions,)))
        self._delete(handle, Where(must=(HasId(tuple(entry.id for entry in entries)),)))

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

    def _search_many(self, handle: Any, plans: list[SearchPlan]) -> list[list[Record]]:
        """Each plan's `_search`, in order (a backend with batched queries runs them as one)."""
        return [self._search(handle, plan) for plan in plans]

    def _optimize(self, handle: Any) -> bool:
        """Build pending search indexes; False when the backend does it by itself."""
        return False

    @abstractmethod
    def _flush(self, handle: Any) -> None:
        """Make the writes so far durable."""


class ReplaceError(StoreError):
    """Some documents of a `replace_documents` call kept their old version; `failed` says why, by document."""

    def __init__(self, failed: Mapping[str, Exception]) -> None:
        self.failed = dict(failed)
        reasons = "; ".join(f"{document!r}: {error}" for document, error in self.failed.items())
        super().__init__(
            f"{len(self.failed)} document(s) kept their old version (the others were replaced): {reasons}"
        )


@dataclass
class _Staged:
    """One document of a replacement: its new version and the ids written so far."""

    version: str
    ids: set[str] = field(default_factory=set)


class Replacement:
    """Documents being replaced in one collection, each atomically, fed in as many pieces as wanted.

    `add` stages new points of a document (a large one in slices, so its vectors are never all in
    memory); they are written hidden (state NEW), in writes of `write_batch` points that mix
    documents. `commit` checks that every staged document was written whole, then one write of
    their journal points swaps them all (each document on its own: its journal point is one
    point), and one flush makes it durable. A document whose write failed keeps its old version and
    is reported alone by `commit`; a crash before the commit leaves every old version, and the
    points written are cleared by a later replace or the next open. Not thread-safe: one writer.

    On a server, another process clears uncommitted points older than twice `replace_grace`: a
    document staged for longer than that fails at the commit (its old version is kept).
    """

    def __init__(self, store: VectorStore, collection: str) -> None:
        self.store = store
        self.collection = check_collection_name(collection)
        self._staged: dict[str, _Staged] = {}
        self._owner: dict[str, str] = {}  # point id -> its document, across the whole replacement
        self._buffer: list[tuple[str, Point]] = []
        self._failed: dict[str, Exception] = {}
        self._cleaned = False
        self._closed = False

    @property
    def staged_points(self) -> int:
        """Points added since the replacement began (written or waiting in the buffer)."""
        return sum(len(staged.ids) for staged in self._staged.values())

    def add(self, document_id: str, points: list[Point]) -> None:
        """Stage more new points of a document (an empty list stages it empty).

        A ValueError for bad input, before anything of this call is staged; a failed write is kept
        for the documents it held and reported by `commit`.
        """
        if self._closed:
            raise StoreError(
                "This replacement is finished: start another with store.replacing(collection)."
            )
        points = _document_points(document_id, points)
        for point in points:
            owner = self._owner.get(point.id)
            if owner is not None:
                raise ValueError(
                    f"Point {point.id} was already added to this replacement (for document {owner!r})."
                )
        staged = self._staged.get(document_id)
        if staged is None:
            staged = self._staged[document_id] = _Staged(uuid.uuid4().hex)
            with _STAGING_LOCK:
                _STAGING.add(staged.version)
        for point in points:
            self._owner[point.id] = document_id
            staged.ids.add(point.id)
        if document_id in self._failed:
            return  # its version will not be committed: nothing more of it is worth writing
        self._buffer.extend((document_id, point) for point in points)
        while len(self._buffer) >= self.store.write_batch:
            batch, self._buffer = (
                self._buffer[: self.store.write_batch],
                self._buffer[self.store.write_batch :],
            )
            self._write(batch)

    def abandon(self, document_id: str, error: Exception) -> None:
        """Give up a staged document (its old version stays): `commit` reports it with `error`."""
        if document_id in self._staged:
            self._failed.setdefault(document_id, error)
            self._buffer = [(d, p) for d, p in self._buffer if d != document_id]

    def commit(self) -> dict[str, Exception]:
        """Swap in every document staged whole; the others keep their old version and come back
        with the reason. Errors of the commit itself (the collection gone, the journal write refused)
        are raised: then no document is known to be swapped (a commit write that did land is
        finished by the next replace or open). Points written for a document that failed go."""
        if self._closed:
            raise StoreError(
                "This replacement is finished: start another with store.replacing(collection)."
            )
        try:
            if self._buffer:
                batch, self._buffer = self._buffer, []
                self._write(batch)
            store = self.store
            with store._use(self.collection) as handle:
                entries = []
                for document, staged in self._staged.items():
                    if document in self._failed:
                        continue
                    written = store._count(
                        handle,
                        Where(
                            must=(Match("document_id", document), Match(_VERSION, staged.version))
                        ),
                    )
                    if written != len(staged.ids):
                        self._failed[document] = StoreError(
                            f"The new version of document {document!r} was not written whole "
                            f"({written} of {len(staged.ids)} points): the old version is kept; ingest it again."
                        )
                        continue
                    entries.append(
                        _Replace(_journal_id(document), document, staged.version, time.time())
                    )
                given_up = tuple(self._staged[document].version for document in self._failed)
                # Never to be committed: their points go now rather than at a later clean-up.
                if given_up:
                    store._delete(
                        handle, Where(must=(Match(_VERSION, given_up), Match(_STATE, NEW)))
                    )
                if entries:
                    # The commit: one point per document, written in one step, switches
                    # readers to the new versions.
                    store._write(handle, [_journal_point(entry) for entry in entries])
                    if store.replace_grace <= 0:
                        store._finish(handle, entries)
                    store._flush(handle)
            return dict(self._failed)
        finally:
            self.close()

    def close(self) -> None:
        """End the replacement; what was not committed is left for the clean-up of a later replace."""
        if self._closed:
            return
        self._closed = True
        self._buffer = []
        with _STAGING_LOCK:
            _STAGING.difference_update(staged.version for staged in self._staged.values())

    def __enter__(self) -> Replacement:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _write(self, batch: list[tuple[str, Point]]) -> None:
        """Write staged points hidden; when a write of several documents fails, each is tried alone
        so that only the one at fault fails."""
        self._clean_once()
        stored = self._stored(batch)
        documents = list(dict.fromkeys(document for document, _ in batch))
        try:
            self._write_stored(stored)
            return
        except (CollectionNotFoundError, StoreBusyError):
            raise  # the collection, not a document, is at fault
        except Exception as exc:  # noqa: BLE001 - kept for its documents, reported by commit
            if len(documents) == 1:
                self._failed.setdefault(documents[0], exc)
                return
        for document in documents:
            try:
                self._write_stored(
                    [p for (d, _), p in zip(batch, stored, strict=True) if d == document]
                )
            except (CollectionNotFoundError, StoreBusyError):
                raise
            except Exception as exc:  # noqa: BLE001 - kept for this document, reported by commit
                self._failed.setdefault(document, exc)

    def _write_stored(self, stored: list[StoredPoint]) -> None:
        with self.store._use(self.collection) as handle:
            self.store._write(handle, stored)

    def _stored(self, batch: list[tuple[str, Point]]) -> list[StoredPoint]:
        """The points as stored: tagged NEW with their document's version, under a stored id apart
        from the old version's where the id is taken."""
        with self.store._use(self.collection) as handle:
            taken = self.store._taken(handle, [point.id for _, point in batch])
        now = time.time()
        stored = []
        for document, point in batch:
            version = self._staged[document].version
            reserved = {_ID: point.id, _VERSION: version, _STATE: NEW, _AT: now}
            stored.append(
                _stored(
                    point,
                    _versioned_id(point.id, version) if point.id in taken else point.id,
                    reserved,
                )
            )
        return stored

    def _clean_once(self) -> None:
        """Before the first write: finish earlier commits, clear what failed replaces left."""
        if not self._cleaned:
            with self.store._use(self.collection) as handle:
                self.store._finish_replaces(handle, self.store.replace_grace)
            self._cleaned = True


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


def _document_points(document_id: str, points: list[Point]) -> list[Point]:
    """`_checked` points that all belong to `document_id`; a ValueError for any that does not."""
    points = _checked(points)
    for point in points:
        if point.payload.get("document_id") != document_id:
            raise ValueError(
                f"Point {point.id} belongs to document {point.payload.get('document_id')!r}, "
                f"not {document_id!r}: replace_document writes one document's points."
            )
    return points


def _check_unique(documents: Mapping[str, list[Point]]) -> None:
    """A ValueError when one point id is given for two documents."""
    owner: dict[str, str] = {}
    for document, points in documents.items():
        for point in points:
            if owner.setdefault(point.id, document) != document:
                raise ValueError(
                    f"Point {point.id} is given for documents {owner[point.id]!r} and {document!r}."
                )


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


def _plan(spec: QuerySpec, where: Where) -> SearchPlan | None:
    """The search of a checked spec among the points `where` admits; None when there is nothing to
    search (a sparse query whose words are all unknown)."""
    searches = _searches(spec)
    if not searches:
        return None
    return SearchPlan(
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
