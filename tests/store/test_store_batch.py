"""Replacing many documents in few writes, and one large document in slices, on both stores.

`replace_documents` and `Replacement` keep `replace_document`'s promise for every document: a
reader sees its whole old version or its whole new one; a failure or a crash before the commit
leaves the old one; one document's failure leaves the others to be replaced.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from core.errors import StoreError
from store.base import Point, ReplaceError, VectorStore
from store.edge import EdgeStore
from tests.spies import after_each_write, counting
from tests.store.test_store_contract import COLLECTION, DIM, PROJECT_ROOT, axis, chunk
from tests.store.test_store_replace import raw, reopened

pytestmark = pytest.mark.integration

DOCUMENTS = [f"doc{d}" for d in range(12)]


def version(document: str, k: int, size: int = 10) -> list[Point]:
    """Version k of a document: `size` chunks whose texts and sha256 say the version."""
    return [
        chunk(
            document,
            i,
            f"{document} chunk {i} version {k}",
            axis((i % DIM, 1.0)),
            "txt",
            sha256=f"v{k}",
        )
        for i in range(size)
    ]


def versions_seen(store: VectorStore) -> dict[str, tuple[str, int]]:
    """Each document's (version, points) as a reader sees it, after checking no read mixes versions."""
    found: dict[str, set[str]] = {}
    counts: Counter[str] = Counter()
    for hit in store.scroll(COLLECTION):
        found.setdefault(hit.payload["document_id"], set()).add(hit.payload["sha256"])
        counts[hit.payload["document_id"]] += 1
    for document, shas in found.items():
        assert len(shas) == 1, f"{document}: versions {sorted(shas)} mixed"
        assert store.count(COLLECTION, {"document_id": document}) == counts[document]
    return {document: (shas.pop(), counts[document]) for document, shas in found.items()}


@pytest.fixture
def stored(store: VectorStore) -> VectorStore:
    """The store with version 0 of every document, each replace finished at once."""
    store.create_collection(COLLECTION, DIM)
    store.replace_grace = 0.0
    store.replace_documents(COLLECTION, {d: version(d, 0) for d in DOCUMENTS})
    return store


def test_many_documents_are_replaced_in_fewer_writes_and_one_flush(stored: VectorStore) -> None:
    assert versions_seen(stored) == dict.fromkeys(DOCUMENTS, ("v0", 10))
    one_by_one = counting(stored)
    for document in DOCUMENTS:
        stored.replace_document(COLLECTION, document, version(document, 1))
    assert versions_seen(stored) == dict.fromkeys(DOCUMENTS, ("v1", 10))

    stored = reopened(stored)  # the same data, calls counted afresh
    stored.replace_grace = 0.0
    stored.count(COLLECTION)  # its first use (the repair on opening) done
    batched = counting(stored)
    stored.replace_documents(COLLECTION, {d: version(d, 2, size=8) for d in DOCUMENTS})
    assert versions_seen(stored) == dict.fromkeys(DOCUMENTS, ("v2", 8))
    # 12 documents of 8 points fit one write of new points, then one journal write.
    assert batched["_write"] == 2 and one_by_one["_write"] == 2 * len(DOCUMENTS)
    assert batched["_flush"] == 1 and one_by_one["_flush"] == len(DOCUMENTS)
    total = sum(batched.values())
    assert total * 4 < sum(one_by_one.values()), (batched, one_by_one)
    # Finished: only the new versions are stored, no journal and no hidden points left.
    assert len(raw(stored)) == 8 * len(DOCUMENTS)
    stored.close()


