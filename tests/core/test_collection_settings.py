"""A collection's own settings under RAG_HOME: load, save, and the answer path using its threshold."""

from __future__ import annotations

import pytest

from core.collection_settings import (
    CollectionSettings,
    abstain_threshold_for,
    collection_settings_path,
    load_collection_settings,
    save_collection_settings,
)
from core.errors import RagError
from core.settings import Settings


@pytest.mark.unit
def test_save_load_and_fall_back_to_the_global_setting(tmp_path) -> None:
    settings = Settings(home=tmp_path, abstain_threshold=0.51)
    assert load_collection_settings(tmp_path, "notes") == CollectionSettings()
    assert abstain_threshold_for(settings, "notes") == 0.51
    path = save_collection_settings(tmp_path, "notes", CollectionSettings(abstain_threshold=0.37,
                                                                          calibration={"split": "dev"}))
    assert path == tmp_path / "collections" / "notes.json"
    assert load_collection_settings(tmp_path, "notes").calibration == {"split": "dev"}
    assert abstain_threshold_for(settings, "notes") == 0.37
    assert abstain_threshold_for(settings, "other") == 0.51


@pytest.mark.unit
def test_bad_names_and_broken_files_say_what_to_do(tmp_path) -> None:
    with pytest.raises(RagError, match="letters, digits"):
        collection_settings_path(tmp_path, "../escape")
    path = collection_settings_path(tmp_path, "notes")
    path.parent.mkdir(parents=True)
    path.write_text('{"abstain_threshold": -1}')
    with pytest.raises(RagError, match="fix or delete it"):
        load_collection_settings(tmp_path, "notes")


@pytest.mark.integration
def test_the_answer_path_uses_the_collections_threshold(tmp_path) -> None:
    from rag.service import RagService

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "trains.txt").write_text("The night train to Kessel leaves platform 3 at 22:40 and arrives at 06:15.")
    service = RagService(Settings(home=tmp_path / "home", abstain_threshold=0.51))
    try:
        service.ingest([docs], "notes")
        question = "What time does the night train to Kessel leave?"
        answered = service.ask(question, "notes")
        assert not answered.abstained and answered.confidence is not None
        # Calibrated above this question's confidence: the same question now abstains.
        save_collection_settings(service.settings.home, "notes",
                                 CollectionSettings(abstain_threshold=answered.confidence + 0.01))
        assert service.ask(question, "notes").abstained
        # A per-call threshold (the evaluation's) wins over the collection's.
        assert not service.ask(question, "notes", abstain_threshold=0.1).abstained
    finally:
        service.close()
