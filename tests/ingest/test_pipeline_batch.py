"""Ingestion stores many small files in few commits and a large one in slices, on the real embedded
store: fewer write calls and flushes, results and errors still per file, the old version of a
document visible until its new one is whole."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ingest.pipeline import ChunkingOptions, IngestionPipeline, document_id_for
from retrieval.sparse import Bm25Encoder
from store.edge import EdgeStore
from tests.ingest.test_pipeline import HashEmbedder
from tests.spies import counting

pytestmark = pytest.mark.integration

OPTIONS = ChunkingOptions(chunker="sentence", chunk_size=40, chunk_overlap=0)


def write_files(folder: Path, count: int, sentences: int = 6, word: str = "pump") -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for n in range(count):
        path = folder / f"note{n:02d}.txt"
        path.write_text(" ".join(f"Note {n} sentence {i} says the {word} runs at {i} degrees." for i in range(sentences)))
        paths.append(path)
    return paths


def stored(store: EdgeStore, collection: str, document_id: str) -> tuple[set[str], int]:
    """The sha256 values and the number of points a reader sees for a document."""
    points = store.scroll(collection, {"document_id": document_id})
    return {p.payload["sha256"] for p in points}, len(points)


@pytest.fixture
def store(tmp_path: Path):
    built = EdgeStore(tmp_path / "edge")
    built.create_collection("c", HashEmbedder.dim)
    built.count("c")  # its first use (the repair on opening) done before any call is counted
    yield built
    built.close()


def test_small_files_share_commits_with_fewer_writes_and_flushes(store, tmp_path):
    files = write_files(tmp_path / "docs", 12)
    one_by_one = counting(store)
    per_file = IngestionPipeline(store, HashEmbedder(), Bm25Encoder(), batch_points=1)
    first = per_file.ingest([tmp_path / "docs"], "c", OPTIONS)
    assert [f.status for f in first.files] == ["ingested"] * 12

    write_files(tmp_path / "docs", 12, word="fan")  # every file changed
    fresh = EdgeStore(store.root)
    fresh.count("c")
    batched_calls = counting(fresh)
    events: list[tuple[str, int]] = []

    def progress(event: dict[str, Any]) -> None:
        if event["event"] == "done":  # done means stored: a reader sees the file's new chunks then
            result = event["result"]
            events.append((Path(event["file"]).name, event["index"]))
            shas, count = stored(fresh, "c", result.document_id)
            assert count == result.chunks > 0
            assert shas == {hashlib.sha256(Path(event["file"]).read_bytes()).hexdigest()}

    report = IngestionPipeline(fresh, HashEmbedder(), Bm25Encoder()).ingest(
        [tmp_path / "docs"], "c", OPTIONS, progress=progress)
    fresh.close()
    assert [f.status for f in report.files] == ["ingested"] * 12
    assert events == [(p.name, i) for i, p in enumerate(files, start=1)]
    assert report.chunks_added == sum(f.chunks for f in report.files) == sum(f.chunks for f in first.files)
    for result in report.files:
        shas, count = stored(store, "c", result.document_id)
        assert len(shas) == 1 and count == result.chunks
        assert all("fan" in p.text for p in store.scroll("c", {"document_id": result.document_id}))
    # One commit for the twelve files: one write of their points, one of their journal, one flush.
    assert batched_calls["_flush"] == 1 and one_by_one["_flush"] == 12
    assert batched_calls["_write"] == 2 and one_by_one["_write"] == 24
    assert sum(batched_calls.values()) * 5 < sum(one_by_one.values())


def test_a_large_document_is_embedded_and_written_in_slices_and_swapped_at_the_end(store, tmp_path):
    path = write_files(tmp_path / "docs", 1, sentences=300)[0]
    pipeline = IngestionPipeline(store, HashEmbedder(), Bm25Encoder(), slice_chunks=40)
    old = pipeline.ingest([path], "c", OPTIONS).files[0]
    assert old.status == "ingested" and old.chunks > 120
    old_sha = stored(store, "c", old.document_id)[0]

    write_files(tmp_path / "docs", 1, sentences=300, word="fan")
    store.write_batch = 32
    calls = counting(store)
    embedder = HashEmbedder()
    seen: list[tuple[int, int, set[str], int]] = []
    embed = embedder.embed

    def watching_embed(texts: list[str]) -> np.ndarray:
        # Before each slice is embedded: how many points were written, and what a reader sees.
        seen.append((len(texts), calls["_write"], *stored(store, "c", old.document_id)))
        return embed(texts)

    embedder.embed = watching_embed  # type: ignore[method-assign]
    new = IngestionPipeline(store, embedder, Bm25Encoder(), slice_chunks=40).ingest([path], "c", OPTIONS).files[0]
    assert new.status == "ingested" and new.chunks == old.chunks
    assert [size for size, *_ in seen] == [40] * (new.chunks // 40) + ([new.chunks % 40] if new.chunks % 40 else [])
    # Slices were written while later ones were still to be embedded, never all vectors at once...
    writes = [written for _, written, *_ in seen]
    assert writes == sorted(writes) and writes[-1] >= (new.chunks - 40) // 32 > writes[0] == 0
    # ...and readers saw the whole old version until the commit, then the whole new one.
    assert all(shas == old_sha and count == old.chunks for _, _, shas, count in seen)
    shas, count = stored(store, "c", new.document_id)
    assert shas != old_sha and len(shas) == 1 and count == new.chunks
    assert calls["_flush"] == 1


class FailingEmbedder(HashEmbedder):
    """Fails on texts that say "poison"; gives a vector of the wrong size for texts that say "crooked"."""

    def embed(self, texts: list[str]) -> np.ndarray:
        if any("poison" in t for t in texts):
            raise RuntimeError("the embedder ran out of memory")
        vectors = super().embed(texts)
        if any("crooked" in t for t in texts):
            return vectors[:, :3]
        return vectors


def test_errors_stay_with_their_file_and_keep_its_old_version(store, tmp_path):
    docs = tmp_path / "docs"
    write_files(docs, 6)
    large = write_files(tmp_path / "large", 1, sentences=200)[0]
    large = large.rename(docs / "large.txt")
    pipeline = IngestionPipeline(store, HashEmbedder(), Bm25Encoder(), slice_chunks=30)
    before = {f.source: f for f in pipeline.ingest([docs], "c", OPTIONS).files}
    assert all(f.status == "ingested" for f in before.values())

    write_files(docs, 6, word="fan")
    (docs / "note01.txt").write_text("Note one is crooked. " * 5)  # the store refuses its vectors
    text = large.read_text()
    large.write_text(text.replace("pump", "fan")[: len(text) // 2] + " poison " + text[len(text) // 2 :])
    (docs / "empty.txt").write_text("   ")
    failing = IngestionPipeline(store, FailingEmbedder(), Bm25Encoder(), slice_chunks=30)
    report = {f.source: f for f in failing.ingest([docs], "c", OPTIONS).files}

    assert report["note01.txt"].status == "failed" and "dimension" in report["note01.txt"].error
    assert report["large.txt"].status == "failed" and "out of memory" in report["large.txt"].error
    assert report["empty.txt"].status == "failed" and report["empty.txt"].error
    for name in ("note01.txt", "large.txt"):  # the old version, whole
        assert report[name].chunks == 0
        shas, count = stored(store, "c", before[name].document_id)
        assert len(shas) == 1 and count == before[name].chunks
        assert all("pump" in p.text for p in store.scroll("c", {"document_id": before[name].document_id}))
    others = [name for name in report if name.startswith("note") and name != "note01.txt"]
    assert len(others) == 5 and all(report[name].status == "ingested" for name in others)
    for name in others:
        assert all("fan" in p.text for p in store.scroll("c", {"document_id": before[name].document_id}))
    # Nothing half written shows: the old versions of the two and the new ones of the others.
    expected = before["note01.txt"].chunks + before["large.txt"].chunks + sum(report[n].chunks for n in others)
    assert store.count("c") == expected


def test_the_same_document_twice_in_one_ingest_ends_with_the_last(store, tmp_path):
    first, second = tmp_path / "a" / "same.txt", tmp_path / "b" / "same.txt"
    first.parent.mkdir()
    second.parent.mkdir()
    first.write_text("The pump runs hot. " * 20)
    second.write_text("The fan runs cold. " * 10)
    pipeline = IngestionPipeline(store, HashEmbedder(), Bm25Encoder())
    report = pipeline.ingest([first, second], "c", OPTIONS)
    assert [f.status for f in report.files] == ["ingested", "ingested"]
    points = store.scroll("c", {"document_id": document_id_for("c", "same.txt")})
    assert len(points) == report.files[1].chunks and all("fan" in p.text for p in points)
    # The first one failing (after some of its points were staged beside another file's) does not
    # fail the second.
    other = tmp_path / "other.txt"
    other.write_text("Another file waits in the same commit. " * 5)
    first.write_text("The pump runs hot. " * 60 + "poison")
    second.write_text("The heater runs warm. " * 10)
    report = IngestionPipeline(store, FailingEmbedder(), Bm25Encoder(), slice_chunks=2).ingest(
        [other, first, second], "c", OPTIONS)
    assert [f.status for f in report.files] == ["ingested", "failed", "ingested"]
    assert "memory" in str(report.files[1].error)
    points = store.scroll("c", {"document_id": document_id_for("c", "same.txt")})
    assert len(points) == report.files[2].chunks and all("heater" in p.text for p in points)


def test_batch_and_slice_sizes_must_be_positive(store):
    with pytest.raises(ValueError, match="batch_points and slice_chunks"):
        IngestionPipeline(store, HashEmbedder(), Bm25Encoder(), batch_points=0)
