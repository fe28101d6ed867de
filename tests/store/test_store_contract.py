"""The VectorStore contract, run against the embedded (Edge) and the server (qdrant-client) store.

Small hand-made data: 8-dimensional dense vectors pointing at one chunk each, and BM25
sparse vectors from qdrant_edge.Bm25, so the expected best chunk of every query is known.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest
from qdrant_client import QdrantClient
from qdrant_edge import Bm25

from core.errors import CollectionNotFoundError, StoreBusyError, StoreError
from core.settings import Settings
from core.types import ScoredChunk
from store.base import Point, QuerySpec, SparseVec, VectorStore
from store.edge import EdgeStore
from store.factory import make_store
from store.server import ServerStore

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DIM = 8
BM25 = Bm25()
COLLECTION = "docs"


def axis(*weights: tuple[int, float]) -> list[float]:
    """A dense vector with the given (axis, weight) components."""
    vector = [0.0] * DIM
    for index, weight in weights:
        vector[index] = weight
    return vector


def doc_sparse(text: str) -> SparseVec:
    vector = BM25.embed_document(text)
    return SparseVec(list(vector.indices), list(vector.values))


def query_sparse(text: str) -> SparseVec:
    vector = BM25.embed_query(text)
    return SparseVec(list(vector.indices), list(vector.values))


def point_id(document_id: str, index: int | str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"{document_id}/{index}"))


def chunk(
    document_id: str,
    index: int | str,
    text: str,
    dense: list[float] | None,
    file_type: str,
    level: str = "leaf",
    sha256: str = "v1",
) -> Point:
    return Point(
        id=point_id(document_id, index),
        payload={
            "text": text,
            "document_id": document_id,
            "file_type": file_type,
            "level": level,
            "sha256": sha256,
        },
        dense=dense,
        sparse=doc_sparse(text) if dense is not None else None,
    )


# Each chunk's dense vector points along its own axis; b1 leans towards a1's axis too.
CHUNKS = [
    chunk("alpha", 0, "The zebra grazes on the savanna grass.", axis((0, 1.0)), "pdf", "child"),
    chunk("alpha", 1, "Quarterly revenue grew by twelve percent.", axis((1, 1.0)), "pdf", "child"),
    chunk("alpha", 2, "The reactor cooling pumps failed twice.", axis((2, 1.0)), "pdf", "child"),
    chunk("beta", 0, "Penguins huddle together in the antarctic winter.", axis((3, 1.0)), "md"),
    chunk("beta", 1, "Revenue forecasts depend on currency rates.", axis((4, 1.0), (1, 0.5)), "md"),
    chunk(
        "gamma",
        0,
        "Volcanic ash grounded flights across the region.",
        axis((5, 1.0), (3, -1.0)),
        "html",
    ),
]
# A parent of recursive chunking: payload only, never searched.
PARENT = chunk(
    "alpha", "parent", " ".join(p.payload["text"] for p in CHUNKS[:3]), None, "pdf", "parent"
)
ALL_POINTS = [*CHUNKS, PARENT]


def pid(document_id: str, index: int | str) -> str:
    return point_id(document_id, index)


@pytest.fixture
def filled(store: VectorStore) -> VectorStore:
    store.create_collection(COLLECTION, DIM)
    store.upsert(COLLECTION, ALL_POINTS)
    return store


def top_ids(store: VectorStore, spec: QuerySpec) -> list[str]:
    return [hit.id for hit in store.query(COLLECTION, spec)]


@pytest.mark.integration
class TestStoreContract:
    """Every behaviour of the contract, on both stores."""

    def test_collections_lifecycle(self, store: VectorStore) -> None:
        assert store.list_collections() == []
        assert not store.collection_exists("notes")
        store.create_collection("notes", DIM)
        store.create_collection("b-2_x", DIM)
        store.create_collection("notes", DIM)  # same dimension: a no-op
        assert store.list_collections() == ["b-2_x", "notes"]
        assert store.collection_exists("notes")
        with pytest.raises(StoreError, match="dimensional"):
            store.create_collection("notes", DIM * 2)
        store.delete_collection("notes")
        assert store.list_collections() == ["b-2_x"]
        assert not store.collection_exists("notes")

    def test_absent_collection_errors(self, store: VectorStore) -> None:
        with pytest.raises(
            CollectionNotFoundError,
            match=r"No collection named 'missing': .*rag ingest PATH --collection missing.*rag collections list",
        ):
            store.delete_collection("missing")
        with pytest.raises(CollectionNotFoundError):
            store.count("missing")
        with pytest.raises(CollectionNotFoundError):
            store.upsert("missing", CHUNKS[:1])
        with pytest.raises(CollectionNotFoundError):
            store.query("missing", QuerySpec(dense=axis((0, 1.0)), mode="dense"))
        with pytest.raises(CollectionNotFoundError):
            store.scroll("missing")
        with pytest.raises(CollectionNotFoundError):
            store.retrieve("missing", [pid("alpha", 0)])

    @pytest.mark.parametrize("name", ["", "a/b", "../up", "spaces here", "x" * 65, "dot.name"])
    def test_invalid_collection_names(self, store: VectorStore, name: str) -> None:
        with pytest.raises(ValueError, match="letters, digits"):
            store.create_collection(name, DIM)

    def test_upsert_count_scroll_retrieve(self, filled: VectorStore) -> None:
        assert filled.count(COLLECTION) == len(ALL_POINTS)
        assert filled.count(COLLECTION, {"document_id": "alpha"}) == 4
        scrolled = filled.scroll(COLLECTION)
        assert [hit.id for hit in scrolled] == sorted(p.id for p in ALL_POINTS)
        assert len(filled.scroll(COLLECTION, limit=3)) == 3
        assert {hit.id for hit in filled.scroll(COLLECTION, {"document_id": "beta"})} == {
            pid("beta", 0),
            pid("beta", 1),
        }
        wanted = [pid("gamma", 0), str(uuid.uuid4()), pid("alpha", "parent")]
        found = filled.retrieve(COLLECTION, wanted)
        assert [hit.id for hit in found] == [pid("gamma", 0), pid("alpha", "parent")]
        assert found[1].text == PARENT.payload["text"]
        assert found[1].payload["level"] == "parent"

    def test_upsert_overwrites_same_id(self, filled: VectorStore) -> None:
        changed = chunk("gamma", 0, "Changed text.", axis((5, 1.0)), "html", sha256="v2")
        filled.upsert(COLLECTION, [changed])
        assert filled.count(COLLECTION) == len(ALL_POINTS)
        assert filled.retrieve(COLLECTION, [changed.id])[0].payload["sha256"] == "v2"

    def test_dense_query_finds_nearest(self, filled: VectorStore) -> None:
        hits = filled.query(COLLECTION, QuerySpec(dense=axis((2, 1.0), (0, 0.2)), mode="dense"))
        assert hits[0].id == pid("alpha", 2)
        assert hits[0].text == CHUNKS[2].payload["text"]
        assert hits[0].score > hits[1].score

    def test_sparse_query_ranks_keyword_matches_first(self, filled: VectorStore) -> None:
        assert top_ids(filled, QuerySpec(sparse=query_sparse("zebra"), mode="sparse"))[0] == pid(
            "alpha", 0
        )
        hits = top_ids(filled, QuerySpec(sparse=query_sparse("revenue"), mode="sparse"))
        assert set(hits) == {pid("alpha", 1), pid("beta", 1)}  # only keyword matches come back

    def test_sparse_query_with_no_terms_finds_nothing(self, filled: VectorStore) -> None:
        assert filled.query(COLLECTION, QuerySpec(sparse=SparseVec([], []), mode="sparse")) == []

    def test_hybrid_query_agrees_when_both_point_at_one_chunk(self, filled: VectorStore) -> None:
        spec = QuerySpec(dense=axis((0, 1.0)), sparse=query_sparse("zebra savanna"))
        assert top_ids(filled, spec)[0] == pid("alpha", 0)
        dbsf = QuerySpec(
            dense=axis((1, 1.0)), sparse=query_sparse("quarterly revenue"), fusion="dbsf"
        )
        assert top_ids(filled, dbsf)[0] == pid("alpha", 1)

    def test_hybrid_weights_decide_between_dense_and_sparse(self, filled: VectorStore) -> None:
        # Dense points at the penguins, keywords at the volcano; the weights pick the winner.
        base = dict(dense=axis((3, 1.0)), sparse=query_sparse("volcanic ash"), candidates=3)
        assert top_ids(filled, QuerySpec(**base, weights=(1.0, 0.01)))[0] == pid("beta", 0)
        assert top_ids(filled, QuerySpec(**base, weights=(0.01, 1.0)))[0] == pid("gamma", 0)

    @pytest.mark.parametrize("mode", ["dense", "sparse", "hybrid"])
    def test_top_k_honoured_and_parents_never_returned(
        self, filled: VectorStore, mode: str
    ) -> None:
        everything = "zebra revenue reactor penguins volcanic pumps savanna"
        spec = QuerySpec(
            dense=axis((0, 1.0), (1, 1.0)), sparse=query_sparse(everything), mode=mode, top_k=2
        )
        assert len(filled.query(COLLECTION, spec)) == 2
        spec.top_k = 100
        hits = filled.query(COLLECTION, spec)
        assert {hit.id for hit in hits} <= {c.id for c in CHUNKS}
        assert len(hits) == len(CHUNKS)
        assert all(hit.payload["level"] != "parent" for hit in hits)

    @pytest.mark.parametrize("mode", ["dense", "sparse", "hybrid"])
    def test_filters_single_value_and_list(self, filled: VectorStore, mode: str) -> None:
        base = dict(
            dense=axis((1, 1.0)), sparse=query_sparse("quarterly revenue"), mode=mode, top_k=10
        )
        assert top_ids(filled, QuerySpec(**base))[0] == pid("alpha", 1)
        only_beta = top_ids(filled, QuerySpec(**base, filters={"document_id": "beta"}))
        assert only_beta[0] == pid("beta", 1)
        assert set(only_beta) <= {pid("beta", 0), pid("beta", 1)}
        md = top_ids(filled, QuerySpec(**base, filters={"file_type": "md"}))
        assert set(md) <= {pid("beta", 0), pid("beta", 1)} and md
        either = top_ids(filled, QuerySpec(**base, filters={"document_id": ["beta", "gamma"]}))
        assert pid("alpha", 1) not in either and pid("beta", 1) in either
        both = QuerySpec(**base, filters={"document_id": ["alpha", "beta"], "file_type": ["pdf"]})
        assert set(top_ids(filled, both)) <= {c.id for c in CHUNKS[:3]}
        assert top_ids(filled, QuerySpec(**base, filters={"document_id": "nobody"})) == []
        assert filled.count(COLLECTION, {"file_type": ["md", "html"]}) == 3

    @pytest.mark.parametrize("mode", ["dense", "sparse", "hybrid"])
    def test_not_filter_leaves_out_the_values(self, filled: VectorStore, mode: str) -> None:
        base = dict(
            dense=axis((1, 1.0)), sparse=query_sparse("quarterly revenue"), mode=mode, top_k=10
        )
        without_alpha = top_ids(
            filled, QuerySpec(**base, filters={"document_id": {"not": ["alpha"]}})
        )
        assert without_alpha and not {pid("alpha", i) for i in range(3)} & set(without_alpha)
        assert without_alpha[0] == pid("beta", 1)
        mixed = {"document_id": {"not": ["alpha", "gamma"]}, "file_type": "md"}
        assert set(top_ids(filled, QuerySpec(**base, filters=mixed))) <= {
            pid("beta", 0),
            pid("beta", 1),
        }
        assert filled.count(COLLECTION, {"document_id": {"not": []}}) == filled.count(COLLECTION)
        with pytest.raises(ValueError, match="not"):
            filled.count(COLLECTION, {"document_id": {"none": ["alpha"]}})

    def test_bad_filters_and_specs_are_rejected(self, filled: VectorStore) -> None:
        with pytest.raises(ValueError, match="only strings or only integers"):
            filled.count(COLLECTION, {"document_id": ["a", 1]})
        with pytest.raises(ValueError, match="dense query vector"):
            filled.query(COLLECTION, QuerySpec(sparse=query_sparse("zebra")))
        with pytest.raises(ValueError, match="top_k"):
            filled.query(COLLECTION, QuerySpec(dense=axis((0, 1.0)), mode="dense", top_k=0))
        with pytest.raises(ValueError, match="UUID"):
            filled.retrieve(COLLECTION, ["not-a-uuid"])

    def test_replace_document_swaps_all_points(self, filled: VectorStore) -> None:
        new = [
            chunk("alpha", 0, "The zebra sleeps.", axis((0, 1.0)), "pdf", sha256="v2"),
            chunk(
                "alpha", 7, "A brand new chunk about glaciers.", axis((6, 1.0)), "pdf", sha256="v2"
            ),
        ]
        filled.replace_document(COLLECTION, "alpha", new)
        alpha = filled.scroll(COLLECTION, {"document_id": "alpha"})
        assert sorted(hit.id for hit in alpha) == sorted(p.id for p in new)
        assert {hit.payload["sha256"] for hit in alpha} == {"v2"}
        assert filled.count(COLLECTION) == len(ALL_POINTS) - 4 + 2
        assert top_ids(filled, QuerySpec(sparse=query_sparse("glaciers"), mode="sparse")) == [
            new[1].id
        ]
        assert top_ids(filled, QuerySpec(sparse=query_sparse("reactor"), mode="sparse")) == []

    def test_replace_document_with_nothing_empties_it(self, filled: VectorStore) -> None:
        filled.replace_document(COLLECTION, "beta", [])
        assert filled.count(COLLECTION, {"document_id": "beta"}) == 0
        assert filled.count(COLLECTION) == len(ALL_POINTS) - 2

    def test_delete_document_returns_count(self, filled: VectorStore) -> None:
        assert filled.delete_document(COLLECTION, "alpha") == 4
        assert filled.delete_document(COLLECTION, "alpha") == 0
        assert filled.count(COLLECTION) == len(ALL_POINTS) - 4
        assert filled.retrieve(COLLECTION, [pid("alpha", "parent")]) == []


@pytest.mark.integration
def test_edge_store_reopened_sees_the_data(tmp_path: Path) -> None:
    first = EdgeStore(tmp_path)
    first.create_collection(COLLECTION, DIM)
    first.upsert(COLLECTION, ALL_POINTS)
    first.close()
    second = EdgeStore(tmp_path)
    try:
        assert second.list_collections() == [COLLECTION]
        assert second.count(COLLECTION) == len(ALL_POINTS)
        spec = QuerySpec(dense=axis((0, 1.0)), sparse=query_sparse("zebra"))
        assert top_ids(second, spec)[0] == pid("alpha", 0)
        second.delete_collection(COLLECTION)
        assert not (tmp_path / COLLECTION).exists()
        assert second.list_collections() == []
    finally:
        second.close()


@pytest.mark.integration
def test_two_edge_stores_in_one_process_share_the_shard(tmp_path: Path) -> None:
    first, second = EdgeStore(tmp_path), EdgeStore(tmp_path)
    try:
        first.create_collection(COLLECTION, DIM)
        first.upsert(COLLECTION, CHUNKS)
        assert second.count(COLLECTION) == len(CHUNKS)
        first.close()
        assert second.count(COLLECTION) == len(CHUNKS)
    finally:
        second.close()


@pytest.mark.integration
def test_backends_agree_on_the_same_data(tmp_path: Path, build_store) -> None:  # noqa: ANN001
    rng = random.Random(7)
    words = "apple river stone cloud engine violet harbor signal copper meadow lantern".split()
    points = [
        Point(
            id=str(uuid.UUID(int=rng.getrandbits(128))),
            payload={"text": text, "document_id": f"d{i % 4}", "file_type": "txt", "level": "leaf"},
            dense=[rng.gauss(0, 1) for _ in range(DIM)],
            sparse=doc_sparse(text),
        )
        for i, text in enumerate(
            " ".join(rng.choices(words, k=rng.randint(3, 9))) for _ in range(40)
        )
    ]
    edge, server = build_store("edge", tmp_path), build_store("server", tmp_path)
    try:
        for backend in (edge, server):
            backend.create_collection(COLLECTION, DIM)
            backend.upsert(COLLECTION, points)
        for _ in range(5):
            dense = QuerySpec(dense=[rng.gauss(0, 1) for _ in range(DIM)], mode="dense", top_k=5)
            assert top_ids(edge, dense) == top_ids(server, dense)
        for text in ("apple", "copper lantern", "river stone cloud"):
            sparse = QuerySpec(sparse=query_sparse(text), mode="sparse", top_k=8)
            edge_hits, server_hits = (
                edge.query(COLLECTION, sparse),
                server.query(COLLECTION, sparse),
            )
            assert [h.score for h in edge_hits] == pytest.approx(
                [h.score for h in server_hits], rel=1e-3
            )
            assert ranked_groups(edge_hits) == ranked_groups(server_hits)
    finally:
        edge.close()
        server.close()


def ranked_groups(hits: list[ScoredChunk]) -> list[set[str]]:
    """Ids grouped by equal score, best first; the last group may be cut by top_k, so it is left out."""
    groups: list[set[str]] = []
    last: float | None = None
    for hit in hits:
        if last is None or abs(hit.score - last) > 1e-3 * abs(last):
            groups.append(set())
        groups[-1].add(hit.id)
        last = hit.score
    return groups[:-1]


_OPEN_IN_CHILD = """
import json, sys
from store.edge import EdgeStore
try:
    EdgeStore(sys.argv[1]).count(sys.argv[2])
    print(json.dumps({"error": None}))
