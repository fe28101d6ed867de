"""CohereReranker against the stub's /v2/rerank; the price table and context windows."""

from __future__ import annotations

import pytest
from vendor_stub import status

from core.types import ScoredChunk, Usage
from llm.cohere_rerank import CohereReranker
from llm.errors import ProviderAuthError, ProviderUnavailableError
from llm.pricing import PriceTable
from llm.tokens import DEFAULT_CONTEXT_WINDOW, context_window


def chunks(*texts: str) -> list[ScoredChunk]:
    return [
        ScoredChunk(id=f"c{i}", score=0.5, text=t, payload={"file_name": "a.pdf", "page": i})
        for i, t in enumerate(texts, start=1)
    ]


@pytest.mark.unit
def test_cohere_rerank_orders_by_relevance_and_replaces_scores(stub, monkeypatch):
    monkeypatch.setenv("COHERE_API_KEY", "co-test")
    given = chunks(
        "bananas are yellow", "the eiffel tower is tall", "the tower in paris is tall and old"
    )
    reranker = CohereReranker("rerank-v3.5", base_url=stub.url, timeout=2)
    ranked = reranker.rerank("how tall is the paris tower", given, top_k=2)
    assert [c.id for c in ranked] == ["c3", "c2"]
    assert ranked[0].score > ranked[1].score and all(c.score != 0.5 for c in ranked)
    assert ranked[0].payload == given[2].payload and given[2].score == 0.5  # inputs untouched
    body = stub.bodies("rerank")[0]
    assert (
        body["model"] == "rerank-v3.5"
        and body["top_n"] == 2
        and body["documents"] == [c.text for c in given]
    )
    assert reranker.name == "cohere:rerank-v3.5"


@pytest.mark.unit
def test_cohere_rerank_errors_are_clear(stub, monkeypatch):
    with pytest.raises(ProviderAuthError, match="set COHERE_API_KEY"):
        CohereReranker(base_url=stub.url)
    reranker = CohereReranker(api_key="k", base_url=stub.url, timeout=2)
    stub.queue("rerank", status(503))
    with pytest.raises(ProviderUnavailableError):
        reranker.rerank("q", chunks("a"), top_k=1)
    with pytest.raises(ValueError):
        reranker.rerank("q", chunks("a"), top_k=0)
    assert reranker.rerank("q", [], top_k=3) == []


@pytest.mark.unit
@pytest.mark.parametrize(
    ("model", "price"),
    [
        ("gpt-4", (0.03, 0.06)),
        ("gpt-4-0613", (0.03, 0.06)),
        ("gpt-3.5-turbo-0125", (0.0005, 0.0015)),
        ("claude-3-opus-20240229", (0.015, 0.075)),
        ("claude-3-haiku-20240307", (0.00025, 0.00125)),
    ],
)
def test_price_table_holds_the_listed_prices(model, price):
    assert PriceTable().price(model) == price


@pytest.mark.unit
def test_longest_prefix_wins_and_overrides_apply():
    table = PriceTable()
    assert table.price("gpt-4o-mini-2024-07-18") != table.price("gpt-4o") != table.price("gpt-4")
    assert table.price("command-r-plus-08-2024") != table.price("command-r-08-2024")
    for model in (
        "gpt-4o",
        "gpt-4o-mini",
        "claude-3-5-sonnet-latest",
        "claude-3-5-haiku",
        "command-r",
        "command-r-plus",
    ):
        assert table.price(model) is not None
    assert table.price("llama3:8b") is None and table.cost("llama3:8b", Usage(1000, 1000)) == 0.0
    custom = PriceTable({"gpt-4": (1.0, 2.0)})
    assert custom.cost("gpt-4-0613", Usage(500, 250)) == pytest.approx(0.5 * 1.0 + 0.25 * 2.0)


@pytest.mark.unit
def test_cost_arithmetic():
    usage = Usage(input_tokens=2345, output_tokens=678)
    assert PriceTable().cost("claude-3-opus", usage) == pytest.approx(2.345 * 0.015 + 0.678 * 0.075)
    assert PriceTable().cost("gpt-3.5-turbo", usage) == pytest.approx(
        2.345 * 0.0005 + 0.678 * 0.0015
    )


@pytest.mark.unit
def test_context_windows():
    assert context_window("gpt-4-0613") == 8192
    assert context_window("gpt-4o-mini") > context_window("gpt-4")
    assert context_window("claude-3-haiku-20240307") > 8192
    assert context_window("some-local-model") == DEFAULT_CONTEXT_WINDOW
