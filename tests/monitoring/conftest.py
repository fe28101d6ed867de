"""Requests as the answer pipeline logs them, built without a pipeline."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest

from core.trace import Trace
from core.types import Answer, Citation, Usage
from monitoring.request_log import RequestLog


def make_trace(
    question: str = "how long is the warranty",
    *,
    collection: str = "c",
    total_ms: float = 100.0,
    retrieval_ms: float = 10.0,
    dense: Sequence[float] | None = (0.6, 0.55, 0.5, 0.45, 0.4),
    sparse: Sequence[float] | None = (7.0, 5.0, 3.0),
    vector: Sequence[float] | None = None,
    source: str = "web",
    variant: str = "",
    top_score: float | None = 0.5,
) -> Trace:
    """A trace as the pipeline leaves it: stage times, raw search scores, the query vector."""
    trace = Trace(question=question, collection=collection, source=source, variant=variant)
    for stage, ms in {"embed": retrieval_ms / 2, "retrieve": retrieval_ms / 2, "rerank": 0.0,
                      "generate": max(total_ms - retrieval_ms, 0.0), "total": total_ms}.items():
        trace.add_time(stage, ms)
    if dense is not None:
        trace.search_scores["dense"] = list(dense)
    if sparse is not None:
        trace.search_scores["sparse"] = list(sparse)
    if vector is not None:
        trace.query_vector = list(vector)
    if top_score is not None:
        trace.scores["context"] = [("chunk", top_score)]
    return trace


def make_answer(abstained: bool = False, *, words: int = 12, citations: int = 1, provider: str = "extractive",
                confidence: float | None = 0.7) -> Answer:
    """An answer with `citations` sources and a text of `words` words."""
    return Answer(
        text="Not found in your documents." if abstained else " ".join(["word"] * words) + " [1]",
        citations=[] if abstained else [
            Citation(n=i + 1, chunk_id=f"c{i}", document="d.pdf", page=2, text="t", score=0.5)
            for i in range(citations)],
        abstained=abstained, usage=Usage(input_tokens=100, output_tokens=20), cost_usd=0.001,
        provider=provider, confidence=confidence,
    )


def spiked_vectors(rng: np.random.Generator, n: int, shift: float = 0.0) -> np.ndarray:
    """n 384-d vectors around a common direction, with most of their spread along a few axes."""
    base = np.zeros(384)
    base[0] = 3.0
    spread = np.zeros(384)
    spread[1:4] = [1.0, 0.7, 0.5]
    vectors = base + rng.normal(size=(n, 384)) * 0.05 + rng.normal(size=(n, 384)) * spread
    vectors[:, 5] += shift
    return vectors


def log_requests(log: RequestLog, n: int, *, question: str = "how long is the warranty", score: float = 0.6,
                 spread: float = 0.05, vector_shift: float = 0.0, abstain_every: int = 0, seed: int = 0,
                 collection: str = "c", source: str = "web") -> None:
    """n requests with query vectors around one direction (moved by `vector_shift`) and top scores around `score`."""
    rng = np.random.default_rng(seed)
    vectors = spiked_vectors(rng, n, shift=vector_shift)
    for i in range(n):
        top = float(rng.normal(score, spread))
        log.record(make_trace(f"{question} {i % 7}", collection=collection, source=source, vector=vectors[i],
                              dense=[top, top - 0.05, top - 0.1, top - 0.15, top - 0.2]),
                   make_answer(abstained=bool(abstain_every) and i % abstain_every == 0))


@pytest.fixture
def log(tmp_path) -> RequestLog:
    request_log = RequestLog(tmp_path / "requests.sqlite")
    yield request_log
    request_log.close()
