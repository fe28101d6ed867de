"""Many questions at once, on threads as Streamlit serves its sessions, while an upload is ingested
in the same process: no errors, no chunk lost or doubled, and each request logged with its own
question, timings and sources."""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from rag.service import RagService
from tests.conftest import SAMPLES

pytestmark = pytest.mark.integration

QUESTIONS = [json.loads(line) for line in (SAMPLES / "questions.jsonl").read_text().splitlines() if line.strip()]
ASKED = [q for q in QUESTIONS if q.get("answerable")][:12]
THREADS = 6


def upload(folder: Path, files: int) -> list[Path]:
    folder.mkdir()
    paths = []
    for f in range(files):
        path = folder / f"upload-{f}.txt"
        path.write_text(" ".join(f"Upload {f} line {i}: the gearbox model G{f}-{i} turns at {100 + i} rpm."
                                 for i in range(60)))
        paths.append(path)
    return paths


def test_questions_on_threads_while_an_upload_is_ingested(tmp_path: Path) -> None:
    service = RagService(source="web")
    try:
        assert not service.ingest([SAMPLES / "documents"], "shared").failed
        before = {d.source: (d.sha256, d.chunks) for d in service.list_documents("shared")}
        files = upload(tmp_path / "upload", 4)
        started = threading.Event()

        def ingest() -> None:
            started.set()
            report = service.ingest(files, "shared")
            assert not report.failed, report.failed

        def ask(question: dict) -> tuple[dict, object]:
            started.wait()
            return question, service.ask(question["question"], "shared")

        with ThreadPoolExecutor(max_workers=THREADS + 1) as pool:
            ingesting = pool.submit(ingest)
            asked = [pool.submit(ask, q) for q in ASKED]
            results = [future.result(timeout=600) for future in asked]  # any error is raised here
            ingesting.result(timeout=600)

        # No chunk lost or doubled: every document whole, the earlier ones as they were.
        documents = {d.source: d for d in service.list_documents("shared")}
        assert {s: (documents[s].sha256, documents[s].chunks) for s in before} == before
        assert {f.name for f in files} <= set(documents)
        chunks = service.store.scroll("shared", {"level": ["leaf", "child"]})
        assert len({c.id for c in chunks}) == len(chunks) == sum(d.chunks for d in documents.values())
        for source, document in documents.items():
            mine = [c for c in chunks if c.payload["source"] == source]
            assert sorted(c.payload["chunk_index"] for c in mine) == list(range(document.chunks)), source

        # Each request logged once, with its own question, timings and sources.
        rows = {row.id: row for row in service.request_log.rows(collection="shared")}
        assert len(rows) == len(results)
        for question, answer in results:
            row = rows[answer.request_id]
            assert row.question == question["question"] == answer.question
            assert row.error is None and row.source == "web"
            assert row.timings == pytest.approx(answer.timings_ms)
            assert [s["chunk_id"] for s in row.sources] == [c.chunk_id for c in answer.citations]
            if not answer.abstained:
                assert {c.document for c in answer.citations} & set(question["documents"]), (question, answer.text)
    finally:
        service.close()
