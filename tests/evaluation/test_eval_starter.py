"""The LlamaIndex starter pipeline: LlamaIndex's own reader, splitter, index and retriever."""

from __future__ import annotations

from pathlib import Path

import pytest

from evaluation.datasets import Question, load_dataset, write_questions


@pytest.fixture
def dataset(tmp_path) -> Path:
    root = tmp_path / "set"
    docs = root / "documents"
    (docs / "sub").mkdir(parents=True)
    (docs / "sub" / "bees.txt").write_text("Honey bees dance to tell the hive where the flowers are. " * 3,
                                           encoding="utf-8")
    (docs / "tides.txt").write_text("Spring tides follow the new and full moon, when the sun and moon align. " * 3,
                                    encoding="utf-8")
    (docs / "broken.pdf").write_bytes(b"%PDF-1.7\nthis is not a PDF body")
    write_questions(root, [
        Question(id="bees", question="How do honey bees tell the hive where flowers are?",
                 documents=["sub/bees.txt"]),
        Question(id="tides", question="When do spring tides happen?", documents=["tides.txt"]),
    ])
    return root


def test_the_starter_ranks_documents_by_their_relative_path_and_notes_skipped_files(dataset, tmp_path, capsys):
    from core.settings import Settings
    from evaluation.runner import EvaluationRunner
    from evaluation.starter import starter_config
    from rag.service import RagService

    service = RagService(Settings(home=tmp_path / "home"))
    try:
        runner = EvaluationRunner(service)
        config = starter_config().resolved(service.settings)
        first = runner.evaluate(load_dataset(dataset), config)
        again = runner.evaluate(load_dataset(dataset), config)
    finally:
        service.close()
    assert "broken.pdf" not in capsys.readouterr().out  # stdout stays clean for `rag eval --json`
    rows = {r["id"]: r for r in first.rows}
    assert rows["bees"]["retrieved"][0]["document"] == "sub/bees.txt"
    assert rows["tides"]["retrieved"][0]["document"] == "tides.txt"
    assert first.metrics["hit@1"] == 1.0
    assert first.ingestion["failed"] == ["broken.pdf: LlamaIndex's reader skipped it"]
    assert first.ingestion["reused"] is False and again.ingestion["reused"] is True
    assert again.metrics["MRR@10"] == first.metrics["MRR@10"]
    # One LlamaIndex node per file here: 1024-token chunks hold each small file whole.
    assert first.ingestion["chunks"] == 2
    assert first.settings["chunk_size"] == 1024 and first.settings["retrieval"] == "dense"
