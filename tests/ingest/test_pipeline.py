"""The ingestion pipeline on its own: a real embedded store and BM25 encoder, a small
deterministic embedder, and files written in the test."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from ingest.pipeline import ChunkingOptions, IngestionPipeline
from retrieval.sparse import Bm25Encoder
from store.edge import EdgeStore

pytestmark = pytest.mark.integration

OPTIONS = ChunkingOptions(chunker="sentence", chunk_size=40, chunk_overlap=0)


class HashEmbedder:
    """Unit vectors from a hash of the text: stable, fast, and different for different texts."""

    model_name = "test-hash"
    dim = 16

    def embed(self, texts: list[str]) -> np.ndarray:
        rows = [np.frombuffer(hashlib.sha256(t.encode()).digest()[: self.dim], dtype=np.uint8) for t in texts]
        vectors = np.asarray(rows, dtype=np.float32) + 1.0
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


@pytest.fixture
def pipeline(tmp_path: Path):
    store = EdgeStore(tmp_path / "edge")
    yield IngestionPipeline(store, HashEmbedder(), Bm25Encoder())
    store.close()


def _write(folder: Path, name: str, sentences: int, word: str = "pump") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(" ".join(f"Sentence {i} says the {word} runs at {i} degrees." for i in range(sentences)))
    return path


def _points(pipeline: IngestionPipeline, collection: str, document_id: str):
    return pipeline.store.scroll(collection, {"document_id": document_id})


def test_chunks_are_stored_with_their_metadata_and_spans(pipeline, tmp_path):
    path = _write(tmp_path / "docs", "manual.txt", 30)
    report = pipeline.ingest([tmp_path / "docs"], "c", OPTIONS)
    [result] = report.files
    assert result.status == "ingested" and result.chunks > 1 and report.chunks_added == result.chunks
    points = _points(pipeline, "c", result.document_id)
    assert len(points) == result.chunks
    text = path.read_text()
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    for point in points:
        payload = point.payload
        assert payload["file_name"] == "manual.txt" and payload["collection"] == "c"
        assert payload["sha256"] == sha and payload["page"] == 1
        assert text[payload["start"]:payload["end"]] == payload["text"]  # the span points at the text
        assert payload["token_count"] > 0 and payload["embedding_model"] == "test-hash"
    assert {p.payload["position"] for p in points} == set(range(len(points)))


def test_unchanged_is_skipped_changed_is_replaced_whole_and_delete_removes(pipeline, tmp_path):
    docs = tmp_path / "docs"
    _write(docs, "a.txt", 30)
    _write(docs, "b.txt", 5, word="fan")
    first = {f.source: f for f in pipeline.ingest([docs], "c", OPTIONS).files}
    again = pipeline.ingest([docs], "c", OPTIONS)
    assert [f.status for f in again.files] == ["skipped", "skipped"]

    _write(docs, "a.txt", 8, word="compressor")  # fewer chunks than before
    changed = {f.source: f for f in pipeline.ingest([docs], "c", OPTIONS).files}
    assert changed["a.txt"].status == "ingested" and changed["b.txt"].status == "skipped"
    points = _points(pipeline, "c", first["a.txt"].document_id)
    assert len(points) == changed["a.txt"].chunks < first["a.txt"].chunks
    assert all("compressor" in p.payload["text"] for p in points)  # nothing of the old version left

    assert pipeline.delete_document("c", "a.txt") == changed["a.txt"].chunks
    assert _points(pipeline, "c", first["a.txt"].document_id) == []
    assert [d.file_name for d in pipeline.list_documents("c")] == ["b.txt"]


def test_a_bad_file_fails_alone(pipeline, tmp_path):
    docs = tmp_path / "docs"
    _write(docs, "good.txt", 5)
    (docs / "broken.pdf").write_bytes(b"%PDF-1.7 not really a pdf")
    report = pipeline.ingest([docs], "c", OPTIONS)
    status = {Path(f.path).name: f for f in report.files}
    assert status["good.txt"].status == "ingested"
    assert status["broken.pdf"].status == "failed" and status["broken.pdf"].error
    assert [d.file_name for d in pipeline.list_documents("c")] == ["good.txt"]


class RecordingEmbedder(HashEmbedder):
    """Keeps every text it embeds: what the pipeline put before each chunk."""

    def __init__(self) -> None:
        self.texts: list[str] = []

    def embed(self, texts: list[str]) -> np.ndarray:
        self.texts.extend(texts)
        return super().embed(texts)


def _ingest_recorded(path: Path, tmp_path: Path) -> tuple[RecordingEmbedder, list]:
    """Ingest the file's folder; the texts embedded and the file's stored points."""
    store = EdgeStore(tmp_path / "edge")
    try:
        embedder = RecordingEmbedder()
        report = IngestionPipeline(store, embedder, Bm25Encoder()).ingest([path.parent], "c", OPTIONS)
        return embedder, store.scroll("c", {"document_id": report.files[0].document_id})
    finally:
        store.close()


STEPS = " ".join(f"Step {i} asks you to confirm it once more." for i in range(12))


def test_a_chunk_is_embedded_with_the_headings_above_it_that_its_text_lacks(tmp_path):
    path = tmp_path / "docs" / "account-settings.md"
    path.parent.mkdir()
    path.write_text(f"# Account settings\n\nManage your account here.\n\n## Delete your account\n\n{STEPS}\n")
    embedder, points = _ingest_recorded(path, tmp_path)
    late = [p.payload for p in points if "Delete your account" not in p.payload["text"]
            and p.payload["heading_path"] == ["Account settings", "Delete your account"]]
    assert late  # steps that start a chunk after their heading
    for payload in late:
        # the file name, the title once, then the section the text does not name
        assert f"account-settings - Account settings\nDelete your account\n{payload['text']}" in embedder.texts
    first = next(p.payload for p in points if p.payload["position"] == 0)
    assert f"account-settings - Account settings\n{first['text']}" in embedder.texts  # its text holds its heading


def test_a_markdown_chunk_is_embedded_with_its_links_read_as_their_text(tmp_path):
    path = tmp_path / "docs" / "star-docs.md"
    path.parent.mkdir()
    path.write_text("After you star a doc, it lives in **[My Shortcuts](https://coda.io/shortcuts)** on your doc list.\n")
    embedder, points = _ingest_recorded(path, tmp_path)
    assert "](https" in points[0].payload["text"]  # stored as written: spans still point into the file
    assert embedder.texts == ["star-docs\nAfter you star a doc, it lives in My Shortcuts on your doc list."]


def test_a_pdf_chunk_is_embedded_without_its_outline_headings(tmp_path):
    from fpdf import FPDF

    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("Helvetica", size=11)
    pdf.start_section("Table of Contents")  # a filing's outline: navigation, not a topic
    pdf.multi_cell(0, 6, STEPS)
    path = tmp_path / "docs" / "filing.pdf"
    path.parent.mkdir()
    pdf.output(str(path))
    embedder, points = _ingest_recorded(path, tmp_path)
    assert any(p.payload["heading_path"] == ["Table of Contents"] for p in points)
    assert embedder.texts and not any("Table of Contents" in text for text in embedder.texts)
