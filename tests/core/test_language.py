"""The language setting: one place for stopwords, stemming and the "latest" cue, offline."""

from __future__ import annotations

import pytest

from core.language import LANGUAGES, check_language, latest_cue, stemmer, stopwords
from core.settings import Settings

pytestmark = pytest.mark.unit


def test_every_offered_language_has_stopwords_and_a_stemmer_without_a_download():
    for language in LANGUAGES:
        assert len(stopwords(language)) > 20, language
        assert stemmer(language).stem("x") is not None
    assert {"the", "and", "what", "s"} <= stopwords("english")
    assert {"der", "und", "nicht"} <= stopwords("german")
    assert "the" not in stopwords("german")


def test_english_is_the_list_and_stemmer_the_answer_checks_used_before():
    from llama_index.core.utils import globals_helper

    assert stopwords("english") == frozenset(globals_helper.stopwords)
    assert stemmer("english").stem("running") == "run"
    assert stemmer("german").stem("Häuser") == "haus"


def test_unknown_languages_are_refused_naming_the_choices():
    assert check_language(" German ") == "german"
    with pytest.raises(ValueError, match="Unknown language 'klingon': use one of arabic, danish"):
        check_language("klingon")
    with pytest.raises(ValueError, match="Unknown language 'klingon'"):
        Settings(language="klingon")


def test_the_setting_defaults_to_english_and_reads_rag_language(monkeypatch):
    assert Settings().language == "english"
    monkeypatch.setenv("RAG_LANGUAGE", "French")
    assert Settings().language == "french"


def test_only_english_has_a_measured_latest_cue():
    cue = latest_cue("english")
    assert cue is not None and cue.search("the most recent filing")
    assert latest_cue("french") is None


def test_the_answer_checks_and_bm25_follow_the_setting(monkeypatch):
    from answer import grounding
    from core.settings import get_settings
    from retrieval.sparse import Bm25Encoder

    monkeypatch.setenv("RAG_LANGUAGE", "german")
    get_settings.cache_clear()
    grounding._stemmer.cache_clear()
    grounding._stopwords.cache_clear()
    try:
        assert grounding._stemmer().stem("Häuser") == "haus"
        assert "und" in grounding._stopwords() and "the" not in grounding._stopwords()
    finally:
        grounding._stemmer.cache_clear()
        grounding._stopwords.cache_clear()
    german, english = Bm25Encoder(language="german"), Bm25Encoder()
    assert german.config["language"] == "german"
    # German stopwords go, English ones stay, and the other way round.
    assert len(german.encode_query("und die Häuser").indices) == 1
    assert len(english.encode_query("und die Häuser").indices) == 3
    with pytest.raises(ValueError, match="Unknown language"):
        Bm25Encoder(language="klingon")
