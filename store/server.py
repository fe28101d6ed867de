"""The server store: a Qdrant server or cluster through qdrant-client (or its in-process ':memory:' mode)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal

import httpx
from qdrant_client import QdrantClient, models
from qdrant_client.http.exceptions import ResponseHandlingException, UnexpectedResponse

from core.errors import CollectionNotFoundError, StoreError
from store.base import DENSE, SPARSE, Record, SearchPlan, SparseVec, StoredPoint, VectorStore
from store.filters import Where, server_filter

_INDEX_TYPES = {
    "keyword": models.PayloadSchemaType.KEYWORD,
    "float": models.PayloadSchemaType.FLOAT,
}
QUANTIZATIONS = ("none", "scalar", "binary")


@dataclass(frozen=True)
class CollectionLayout:
    """How the server lays out each collection this store creates; None leaves the server's default.

    `shards` and `replication_factor` spread a collection over a cluster's nodes;
    `write_consistency` is how many copies must apply a write before it succeeds. `on_disk_payload`
    and `on_disk_vectors` keep payloads and full dense vectors on disk instead of in RAM.
    `quantization` keeps a compressed copy of the dense vectors in RAM (scalar: int8, binary: 1 bit)
    that searches read first, reading `oversampling` times the candidates asked for and rescoring
    them with the full vectors. Collections that exist keep the layout they were made with.
    """

    shards: int | None = None
    replication_factor: int | None = None
    write_consistency: int | None = None
    on_disk_payload: bool | None = None
    on_disk_vectors: bool | None = None
    quantization: str = "none"
    oversampling: float = 2.0

    def __post_init__(self) -> None:
        for name in ("shards", "replication_factor", "write_consistency"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise ValueError(f"{name} must be a whole number of 1 or more, or None (got {value!r})")
        if self.quantization not in QUANTIZATIONS:
            raise ValueError(
                f"quantization must be one of {', '.join(QUANTIZATIONS)} (got {self.quantization!r})"
            )
        if not self.oversampling >= 1.0:
            raise ValueError(f"oversampling must be 1 or more (got {self.oversampling})")
        copies, needed = self.replication_factor, self.write_consistency
        if copies is not None and needed is not None and needed > copies:
            raise ValueError(
                f"write_consistency ({needed}) exceeds replication_factor ({copies}): "
                "every write would wait for copies that do not exist"
            )

    @property
    def quantization_config(self) -> models.QuantizationConfig | None:
        """Qdrant's quantization config; the compressed copy always stays in RAM."""
        if self.quantization == "scalar":
            # The 0.99 quantile keeps a few extreme components from stretching the int8 range.
            return models.ScalarQuantization(
                scalar=models.ScalarQuantizationConfig(
                    type=models.ScalarType.INT8, quantile=0.99, always_ram=True
                )
            )
        if self.quantization == "binary":
            return models.BinaryQuantization(binary=models.BinaryQuantizationConfig(always_ram=True))
        return None

    @property
    def search_params(self) -> models.SearchParams | None:
        """What a dense search asks of quantized vectors: oversample, then rescore with the originals."""
        if self.quantization == "none":
            return None
        return models.SearchParams(
            quantization=models.QuantizationSearchParams(
                rescore=True, oversampling=self.oversampling
            )
        )


