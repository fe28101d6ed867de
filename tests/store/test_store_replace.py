"""The contract of `replace_document`, on both stores: atomic for readers and across failures.

A reader sees the whole old version of a document or the whole new one, never a mix and never
neither, at every step of a replace; a replace that fails (or a process killed) before its
commit leaves the old version whole, after it the new one; the next open repairs what was
left, and replacing again completes the swap.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from qdrant_client import QdrantClient

from core.errors import CollectionNotFoundError, StoreError
from store.base import Point, QuerySpec, Record, StoredPoint, VectorStore
from store.edge import EdgeStore
from store.filters import Where
from store.server import ServerStore
from tests.spies import after_each_write
from tests.store.test_store_contract import (
    CHUNKS,
    COLLECTION,
    DIM,
    PROJECT_ROOT,
    axis,
    chunk,
    query_sparse,
)

pytestmark = pytest.mark.integration

DOC = "live"


def version(k: int, size: int | None = None) -> list[Point]:
    """Version k of one document: 20 chunks when k is even, 15 when odd; ids 0..14 in every version."""
    size = size or (20 if k % 2 == 0 else 15)
    return [
        chunk(
            DOC,
            i,
            f"live chunk {i} version {k}",
            axis((i % DIM, 1.0), ((i + 1) % DIM, 0.1)),
            "txt",
            sha256=f"v{k}",
        )
        for i in range(size)
    ]


def all_ids() -> list[str]:
    return [p.id for p in version(0)]


def seen(store: VectorStore) -> list[tuple[str, int]]:
    """(version, number of points) of the document as each kind of read sees it."""
    spec = QuerySpec(
        dense=axis((0, 1.0)),
        sparse=query_sparse("live chunk"),
        top_k=50,
        filters={"document_id": DOC},
    )
    reads = [
        store.query(COLLECTION, spec),
        store.scroll(COLLECTION, {"document_id": DOC}),
        store.retrieve(COLLECTION, all_ids()),
    ]
    found = []
    for hits in reads:
        versions = {hit.payload["sha256"] for hit in hits}
        assert len(versions) == 1, f"a read mixed versions {sorted(versions)}"
        assert len({hit.id for hit in hits}) == len(hits), "a read returned an id twice"
        found.append((versions.pop(), len(hits)))
    found.append((found[1][0], store.count(COLLECTION, {"document_id": DOC})))
    return found


def assert_whole(store: VectorStore, k: int) -> None:
    """Every read sees version k of the document, all of it, and the other documents untouched."""
    assert seen(store) == [(f"v{k}", len(version(k)))] * 4
    assert store.count(COLLECTION) == len(version(k)) + len(CHUNKS)


def raw(store: VectorStore) -> list[Record]:
    """Every stored point, hidden ones too, as the backend holds them."""
    with store._use(COLLECTION) as handle:
        return store._scroll_all(handle, Where())


def reopened(store: VectorStore) -> VectorStore:
    """A second store object on the same data: its first use repairs, as after a restart."""
    if isinstance(store, EdgeStore):
        return EdgeStore(store.root)
    assert isinstance(store, ServerStore)
    return ServerStore(client=store.client, replace_grace=store.replace_grace)


@pytest.fixture
def live(store: VectorStore) -> VectorStore:
    """The store with version 0 of the document beside the contract's chunks, writes in small batches."""
    store.create_collection(COLLECTION, DIM)
    store.upsert(COLLECTION, CHUNKS)
    grace, store.replace_grace = store.replace_grace, 0.0
    store.replace_document(COLLECTION, DOC, version(0))  # finished: nothing left in the journal
    store.replace_grace = grace
    store.write_batch = 4  # many steps per replace, each one a place for a reader to look
    return store


def fail_at(store: VectorStore, step: str) -> None:
    """Make one step of the next replace raise, as a crash there would stop it."""
    calls = {"_write": 0}
    write, set_payload = store._write, store._set_payload

    def failing_write(handle: Any, points: list[Any]) -> None:
        calls["_write"] += 1
        commit = any(p.payload.get("_store_state") == "journal" for p in points)
        if (step == "writing" and calls["_write"] == 2) or (step == "commit" and commit):
            raise StoreError(f"injected failure at {step}")
        write(handle, points)

    def failing_set_payload(*args: Any) -> None:
        if step == "finishing":
            raise StoreError(f"injected failure at {step}")
        set_payload(*args)

    store._write = failing_write  # type: ignore[method-assign]
    store._set_payload = failing_set_payload  # type: ignore[method-assign]


