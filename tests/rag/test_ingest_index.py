"""A large collection gets its search index built after an ingestion adds to it."""

from __future__ import annotations

import pytest

from core.settings import Settings
from rag.service import RagService
from tests.conftest import SAMPLES


def _service_counting_optimize(monkeypatch, **settings) -> tuple[RagService, list[str]]:
    service = RagService(Settings(**settings))
    calls: list[str] = []
    real = service.store.optimize

    def optimize(collection: str) -> bool:
        calls.append(collection)
        return real(collection)

    monkeypatch.setattr(service.store, "optimize", optimize)
    return service, calls


@pytest.mark.integration
def test_ingestion_builds_the_index_once_the_collection_is_large_enough(monkeypatch):
    service, calls = _service_counting_optimize(monkeypatch, index_points=10)
    try:
        report = service.ingest([SAMPLES / "documents"], "big")
        assert report.chunks_added >= 10 and calls == ["big"]
        assert report.stage_seconds["index"] >= 0.0
        answer = service.ask("How often should the magnetic filter be emptied?", "big")
        assert not answer.abstained and "once a year" in answer.text
        again = service.ingest([SAMPLES / "documents"], "big")  # nothing new: nothing to index
        assert again.chunks_added == 0 and calls == ["big"]
    finally:
        service.close()


@pytest.mark.integration
def test_a_small_collection_is_searched_without_building_an_index(monkeypatch):
    service, calls = _service_counting_optimize(monkeypatch)  # default: from 20,000 points
    try:
        report = service.ingest([SAMPLES / "documents"], "small")
        assert report.chunks_added > 0 and calls == [] and "index" not in report.stage_seconds
    finally:
        service.close()
    with pytest.raises(ValueError):
        Settings(index_points=-1)