class ServerStore(VectorStore):
    """Collections in a Qdrant server, with the same behaviour as the embedded store.

    Give a `url` (":memory:" runs qdrant-client's in-process engine) or a ready `client`.
    The client is built on first use, so the constructor never touches the network.
    Readers run alongside writers (other threads, other processes), so a committed replace
    keeps the old version for `replace_grace` seconds before it is finished: use 0 only when
    no other process writes to the server and no read runs during a replace. `layout` says how
    new collections are sharded, replicated, stored and quantized (the in-process mode ignores it).
    """

    name = "server"

    def __init__(
        self,
        url: str | None = None,
        api_key: str | None = None,
        client: QdrantClient | None = None,
        replace_grace: float = 60.0,
        layout: CollectionLayout | None = None,
    ) -> None:
        if client is None and not url:
            raise ValueError(
                "ServerStore needs a url (for example http://localhost:6333 or ':memory:') or a client."
            )
        super().__init__()
        self.url = url or _client_location(client)
        self.replace_grace = replace_grace
        self.api_key = api_key
        self.layout = layout or CollectionLayout()
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

    def close(self) -> None:
        """Close the client's connections."""
        if self._client is not None:
            self._client.close()

    # Collections

    def _names(self) -> list[str]:
        with self._calling():
            return [c.name for c in self.client.get_collections().collections]

    def _has(self, collection: str) -> bool:
        with self._calling():
            return self.client.collection_exists(collection)

    def _make(self, collection: str, dense_dim: int) -> None:
        layout = self.layout
        with self._calling(collection):
            self.client.create_collection(
                collection,
                vectors_config={
                    DENSE: models.VectorParams(
                        size=dense_dim,
                        distance=models.Distance.COSINE,
                        on_disk=layout.on_disk_vectors,
                    )
                },
                # IDF is computed by the engine, so BM25 documents only carry term-frequency weights.
                sparse_vectors_config={
                    SPARSE: models.SparseVectorParams(modifier=models.Modifier.IDF)
                },
                shard_number=layout.shards,
                replication_factor=layout.replication_factor,
                write_consistency_factor=layout.write_consistency,
                on_disk_payload=layout.on_disk_payload,
                quantization_config=layout.quantization_config,
            )

    def _dense_dim(self, collection: str) -> int | None:
        with self._calling(collection):
            vectors = self.client.get_collection(collection).config.params.vectors
        return vectors[DENSE].size if isinstance(vectors, dict) and DENSE in vectors else None

    def _drop(self, collection: str) -> None:
        with self._calling(collection):
            self.client.delete_collection(collection)

    @contextmanager
    def _open(self, collection: str) -> Iterator[str]:
        """The collection's name, with qdrant-client failures turned into StoreErrors."""
        with self._calling(collection):
            yield collection

    def _ensure_indexes(
        self, collection: str, fields: dict[str, Literal["keyword", "float"]]
    ) -> None:
        # The local mode scans every point anyway; indexes only pay off on a server.
        if self.is_local:
            return
        have = set(self.client.get_collection(collection).payload_schema)
        for name, kind in fields.items():
            if name not in have:
                self.client.create_payload_index(collection, name, _INDEX_TYPES[kind], wait=True)

    # Points

    def _write(self, collection: str, points: list[StoredPoint]) -> None:
        self.client.upsert(collection, [_point_struct(p) for p in points], wait=True)

    def _delete(self, collection: str, where: Where) -> None:
        selector = models.FilterSelector(filter=server_filter(where))
        self.client.delete(collection, selector, wait=True)

    def _set_payload(self, collection: str, where: Where, payload: dict[str, Any]) -> None:
        selector = models.FilterSelector(filter=server_filter(where))
        self.client.set_payload(collection, payload, points=selector, wait=True)

    def _scroll(
        self, collection: str, where: Where, offset: Any, limit: int
    ) -> tuple[list[Record], Any]:
        records, offset = self.client.scroll(
            collection,
            scroll_filter=server_filter(where),
            limit=limit,
            offset=offset,
            with_payload=True,
            with_vectors=False,
        )
        return [Record(str(r.id), 0.0, r.payload or {}) for r in records], offset

    def _count(self, collection: str, where: Where) -> int:
        return self.client.count(collection, count_filter=server_filter(where), exact=True).count

    def _search(self, collection: str, plan: SearchPlan) -> list[Record]:
        nearest = [
            (_server_vector(s.vector), s.using, server_filter(s.where)) for s in plan.searches
        ]
        # Only dense vectors are quantized; the in-process mode searches exactly and would warn.
        quantized = None if self.is_local else self.layout.search_params

        def params(using: str) -> models.SearchParams | None:
            return quantized if using == DENSE else None

        if not plan.fused:
            vector, using, where = nearest[0]
            response = self.client.query_points(
                collection,
                query=vector,
                using=using,
                query_filter=where,
                search_params=params(using),
                limit=plan.top_k,
                with_payload=True,
            )
        else:
            # qdrant-client 1.20 supports weighted RRF in the server and in its local mode alike.
            fusion: Any = (
                models.FusionQuery(fusion=models.Fusion.DBSF)
                if plan.fusion == "dbsf"
                else models.RrfQuery(
                    rrf=models.Rrf(k=plan.rrf_k, weights=[s.weight for s in plan.searches])
                )
            )
            response = self.client.query_points(
                collection,
                prefetch=[
                    models.Prefetch(
                        query=v, using=u, limit=plan.candidates, filter=w, params=params(u)
                    )
                    for v, u, w in nearest
                ],
                query=fusion,
                query_filter=server_filter(plan.where),
                limit=plan.top_k,
                with_payload=True,
            )
        return [Record(str(p.id), p.score, p.payload or {}) for p in response.points]

    def _flush(self, collection: str) -> None:
        """Nothing to do: every write waits until the server has applied it."""

    # Plumbing

    @contextmanager
    def _calling(self, collection: str | None = None) -> Iterator[None]:
        """Turn qdrant-client failures into StoreErrors that say what to do."""
        try:
            yield
        except (ResponseHandlingException, httpx.TransportError, ConnectionError) as exc:
            raise StoreError(
                f"Cannot reach the Qdrant server at {self.url}: start it (docker compose up qdrant) "
                "or unset RAG_QDRANT_URL to use the embedded store."
            ) from exc
        except UnexpectedResponse as exc:
            if exc.status_code == 404 and collection is not None:
                raise CollectionNotFoundError(collection) from exc
            raise StoreError(
                f"The Qdrant server at {self.url} refused the request ({exc.status_code}): {exc}"
            ) from exc
        except ValueError as exc:
            # The local mode reports an absent collection as a ValueError.
            if collection is not None and str(exc) == f"Collection {collection} not found":
                raise CollectionNotFoundError(collection) from exc
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


def _point_struct(point: StoredPoint) -> models.PointStruct:
    vectors = {name: _server_vector(vector) for name, vector in point.vectors.items()}
    return models.PointStruct(id=point.id, vector=vectors, payload=point.payload)


def _server_vector(vector: list[float] | SparseVec) -> Any:
    if isinstance(vector, SparseVec):
        return models.SparseVector(indices=vector.indices, values=vector.values)
    return vector
