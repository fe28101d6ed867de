"""Reading and chunking ahead of the embedder: in order, overlapping, bounded, errors per file."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from ingest.pipeline import read_ahead

pytestmark = pytest.mark.unit


class RecordingChunker:
    """Splits a document into one chunk and records which files it has split."""

    def __init__(self) -> None:
        self.split_files: list[str] = []
        self.lock = threading.Lock()
        self.events: dict[str, threading.Event] = {}

    def split(self, document):  # noqa: ANN001, ANN201
        with self.lock:
            self.split_files.append(document.name)
            self.events.setdefault(document.name, threading.Event()).set()
        if document.name == "bad.txt":
            raise ValueError("chunker bug")
        return [document.name]

    def done(self, name: str) -> threading.Event:
        with self.lock:
            return self.events.setdefault(name, threading.Event())


@pytest.fixture
def files(tmp_path: Path) -> list[Path]:
    paths = []
    for i in range(8):
        path = tmp_path / f"f{i}.txt"
        path.write_text(f"Document number {i}.\n", encoding="utf-8")
        paths.append(path)
    return paths


def test_files_come_in_order_and_the_next_is_read_while_one_is_processed(files):
    chunker = RecordingChunker()
    ahead = read_ahead(files, chunker, None, None, depth=2)
    first = next(ahead)
    assert first.document.name == "f0.txt" and first.chunks == ["f0.txt"]
    # While the consumer still holds f0 (embedding it), the thread has already read and chunked f1.
    assert chunker.done("f1.txt").wait(timeout=30)
    rest = list(ahead)
    assert [r.document.name for r in rest] == [f"f{i}.txt" for i in range(1, 8)]
    assert all(r.read_seconds > 0 for r in [first, *rest])


def test_read_ahead_is_bounded(files):
    chunker = RecordingChunker()
    ahead = read_ahead(files, chunker, None, None, depth=2)
    next(ahead)
    assert chunker.done("f3.txt").wait(timeout=30)  # f1, f2 wait in the queue; f3 waits to be put
    assert not chunker.done("f4.txt").wait(timeout=1.0)
    assert len(chunker.split_files) == 4
    ahead.close()  # the consumer stops early: the thread stops too
    assert len(chunker.split_files) == 4


def test_an_unreadable_or_unsplittable_file_travels_as_its_error(tmp_path):
    good = tmp_path / "good.txt"
    good.write_text("Fine.\n", encoding="utf-8")
    bad = tmp_path / "bad.txt"
    bad.write_text("The chunker fails on this one.\n", encoding="utf-8")
    missing = tmp_path / "missing.txt"
    results = list(read_ahead([missing, bad, good], RecordingChunker(), None, None))
    assert results[0].document is None and "not found" in str(results[0].error)
    assert results[1].document is not None and isinstance(results[1].error, ValueError)
    assert results[2].error is None and results[2].chunks == ["good.txt"]
