"""The BM25 encoder: Qdrant's tokenizer, stopwords and stemmer; documents weighted, queries flat."""

from __future__ import annotations

import pytest

from retrieval.sparse import Bm25Encoder

pytestmark = pytest.mark.unit


def test_documents_and_queries_share_stemmed_terms_and_drop_stopwords():
    encoder = Bm25Encoder()
    [doc] = encoder.encode_documents(["The heat pumps are running quietly"])
    query = encoder.encode_query("heat pump runs")
    assert set(query.indices) <= set(doc.indices)  # "pumps"/"pump" and "running"/"runs" stem alike
    assert len(doc.indices) == 4  # heat, pump, run, quiet: "the" and "are" are stopwords
    assert encoder.encode_query("the and of").indices == []


def test_queries_weigh_each_term_once_and_documents_by_frequency():
    encoder = Bm25Encoder()
    query = encoder.encode_query("refrigerant refrigerant propane")
    assert sorted(query.values) == [1.0, 1.0]
    [once, thrice] = encoder.encode_documents(["refrigerant propane", "refrigerant refrigerant refrigerant propane"])
    weight = dict(zip(thrice.indices, thrice.values, strict=True))
    single = dict(zip(once.indices, once.values, strict=True))
    shared = set(weight) & set(single)
    assert len(shared) == 2
    assert max(weight[i] / single[i] for i in shared) > 1.0  # repeated term weighs more, saturating


def test_encoding_is_deterministic_across_instances():
    text = "Compressor discharge temperature above 110 C"
    assert Bm25Encoder().encode_documents([text]) == Bm25Encoder().encode_documents([text])


def test_language_changes_the_stemmer_and_an_unknown_one_is_refused():
    german = Bm25Encoder(language="german")
    assert german.encode_query("Wärmepumpen").indices == german.encode_query("Wärmepumpe").indices
    with pytest.raises(ValueError, match="klingon"):
        Bm25Encoder(language="klingon")
