"""A Qdrant server's collection layout from the RAG_QDRANT_* settings: sharding, replication, write
consistency, on-disk storage and quantization reach Qdrant's create-collection request, searches ask
for rescoring when vectors are quantized, and bad values fail with the variable's name.

The server is a local HTTP stub that speaks the part of Qdrant's REST API the store uses and records
every request body; qdrant-client talks real HTTP to it.
"""

from __future__ import annotations

import importlib.metadata
import json
import logging
import re
import threading
import warnings
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError
from qdrant_client import QdrantClient
from qdrant_edge import Bm25

from core.settings import Settings
from store.base import Point, QuerySpec, SparseVec
from store.edge import EdgeStore
from store.factory import make_store
from store.server import CollectionLayout, ServerStore

pytestmark = pytest.mark.integration
CLIENT_VERSION = importlib.metadata.version("qdrant-client")

# What Qdrant answers for GET /collections/{name}: enough for qdrant-client to parse it.
COLLECTION_INFO = {
    "status": "green",
    "optimizer_status": "ok",
    "points_count": 0,
    "segments_count": 1,
    "config": {
        "params": {"vectors": {"dense": {"size": 8, "distance": "Cosine"}}},
        "hnsw_config": {"m": 16, "ef_construct": 100, "full_scan_threshold": 10000},
        "optimizer_config": {
            "deleted_threshold": 0.2,
            "vacuum_min_vector_number": 1000,
            "default_segment_number": 0,
            "flush_interval_sec": 5,
        },
        "wal_config": {"wal_capacity_mb": 32, "wal_segments_ahead": 0},
    },
    "payload_schema": {},
}


