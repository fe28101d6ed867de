"""`rag ask --json` as a person runs it."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from rag.cli import app
from tests.conftest import SAMPLES

pytestmark = pytest.mark.integration


def test_ask_json_shape_and_content():
    runner = CliRunner()
    ingest = runner.invoke(app, ["ingest", str(SAMPLES / "documents"), "--collection", "s", "--json"])
    assert ingest.exit_code == 0, ingest.stdout
    result = runner.invoke(app, ["ask", "What is the rated heating capacity of the AHP-9 at A7/W35?",
                                 "--collection", "s", "--top-k", "3", "--json"])
    assert result.exit_code == 0, result.stdout
    data = json.loads(result.stdout.strip().splitlines()[-1])
    assert set(data) >= {"answer", "abstained", "grounded", "citations", "timings_ms", "usage", "cost_usd",
                         "provider", "reranker", "cache_hit"}
    assert "9.2 kW" in data["answer"] and not data["abstained"]
    assert set(data["timings_ms"]) == {"embed", "retrieve", "rerank", "generate", "total"}
    assert set(data["usage"]) == {"input_tokens", "output_tokens"}
    assert {(c["document"], c["page"]) for c in data["citations"]} >= {("aurora-ahp9-manual.pdf", 2)}
    assert all(set(c) >= {"n", "document", "page", "text", "score"} for c in data["citations"])
    assert data["provider"] == "extractive" and data["reranker"] == "sentence" and data["cache_hit"] is False

    missing = runner.invoke(app, ["ask", "anything", "--collection", "nope", "--json"])
    assert missing.exit_code == 2 and "No collection" in json.loads(missing.stdout)["error"]
    unavailable = runner.invoke(app, ["ask", "What is the rated heating capacity?", "--collection", "s",
                                      "--reranker", "cross-encoder:/no/such/model", "--json"])
    data = json.loads(unavailable.stdout.strip().splitlines()[-1])
    assert data["reranker"] == "none" and data["warnings"]