@pytest.mark.parametrize("grace", ["backend's own", 0.0])
def test_every_step_of_a_replace_shows_one_whole_version(live: VectorStore, grace: Any) -> None:
    if grace == 0.0:
        live.replace_grace = 0.0  # the server finishes at once too, so its finishing steps are seen
    observed: list[str] = []

    def check(step: str) -> None:
        reads = seen(live)
        current = reads[0][0]
        assert reads == [(current, len(version(int(current[1:]))))] * 4, f"after {step}: {reads}"
        observed.append(current)

    after_each_write(live, check)
    live.replace_document(COLLECTION, DOC, version(1))
    live.replace_document(COLLECTION, DOC, version(2))
    # Old until the commit, new from then on: each swap happened in one step.
    assert observed[0] == "v0" and observed[-1] == "v2"
    changes = [(a, b) for a, b in zip(observed, observed[1:], strict=False) if a != b]
    assert changes == [("v0", "v1"), ("v1", "v2")]
    assert_whole(live, 2)


@pytest.mark.parametrize("step", ["writing", "commit", "finishing"])
def test_interrupted_replace_leaves_one_whole_version_and_a_repeat_completes_it(
    live: VectorStore, step: str
) -> None:
    if step == "finishing":
        live.replace_grace = 0.0  # finish within the call (the server otherwise finishes later)
    fail_at(live, step)
    with pytest.raises(StoreError, match="injected"):
        live.replace_document(COLLECTION, DOC, version(1))
    committed = step == "finishing"
    assert_whole(live, 1 if committed else 0)

    again = reopened(live)  # the restart: its first use repairs what was left
    try:
        assert_whole(again, 1 if committed else 0)
        again.replace_document(COLLECTION, DOC, version(3))
        assert_whole(again, 3)
        again.replace_grace = 0.0
        again.replace_document(COLLECTION, DOC, version(4))
        assert_whole(again, 4)
        # Finished: only the live version is stored, no hidden leftovers, no journal.
        stored = raw(again)
        assert len(stored) == len(version(4)) + len(CHUNKS)
        assert all(r.payload.get("_store_state") in (None, "live") for r in stored)
    finally:
        again.close()


def test_open_finishes_a_committed_replace(live: VectorStore) -> None:
    live.replace_grace = 0.0
    fail_at(live, "finishing")
    with pytest.raises(StoreError):
        live.replace_document(COLLECTION, DOC, version(1))
    assert len(raw(live)) > len(version(1)) + len(CHUNKS)  # old version and journal still stored
    again = reopened(live)
    try:
        assert_whole(again, 1)
        assert len(raw(again)) == len(version(1)) + len(CHUNKS)
    finally:
        again.close()


def test_replace_with_clashing_ids_keeps_ids_and_parents(live: VectorStore) -> None:
    parent = chunk(DOC, "parent", "all of version 5", None, "txt", "parent", sha256="v5")
    children = version(5)
    for child in children:
        child.payload["parent_id"] = parent.id
    live.replace_document(COLLECTION, DOC, [*children, parent])
    spec = QuerySpec(dense=axis((0, 1.0)), mode="dense", top_k=3, filters={"document_id": DOC})
    hits = live.query(COLLECTION, spec)
    assert hits[0].id in {c.id for c in children}
    assert "_store_id" not in hits[0].payload and "_store_version" not in hits[0].payload
    assert live.retrieve(COLLECTION, [hits[0].payload["parent_id"]])[0].text == "all of version 5"
    assert [h.id for h in live.scroll(COLLECTION, {"document_id": DOC})] == sorted(
        p.id for p in [*children, parent]
    )
    # An upsert after the replace overwrites a point in place, in the version readers see.
    changed = chunk(DOC, 0, "changed in place", axis((0, 1.0)), "txt", sha256="v5")
    live.upsert(COLLECTION, [changed])
    assert live.retrieve(COLLECTION, [changed.id])[0].text == "changed in place"
    assert live.count(COLLECTION, {"document_id": DOC}) == len(children) + 1