except Exception as exc:
    print(json.dumps({"error": type(exc).__name__, "message": str(exc)}))
"""


@pytest.mark.integration
def test_second_process_gets_a_clear_busy_error(edge_store: EdgeStore) -> None:
    edge_store.create_collection(COLLECTION, DIM)  # this process now holds the shard open
    child = subprocess.run(
        [sys.executable, "-c", _OPEN_IN_CHILD, str(edge_store.root), COLLECTION],
        capture_output=True,
        text=True,
        cwd=PROJECT_ROOT,
        env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT)},
        timeout=60,
    )
    result = json.loads(child.stdout.strip().splitlines()[-1])
    assert result["error"] == StoreBusyError.__name__
    assert f"The collection '{COLLECTION}' is open in another process" in result["message"]
    assert "RAG_QDRANT_URL" in result["message"]
    assert "WouldBlock" not in result["message"]
    edge_store.close()  # released: a new process may open it now
    child = subprocess.run(
        [sys.executable, "-c", _OPEN_IN_CHILD, str(edge_store.root), COLLECTION],
        capture_output=True,
        text=True,
        cwd=PROJECT_ROOT,
        env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT)},
        timeout=60,
    )
    assert json.loads(child.stdout.strip().splitlines()[-1])["error"] is None


VERSIONS = 12


def _version(k: int) -> list[Point]:
    """Version k of one document: 20 chunks when k is even, 15 when odd, ids partly shared."""
    size = 20 if k % 2 == 0 else 15
    return [
        chunk(
            "live",
            i,
            f"live chunk {i} version {k}",
            axis((i % DIM, 1.0), ((i + 1) % DIM, 0.1)),
            "txt",
            sha256=f"v{k}",
        )
        for i in range(size)
    ]


@pytest.mark.integration
def test_edge_replace_document_is_atomic_for_readers(
    edge_store: EdgeStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    write = edge_store._write

    def write_after_a_pause(*args: object) -> None:
        time.sleep(0.005)  # widen the gaps between the steps, where an unlocked reader would land
        write(*args)

    monkeypatch.setattr(edge_store, "_write", write_after_a_pause)
    edge_store.create_collection(COLLECTION, DIM)
    edge_store.upsert(COLLECTION, [*_version(0), *CHUNKS])
    expected_size = {f"v{k}": len(_version(k)) for k in range(VERSIONS + 1)}
    problems: list[str] = []
    seen_versions: set[str] = set()
    reads = 0
    read_done = threading.Condition()
    stop = threading.Event()

    def reader() -> None:
        nonlocal reads
        spec = QuerySpec(
            dense=axis((0, 1.0)),
            sparse=query_sparse("live chunk"),
            top_k=50,
            filters={"document_id": "live"},
        )
        while not stop.is_set():
            for hits in (
                edge_store.query(COLLECTION, spec),
                edge_store.scroll(COLLECTION, {"document_id": "live"}),
            ):
                versions = {hit.payload["sha256"] for hit in hits}
                if len(versions) != 1 or len(hits) != expected_size[next(iter(versions))]:
                    problems.append(f"{len(hits)} hits of versions {sorted(versions)}")
                seen_versions.update(versions)
            with read_done:
                reads += 1
                read_done.notify_all()

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        for k in range(1, VERSIONS + 1):
            with read_done:  # let the reader finish a read of each version before the next swap
                start = reads
                read_done.wait_for(lambda start=start: reads > start, timeout=30)
            edge_store.replace_document(COLLECTION, "live", _version(k))
    finally:
        stop.set()
        thread.join(timeout=30)
    assert problems == []
    assert len(seen_versions) > VERSIONS // 2
    assert edge_store.count(COLLECTION, {"document_id": "live"}) == len(_version(VERSIONS))


@pytest.mark.unit
def test_unreachable_server_says_what_to_do() -> None:
    import socket

    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    # The version check would run in a thread and warn after the test; the store call is what we test.
    store = ServerStore(url=url, client=QdrantClient(url=url, check_compatibility=False))
    with pytest.raises(
        StoreError,
        match="Cannot reach the Qdrant server at http://127.0.0.1:.*unset RAG_QDRANT_URL",
    ):
        store.list_collections()


@pytest.mark.unit
def test_make_store_picks_the_backend(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAG_HOME", str(tmp_path))
    monkeypatch.delenv("RAG_QDRANT_URL", raising=False)
    embedded = make_store(Settings(_env_file=None))
    assert isinstance(embedded, EdgeStore) and embedded.root == tmp_path / "stores" / "edge"
    server = make_store(Settings(_env_file=None, qdrant_url=":memory:"))
    assert isinstance(server, ServerStore)
    server.create_collection("x", DIM)
    assert server.list_collections() == ["x"]
    assert isinstance(server.client, QdrantClient)
