"""The server store: a Qdrant server or cluster through qdrant-client (or its in-process ':memory:' mode)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
from qdrant_client import QdrantClient, models
from qdrant_client.http.exceptions import ResponseHandlingException, UnexpectedResponse

from core.errors import StoreError
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
from store.filters import server_filter

INDEXED_FIELDS = ("document_id", "file_type", "level")
_WRITE_BATCH = 256
_SCROLL_PAGE = 1000


class ServerStore(VectorStore):
    """Collections in a Qdrant server, with the same behaviour as the embedded store.

    Give a `url` (":memory:" runs qdrant-client's in-process engine) or a ready `client`.
    The client is built on first use, so the constructor never touches the network.
    """

    name = "server"

    def __init__(
        self, url: str | None = None, api_key: str | None = None, client: QdrantClient | None = None
    ) -> None:
        if client is None and not url:
            raise ValueError(
                "ServerStore needs a url (for example http://localhost:6333 or ':memory:') or a client."
            )
        self.url = url or _client_location(client)
        self.api_key = api_key
        self._client = client

    @property
    def client(self) -> QdrantClient:
        """The qdrant-client, built once on first use."""
        if self._client is None:
            if self.url == ":memory:":
                self._client = QdrantClient(location=":memory:")
            else:
                self._client = QdrantClient(url=self.url, api_key=self.api_key)
        return self._client

    @property
    def is_local(self) -> bool:
        """True for qdrant-client's in-process mode, which has no server behind it."""
        options = self.client.init_options
        return options.get("location") == ":memory:" or bool(options.get("path"))

    # Collections

    def list_collections(self) -> list[str]:
        """Names of the server's collections, sorted."""
        with self._calling():
            return sorted(c.name for c in self.client.get_collections().collections)

    def collection_exists(self, collection: str) -> bool:
        """Whether the server has the collection."""
        check_collection_name(collection)
        with self._calling():
            return self.client.collection_exists(collection)

    def create_collection(self, collection: str, dense_dim: int) -> None:
        """Create a collection with a cosine dense vector and an IDF sparse vector, plus payload indexes."""
        if dense_dim <= 0:
            raise ValueError(f"dense_dim must be > 0 (got {dense_dim})")
        if self.collection_exists(collection):
            self._check_dimension(collection, dense_dim)
            return
        with self._calling(collection):
            self.client.create_collection(
                collection,
                vectors_config={
                    DENSE: models.VectorParams(size=dense_dim, distance=models.Distance.COSINE)
                },
                # IDF is computed by the engine, so BM25 documents only carry term-frequency weights.
                sparse_vectors_config={
                    SPARSE: models.SparseVectorParams(modifier=models.Modifier.IDF)
                },
            )
            # The local mode scans every point anyway; indexes only pay off on a server.
            if not self.is_local:
                for name in INDEXED_FIELDS:
                    self.client.create_payload_index(
                        collection, name, models.PayloadSchemaType.KEYWORD
                    )

    def delete_collection(self, collection: str) -> None:
        """Delete the collection and its points."""
        if not self.collection_exists(collection):
            raise collection_not_found(collection)
        with self._calling(collection):
            self.client.delete_collection(collection)

    # Writes

    def upsert(self, collection: str, points: list[Point]) -> None:
        """Insert or overwrite points, waiting until the server has applied them."""
        structs = [_to_struct(p) for p in points]
        with self._calling(collection):
            for start in range(0, len(structs), _WRITE_BATCH):
                self.client.upsert(collection, structs[start : start + _WRITE_BATCH], wait=True)

    def replace_document(self, collection: str, document_id: str, points: list[Point]) -> None:
        """Upsert the new points, then delete the document's other points, in one request.

        The server applies both operations in order within one request; a reader that runs
        between them can see new points next to old ones whose ids are not reused.
        """
        structs = [_to_struct(p) for p in points]
        stale = models.Filter(
            must=[_document_condition(document_id)],
            must_not=[models.HasIdCondition(has_id=[s.id for s in structs])] if structs else None,
        )
        operations: list[Any] = []
        if structs:
            operations.append(models.UpsertOperation(upsert=models.PointsList(points=structs)))
        operations.append(models.DeleteOperation(delete=models.FilterSelector(filter=stale)))
        with self._calling(collection):
            self.client.batch_update_points(collection, operations, wait=True)

    def delete_document(self, collection: str, document_id: str) -> int:
        """Delete every point of a document; returns how many were deleted."""
        document = models.Filter(must=[_document_condition(document_id)])
        with self._calling(collection):
            deleted = self.client.count(collection, count_filter=document, exact=True).count
            if deleted:
                self.client.delete(collection, models.FilterSelector(filter=document), wait=True)
        return deleted

    # Reads

    def query(self, collection: str, spec: QuerySpec) -> list[ScoredChunk]:
        """One `query_points` call: a nearest search on one vector, or two prefetches fused by RRF or DBSF."""
        check_query_spec(spec)
        searches: list[tuple[str, Any, float]] = []
        if spec.mode in ("hybrid", "dense") and spec.dense is not None:
            searches.append((DENSE, [float(x) for x in spec.dense], spec.weights[0]))
        if spec.mode in ("hybrid", "sparse") and spec.sparse is not None and spec.sparse.indices:
            searches.append((SPARSE, _sparse(spec.sparse), spec.weights[1]))
        with self._calling(collection):
            if not searches:
                if not self.client.collection_exists(collection):
                    raise collection_not_found(collection)
                return []
            if spec.mode != "hybrid":
                name, vector, _ = searches[0]
                response = self.client.query_points(
                    collection,
                    query=vector,
                    using=name,
                    query_filter=server_filter(spec.filters, (name,)),
                    limit=spec.top_k,
                    with_payload=True,
                )
            else:
                prefetch = [
                    models.Prefetch(
                        query=vector,
                        using=name,
                        limit=spec.candidates,
                        filter=server_filter(spec.filters, (name,)),
                    )
                    for name, vector, _ in searches
                ]
                # qdrant-client 1.20 supports weighted RRF in the server and in its local mode alike.
                fusion: Any = (
                    models.FusionQuery(fusion=models.Fusion.DBSF)
                    if spec.fusion == "dbsf"
                    else models.RrfQuery(
                        rrf=models.Rrf(k=spec.rrf_k, weights=[w for *_, w in searches])
                    )
                )
                response = self.client.query_points(
                    collection,
                    prefetch=prefetch,
                    query=fusion,
                    query_filter=server_filter(spec.filters),
                    limit=spec.top_k,
                    with_payload=True,
                )
        return [scored_chunk(p.id, p.score, p.payload) for p in response.points]

    def scroll(
        self, collection: str, filters: Filters | None = None, limit: int | None = None
    ) -> list[ScoredChunk]:
        """Points matching the filters, in id order, with payloads (parents included)."""
        if limit is not None and limit <= 0:
            raise ValueError(f"limit must be > 0 (got {limit})")
        condition = server_filter(filters)
        found: list[ScoredChunk] = []
        offset: Any = None
        with self._calling(collection):
            while limit is None or len(found) < limit:
                page = _SCROLL_PAGE if limit is None else min(_SCROLL_PAGE, limit - len(found))
                records, offset = self.client.scroll(
                    collection,
                    scroll_filter=condition,
                    limit=page,
                    offset=offset,
                    with_payload=True,
                    with_vectors=False,
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
        with self._calling(collection):
            records = self.client.retrieve(
                collection, wanted, with_payload=True, with_vectors=False
            )
        by_id = {str(r.id): r for r in records}
        return [scored_chunk(i, 0.0, by_id[i].payload) for i in wanted if i in by_id]

    def count(self, collection: str, filters: Filters | None = None) -> int:
        """Exact number of points matching the filters."""
        with self._calling(collection):
            return self.client.count(
                collection, count_filter=server_filter(filters), exact=True
            ).count

    def close(self) -> None:
        """Close the client's connections."""
        if self._client is not None:
            self._client.close()

    # Plumbing

    def _check_dimension(self, collection: str, dense_dim: int) -> None:
        with self._calling(collection):
            vectors = self.client.get_collection(collection).config.params.vectors
        stored = vectors[DENSE].size if isinstance(vectors, dict) and DENSE in vectors else None
        if stored != dense_dim:
            raise StoreError(
                f"The collection '{collection}' holds {stored}-dimensional vectors, not {dense_dim}: "
                "use the embedding model it was built with, or delete the collection and ingest again."
            )

    @contextmanager
    def _calling(self, collection: str | None = None) -> Iterator[None]:
        """Turn qdrant-client failures into StoreErrors that say what to do."""
        if collection is not None:
            check_collection_name(collection)
        try:
            yield
        except (ResponseHandlingException, httpx.TransportError, ConnectionError) as exc:
            raise StoreError(
                f"Cannot reach the Qdrant server at {self.url}: start it (docker compose up qdrant) "
                "or unset RAG_QDRANT_URL to use the embedded store."
            ) from exc
        except UnexpectedResponse as exc:
            if exc.status_code == 404 and collection is not None:
                raise collection_not_found(collection) from exc
            raise StoreError(
                f"The Qdrant server at {self.url} refused the request ({exc.status_code}): {exc}"
            ) from exc
        except ValueError as exc:
            # The local mode reports an absent collection as a ValueError.
            if collection is not None and str(exc) == f"Collection {collection} not found":
                raise collection_not_found(collection) from exc
            raise


def _client_location(client: QdrantClient | None) -> str:
    if client is None:
        return ""
    options = client.init_options
    return str(
        options.get("url")
        or options.get("location")
        or options.get("path")
        or options.get("host")
        or ""
    )


def _sparse(vector: SparseVec) -> models.SparseVector:
    return models.SparseVector(
        indices=list(vector.indices), values=[float(v) for v in vector.values]
    )


def _to_struct(point: Point) -> models.PointStruct:
    vectors: dict[str, Any] = {}
    if point.dense is not None:
        vectors[DENSE] = [float(x) for x in point.dense]
    if point.sparse is not None and point.sparse.indices:
        vectors[SPARSE] = _sparse(point.sparse)
    # A point with no vectors (a parent chunk) is kept for retrieve/scroll; searches skip it.
    return models.PointStruct(id=check_point_id(point.id), vector=vectors, payload=point.payload)


def _document_condition(document_id: str) -> models.FieldCondition:
    return models.FieldCondition(key="document_id", match=models.MatchValue(value=document_id))