def test_points_stored_before_versions_are_read_and_replaced(live: VectorStore) -> None:
    # Collections written by earlier releases hold points with no fields of the store's own.
    legacy = chunk("old", 0, "An old chunk about lighthouses.", axis((7, 1.0)), "txt")
    with live._use(COLLECTION) as handle:
        live._write(handle, [live_point(legacy)])
    assert live.retrieve(COLLECTION, [legacy.id])[0].text == legacy.payload["text"]
    assert live.count(COLLECTION, {"document_id": "old"}) == 1
    new = chunk("old", 0, "A new chunk about harbours.", axis((7, 1.0)), "txt", sha256="v2")
    live.replace_document(COLLECTION, "old", [new])
    assert [h.text for h in live.scroll(COLLECTION, {"document_id": "old"})] == [
        "A new chunk about harbours."
    ]
    assert live.delete_document(COLLECTION, "old") == 1


def live_point(point: Point) -> StoredPoint:
    """The point as an earlier release stored it: the caller's payload only."""
    return StoredPoint(point.id, dict(point.payload), {"dense": list(point.dense or [])})


def test_replace_refuses_points_of_another_document(live: VectorStore) -> None:
    stray = chunk("other", 0, "Not this document.", axis((1, 1.0)), "txt")
    with pytest.raises(ValueError, match="belongs to document 'other'"):
        live.replace_document(COLLECTION, DOC, [*version(1), stray])
    reserved = chunk(DOC, 0, "x", axis((1, 1.0)), "txt")
    reserved.payload["_store_state"] = "live"
    with pytest.raises(ValueError, match="_store_"):
        live.upsert(COLLECTION, [reserved])
    assert_whole(live, 0)


def test_replace_in_an_absent_collection(store: VectorStore) -> None:
    with pytest.raises(CollectionNotFoundError, match="No collection named 'nowhere'"):
        store.replace_document("nowhere", DOC, version(0))


def test_server_reader_that_read_the_journal_before_the_commit_sees_the_old_version() -> None:
    """Why the server keeps the old version for `replace_grace`: reads do not block writes."""
    store = ServerStore(client=QdrantClient(":memory:"))
    store.create_collection(COLLECTION, DIM)
    store.upsert(COLLECTION, CHUNKS)
    store.replace_document(COLLECTION, DOC, version(0))
    with store._use(COLLECTION) as handle:
        before = store._journal(handle)
    store.replace_document(COLLECTION, DOC, version(1))
    assert_whole(store, 1)
    current = store._journal
    store._journal = lambda handle: before  # type: ignore[method-assign]
    assert_whole(store, 0)  # a read that looked before the commit finds the old version whole
    store._journal = current  # type: ignore[method-assign]
    store.close()


_REPLACE_FOREVER = """
import sys
sys.path.insert(0, sys.argv[2])
from tests.store.test_store_replace import DOC, version
from store.edge import EdgeStore
from tests.store.test_store_contract import COLLECTION
store = EdgeStore(sys.argv[1])
k = int(sys.argv[3])
print("ready", flush=True)
while True:
    k += 1
    store.replace_document(COLLECTION, DOC, version(k, size=700 if k % 2 else 1100))
"""


@pytest.mark.slow
def test_edge_replace_survives_sigkill(tmp_path: Path) -> None:
    """Kill a process mid-replace, again and again: each restart finds one version, whole."""
    root = tmp_path / "edge"
    store = EdgeStore(root)
    store.create_collection(COLLECTION, DIM)
    store.replace_document(COLLECTION, DOC, version(0, size=1100))
    store.close()
    rounds, start = 6, 0
    for round_ in range(rounds):
        child = subprocess.Popen(
            [sys.executable, "-c", _REPLACE_FOREVER, str(root), str(PROJECT_ROOT), str(start)],
            stdout=subprocess.PIPE,
            text=True,
            cwd=PROJECT_ROOT,
            env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT)},
        )
        assert child.stdout is not None and child.stdout.readline().strip() == "ready"
        time.sleep(0.3 + 0.37 * round_)
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
        store = EdgeStore(root)
        try:
            hits = store.scroll(COLLECTION, {"document_id": DOC})
            versions = {h.payload["sha256"] for h in hits}
            assert len(versions) == 1, f"round {round_}: versions {sorted(versions)} mixed"
            k = int(versions.pop()[1:])
            assert len(hits) == (700 if k % 2 else 1100), f"round {round_}: v{k} has {len(hits)}"
            start = max(start, k) + 1000  # each round writes versions no earlier round wrote
        finally:
            store.close()