class QdrantRestStub(ThreadingHTTPServer):
    """Qdrant's REST API for one empty collection: records (method, path, body) of every request."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str, Any]] = []
        self.collections: set[str] = set()
        self.version_asked = threading.Event()
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self, method: str) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length)) if length else None
                path = self.path.split("?")[0].rstrip("/")
                stub.requests.append((method, path, body))
                code, result = stub.route(method, path)
                if path == "":  # the version check qdrant-client makes first: a server of its version
                    answer: Any = {"title": "qdrant - vector search engine", "version": CLIENT_VERSION}
                    stub.version_asked.set()
                elif code == 200:
                    answer = {"result": result, "status": "ok", "time": 0.0}
                else:
                    answer = {"status": {"error": f"Not found: {path}"}, "time": 0.0}
                data = json.dumps(answer).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:  # noqa: N802
                self._answer("GET")

            def do_PUT(self) -> None:  # noqa: N802
                self._answer("PUT")

            def do_POST(self) -> None:  # noqa: N802
                self._answer("POST")

            def log_message(self, *args: object) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Handler)

    def route(self, method: str, path: str) -> tuple[int, Any]:
        if method == "GET" and path == "":
            return 200, None
        match = re.fullmatch(r"/collections/([\w-]+)(/.*)?", path)
        if not match:
            return 404, None
        name, rest = match.group(1), match.group(2) or ""
        if method == "GET" and rest == "/exists":
            return 200, {"exists": name in self.collections}
        if method == "PUT" and rest == "":
            self.collections.add(name)
            return 200, True
        if name not in self.collections:
            return 404, None
        answers = {
            ("GET", ""): COLLECTION_INFO,
            ("PUT", "/index"): {"operation_id": 0, "status": "completed"},
            ("POST", "/points/scroll"): {"points": [], "next_page_offset": None},
            ("POST", "/points/count"): {"count": 0},
            ("POST", "/points/query"): {"points": []},
        }
        return (200, answers[(method, rest)]) if (method, rest) in answers else (404, None)

    def bodies(self, method: str, path: str) -> list[Any]:
        return [body for m, p, body in self.requests if (m, p) == (method, path)]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


@pytest.fixture
def qdrant() -> Iterator[QdrantRestStub]:
    server = QdrantRestStub()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    # qdrant-client checks the version in a thread of its own: let it have its answer before closing.
    server.version_asked.wait(timeout=10)
    server.shutdown()
    server.server_close()


def server_settings(url: str, **layout: Any) -> Settings:
    return Settings(_env_file=None, qdrant_url=url, **layout)


def sparse(text: str) -> SparseVec:
    vector = Bm25().embed_query(text)
    return SparseVec(list(vector.indices), list(vector.values))


def test_the_layout_settings_reach_the_create_collection_request(qdrant: QdrantRestStub) -> None:
    settings = server_settings(
        qdrant.url,
        qdrant_shards="6",
        qdrant_replication_factor="2",
        qdrant_write_consistency="2",
        qdrant_on_disk_payload="true",
        qdrant_on_disk_vectors="true",
        qdrant_quantization="scalar",
        qdrant_oversampling="3",
    )
    store = make_store(settings)
    store.create_collection("docs", 8)
    store.close()

    [body] = qdrant.bodies("PUT", "/collections/docs")
    assert body["shard_number"] == 6
    assert body["replication_factor"] == 2
    assert body["write_consistency_factor"] == 2
    assert body["on_disk_payload"] is True
    assert body["vectors"]["dense"] == {"size": 8, "distance": "Cosine", "on_disk": True}
    assert body["quantization_config"] == {"scalar": {"type": "int8", "quantile": 0.99, "always_ram": True}}
    assert body["sparse_vectors"]["sparse"]["modifier"] == "idf"


def test_unset_settings_leave_the_servers_defaults(qdrant: QdrantRestStub) -> None:
    store = make_store(server_settings(qdrant.url))
    store.create_collection("docs", 8)
    store.close()

    [body] = qdrant.bodies("PUT", "/collections/docs")
    layout_keys = {"shard_number", "replication_factor", "write_consistency_factor", "on_disk_payload",
                   "quantization_config"}
    assert layout_keys.isdisjoint(body), body
    assert body["vectors"]["dense"] == {"size": 8, "distance": "Cosine"}


def test_binary_quantization_keeps_its_bits_in_ram(qdrant: QdrantRestStub) -> None:
    store = make_store(server_settings(qdrant.url, qdrant_quantization="binary"))
    store.create_collection("docs", 8)
    store.close()
    [body] = qdrant.bodies("PUT", "/collections/docs")
    assert body["quantization_config"] == {"binary": {"always_ram": True}}


def test_searches_of_quantized_vectors_oversample_and_rescore(qdrant: QdrantRestStub) -> None:
    store = make_store(server_settings(qdrant.url, qdrant_quantization="scalar", qdrant_oversampling="3"))
    store.create_collection("docs", 8)
    dense = [1.0] + [0.0] * 7
    assert store.query("docs", QuerySpec(dense=dense, sparse=sparse("heat pump"), mode="hybrid")) == []
    assert store.query("docs", QuerySpec(dense=dense, mode="dense")) == []
    assert store.query("docs", QuerySpec(sparse=sparse("heat pump"), mode="sparse")) == []
    store.close()

    hybrid, dense_only, sparse_only = qdrant.bodies("POST", "/collections/docs/points/query")
    rescore = {"quantization": {"rescore": True, "oversampling": 3.0}}
    prefetch = {p["using"]: p for p in hybrid["prefetch"]}
    assert prefetch["dense"]["params"] == rescore
    assert "params" not in prefetch["sparse"]  # sparse vectors are never quantized
    assert dense_only["params"] == rescore
    assert "params" not in sparse_only


def test_without_quantization_searches_carry_no_quantization_params(qdrant: QdrantRestStub) -> None:
    store = make_store(server_settings(qdrant.url))
    store.create_collection("docs", 8)
    store.query("docs", QuerySpec(dense=[1.0] + [0.0] * 7, sparse=sparse("heat pump"), mode="hybrid"))
    store.close()
    [hybrid] = qdrant.bodies("POST", "/collections/docs/points/query")
    assert all("params" not in p for p in hybrid["prefetch"])


@pytest.mark.parametrize(
    ("variable", "value", "says"),
    [
        ("RAG_QDRANT_SHARDS", "0", "RAG_QDRANT_SHARDS must be a whole number of 1 or more (got '0')"),
        ("RAG_QDRANT_SHARDS", "two", "RAG_QDRANT_SHARDS must be a whole number of 1 or more (got 'two')"),
        ("RAG_QDRANT_REPLICATION_FACTOR", "-1", "RAG_QDRANT_REPLICATION_FACTOR must be a whole number"),
        ("RAG_QDRANT_WRITE_CONSISTENCY", "1.5", "RAG_QDRANT_WRITE_CONSISTENCY must be a whole number"),
        ("RAG_QDRANT_ON_DISK_PAYLOAD", "maybe", "RAG_QDRANT_ON_DISK_PAYLOAD must be true or false (got 'maybe')"),
        ("RAG_QDRANT_ON_DISK_VECTORS", "disk", "RAG_QDRANT_ON_DISK_VECTORS must be true or false"),
        ("RAG_QDRANT_QUANTIZATION", "pq", "RAG_QDRANT_QUANTIZATION must be none, scalar or binary (got 'pq')"),
        ("RAG_QDRANT_OVERSAMPLING", "0.5", "RAG_QDRANT_OVERSAMPLING must be 1 or more (got 0.5)"),
    ],
)
def test_a_bad_value_names_the_variable_and_what_it_takes(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, says: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ValidationError, match=re.escape(says)):
        Settings(_env_file=None)


def test_write_consistency_above_the_copies_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAG_QDRANT_REPLICATION_FACTOR", "2")
    monkeypatch.setenv("RAG_QDRANT_WRITE_CONSISTENCY", "3")
    with pytest.raises(ValidationError, match=r"RAG_QDRANT_WRITE_CONSISTENCY \(3\) exceeds "
                                              r"RAG_QDRANT_REPLICATION_FACTOR \(2\)"):
        Settings(_env_file=None)
    monkeypatch.setenv("RAG_QDRANT_WRITE_CONSISTENCY", "2")
    assert Settings(_env_file=None).qdrant_write_consistency == 2


def test_the_settings_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for variable, value in {"RAG_QDRANT_SHARDS": "3", "RAG_QDRANT_ON_DISK_PAYLOAD": "false",
                            "RAG_QDRANT_QUANTIZATION": "Scalar"}.items():
        monkeypatch.setenv(variable, value)
    settings = Settings(_env_file=None)
    assert (settings.qdrant_shards, settings.qdrant_on_disk_payload, settings.qdrant_quantization) == (
        3, False, "scalar")
    assert settings.qdrant_replication_factor is None and settings.qdrant_oversampling == 2.0


@pytest.mark.parametrize(
    ("layout", "says"),
    [
        ({"shards": 0}, "shards must be a whole number of 1 or more"),
        ({"replication_factor": 1.5}, "replication_factor must be a whole number"),
        ({"quantization": "product"}, "quantization must be one of none, scalar, binary"),
        ({"oversampling": 0.9}, "oversampling must be 1 or more"),
        ({"replication_factor": 1, "write_consistency": 2}, "write_consistency (2) exceeds replication_factor (1)"),
    ],
)
def test_the_layout_rejects_bad_values_when_built(layout: dict[str, Any], says: str) -> None:
    with pytest.raises(ValueError, match=re.escape(says)):
        CollectionLayout(**layout)


def test_the_in_process_mode_takes_a_layout_and_searches_without_warnings() -> None:
    """qdrant-client's local mode has no shards or quantization: the layout is accepted, searches stay exact."""
    store = ServerStore(
        client=QdrantClient(":memory:"),
        layout=CollectionLayout(shards=2, on_disk_payload=True, quantization="scalar"),
    )
    store.create_collection("docs", 8)
    vectors = {"a": [1.0] + [0.0] * 7, "b": [0.0, 1.0] + [0.0] * 6}
    store.upsert("docs", [
        Point(id=f"00000000-0000-0000-0000-00000000000{i}", payload={"text": name, "document_id": name},
              dense=vector, sparse=sparse(f"chunk {name}"))
        for i, (name, vector) in enumerate(vectors.items(), start=1)
    ])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        hits = store.query("docs", QuerySpec(dense=vectors["b"], mode="dense", top_k=1))
    assert [h.text for h in hits] == ["b"]
    store.close()


def test_the_embedded_store_says_it_ignores_server_settings(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = Settings(_env_file=None, home=tmp_path, qdrant_shards=3, qdrant_quantization="scalar")
    with caplog.at_level(logging.WARNING, logger="store.factory"):
        store = make_store(settings)
    store.close()
    assert isinstance(store, EdgeStore)
    assert "RAG_QDRANT_SHARDS, RAG_QDRANT_QUANTIZATION apply to a Qdrant server only" in caplog.text

    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="store.factory"):
        make_store(Settings(_env_file=None, home=tmp_path)).close()
    assert "Qdrant server only" not in caplog.text