def test_each_write_of_a_batch_shows_every_document_whole(stored: VectorStore) -> None:
    # New points of several documents in each write, each write a place for a reader to look.
    stored.write_batch = 7
    observed: list[dict[str, tuple[str, int]]] = []

    def check(step: str) -> None:
        seen = versions_seen(stored)
        assert set(seen) == set(DOCUMENTS), f"after {step}: documents missing"
        for document, (sha, points) in seen.items():
            assert points == (10 if sha == "v0" else 9), (
                f"after {step}: {document} {sha} has {points}"
            )
        observed.append(seen)

    after_each_write(stored, check)
    stored.replace_documents(COLLECTION, {d: version(d, 1, size=9) for d in DOCUMENTS})
    firsts = [seen for seen in observed if any(sha == "v1" for sha, _ in seen.values())]
    assert observed[0] == dict.fromkeys(DOCUMENTS, ("v0", 10))  # hidden while written
    assert firsts[0] == dict.fromkeys(DOCUMENTS, ("v1", 9))  # then all swapped by the commit
    assert len(observed) - len(firsts) == -(-9 * len(DOCUMENTS) // 7)  # every write before it, old


def test_a_document_whose_write_fails_keeps_its_old_version_and_the_others_are_replaced(
    stored: VectorStore,
) -> None:
    batch = {d: version(d, 1) for d in DOCUMENTS}
    batch["doc5"][3].dense = [1.0, 0.0, 0.0]  # the engine refuses a vector of the wrong dimension
    with pytest.raises(ReplaceError, match="'doc5': .*dimension") as failure:
        stored.replace_documents(COLLECTION, batch)
    assert list(failure.value.failed) == ["doc5"]
    assert versions_seen(stored) == {d: ("v0" if d == "doc5" else "v1", 10) for d in DOCUMENTS}
    # The single-document call raises the document's own error, as before.
    with pytest.raises(Exception, match="dimension"):
        stored.replace_document(COLLECTION, "doc5", batch["doc5"])
    stored.replace_documents(COLLECTION, {"doc5": version("doc5", 2)})
    assert versions_seen(stored)["doc5"] == ("v2", 10)
    assert len(raw(stored)) == 10 * len(DOCUMENTS)  # the refused version's points cleared


def test_bad_input_is_refused_before_anything_is_written(stored: VectorStore) -> None:
    calls = counting(stored)
    stray = {**{d: version(d, 1) for d in DOCUMENTS}, "doc3": version("doc4", 1)}
    with pytest.raises(ValueError, match="belongs to document 'doc4', not 'doc3'"):
        stored.replace_documents(COLLECTION, stray)
    clash = version("doc2", 1)[0]
    clash.id = version("doc1", 1)[0].id
    with pytest.raises(ValueError, match="given for documents 'doc1' and 'doc2'"):
        stored.replace_documents(COLLECTION, {"doc1": version("doc1", 1), "doc2": [clash]})
    with stored.replacing(COLLECTION) as replacement:
        replacement.add("doc1", version("doc1", 1)[:5])
        with pytest.raises(ValueError, match="already added"):
            replacement.add("doc1", version("doc1", 1)[4:])
    assert sum(calls.values()) == 0
    assert versions_seen(stored) == dict.fromkeys(DOCUMENTS, ("v0", 10))


@pytest.mark.parametrize("step", ["commit", "finishing"])
def test_a_failed_commit_leaves_one_whole_version_of_each_and_a_repeat_completes_it(
    stored: VectorStore, step: str
) -> None:
    write, set_payload = stored._write, stored._set_payload

    def failing_write(handle: Any, points: list[Any]) -> None:
        if step == "commit" and any(p.payload.get("_store_state") == "journal" for p in points):
            raise StoreError("injected failure at the commit")
        write(handle, points)

    def failing_set_payload(*args: Any) -> None:
        if step == "finishing":
            raise StoreError("injected failure while finishing")
        set_payload(*args)

    stored._write = failing_write  # type: ignore[method-assign]
    stored._set_payload = failing_set_payload  # type: ignore[method-assign]
    with pytest.raises(StoreError, match="injected"):
        stored.replace_documents(COLLECTION, {d: version(d, 1) for d in DOCUMENTS})
    expected = "v1" if step == "finishing" else "v0"
    assert versions_seen(stored) == dict.fromkeys(DOCUMENTS, (expected, 10))
    again = reopened(stored)  # the restart repairs what was left
    try:
        again.replace_grace = 0.0
        assert versions_seen(again) == dict.fromkeys(DOCUMENTS, (expected, 10))
        again.replace_documents(COLLECTION, {d: version(d, 3) for d in DOCUMENTS})
        assert versions_seen(again) == dict.fromkeys(DOCUMENTS, ("v3", 10))
        assert len(raw(again)) == 10 * len(DOCUMENTS)
    finally:
        again.close()


def test_a_large_document_is_written_in_slices_and_swapped_at_the_end(stored: VectorStore) -> None:
    stored.write_batch = 16
    calls = counting(stored)
    large = version("doc0", 1, size=100)
    with stored.replacing(COLLECTION) as replacement:
        for start in range(0, len(large), 25):
            replacement.add("doc0", large[start : start + 25])
            # Each slice is written (hidden) before the next is made; readers still see the old version.
            # (and two writes for each replace of doc1 below)
            assert calls["_write"] == (start + 25) // 16 + 2 * (start // 25)
            assert versions_seen(stored)["doc0"] == ("v0", 10)
            # Another replace in between (it clears uncommitted points) leaves the slices alone.
            stored.replace_document(COLLECTION, "doc1", version("doc1", start + 1))
        assert replacement.staged_points == 100
        assert replacement.commit() == {}
    assert versions_seen(stored)["doc0"] == ("v1", 100)
    assert len(raw(stored)) == 100 + 10 * (len(DOCUMENTS) - 1)


def test_a_large_document_given_up_midway_keeps_its_old_version(stored: VectorStore) -> None:
    stored.write_batch = 16
    large = version("doc0", 1, size=100)
    with pytest.raises(RuntimeError, match="embedder"):
        with stored.replacing(COLLECTION) as replacement:
            replacement.add("doc0", large[:50])
            raise RuntimeError("the embedder failed on the next slice")
    assert versions_seen(stored)["doc0"] == ("v0", 10)
    # Its written slices stay, hidden, until a later replace clears them.
    assert len(raw(stored)) > 10 * len(DOCUMENTS)
    # One document given up, one committed, in one replacement.
    with stored.replacing(COLLECTION) as replacement:
        replacement.add("doc0", large[:50])
        replacement.add("doc1", version("doc1", 1))
        replacement.abandon("doc0", RuntimeError("the embedder failed"))
        failed = replacement.commit()
    assert list(failed) == ["doc0"] and "embedder" in str(failed["doc0"])
    seen = versions_seen(stored)
    assert seen["doc0"] == ("v0", 10) and seen["doc1"] == ("v1", 10)
    assert len(raw(stored)) == 10 * len(DOCUMENTS)  # the leftovers were cleared by that replace


_STAGE_AND_WAIT = """
import sys, time
sys.path.insert(0, sys.argv[2])
from store.edge import EdgeStore
from tests.store.test_store_batch import version
from tests.store.test_store_contract import COLLECTION
store = EdgeStore(sys.argv[1])
store.write_batch = 50
replacement = store.replacing(COLLECTION)
replacement.add("doc0", version("doc0", 1, size=500)[:300])  # 6 writes of the 10 it needs
print("staged", flush=True)
time.sleep(60)
"""


def test_edge_killed_between_slices_keeps_the_old_version(tmp_path: Path) -> None:
    root = tmp_path / "edge"
    store = EdgeStore(root)
    store.create_collection(COLLECTION, DIM)
    store.replace_documents(COLLECTION, {d: version(d, 0) for d in DOCUMENTS})
    store.close()
    child = subprocess.Popen(
        [sys.executable, "-c", _STAGE_AND_WAIT, str(root), str(PROJECT_ROOT)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=PROJECT_ROOT,
        env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT)},
    )
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "staged"
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
    store = EdgeStore(root)
    try:
        assert versions_seen(store) == dict.fromkeys(DOCUMENTS, ("v0", 10))
        assert len(raw(store)) == 10 * len(DOCUMENTS)  # the open cleared the 300 written points
        store.replace_documents(COLLECTION, {"doc0": version("doc0", 1, size=500)})
        assert versions_seen(store)["doc0"] == ("v1", 500)
    finally:
        store.close()
