"""The trace of one request: what each stage took, the fusion weights it used and the scores it saw.

A Trace is created once per request (by the answer pipeline, or by whoever drives the stages:
the evaluation runner, a benchmark) and handed down to every stage, which records on it. The
request log, the evaluation runner, the benchmarks and the pages read it afterwards. Nothing
per-request is kept on shared objects, so concurrent requests never see each other's figures.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from core.types import ScoredChunk

# The timed stages, in request order ("total" spans the whole request).
STAGES = ("embed", "retrieve", "rerank", "generate", "total")


@dataclass
class Trace:
    """Timings (ms), fusion weights and per-stage chunk scores of one request; owned by that request."""

    question: str = ""
    collection: str = ""
    # The question search and the answerer got: a follow-up completed from the earlier questions
    # of its conversation (answer/condense.py), else the question as asked; "" before search.
    standalone_question: str = ""
    # What search and the extractive answerer read: the standalone question without its instructions to
    # the answerer ("Round your answer to two decimal places."; core/language.py `asked`).
    searched: str = ""
    request_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    timings_ms: dict[str, float] = field(default_factory=dict)
    # The (dense, sparse) weights hybrid search fused with; None when no weighted fusion ran.
    weights: tuple[float, float] | None = None
    # stage -> [(chunk id, score)] in rank order, as that stage handed the chunks on.
    scores: dict[str, list[tuple[str, float]]] = field(default_factory=dict)
    # For drift monitoring: the query's dense embedding (None when no dense search ran) and the
    # best raw scores of each search list before fusion ("dense": cosine, "sparse": BM25), best first.
    query_vector: list[float] | None = None
    search_scores: dict[str, list[float]] = field(default_factory=dict)
    # Who asked (web, cli, api, eval; "" unknown) and the A/B variant that answered ("" none).
    source: str = ""
    variant: str = ""

    def add_time(self, stage: str, ms: float) -> None:
        """Add `ms` to a stage's time (a stage run twice in one request counts both runs)."""
        self.timings_ms[stage] = self.timings_ms.get(stage, 0.0) + ms

    @contextmanager
    def timed(self, stage: str) -> Iterator[None]:
        """Time the block as `stage`, also when it raises."""
        started = time.perf_counter()
        try:
            yield
        finally:
            self.add_time(stage, (time.perf_counter() - started) * 1000)

    def record_scores(self, stage: str, chunks: Iterable[ScoredChunk]) -> None:
        """The chunks a stage handed on, as (id, score) in rank order."""
        self.scores[stage] = [(c.id, float(c.score)) for c in chunks]

    @property
    def top_score(self) -> float | None:
        """The score of the best source the answerer was given, None when it was given none."""
        context = self.scores.get("context") or []
        return context[0][1] if context else None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready copy."""
        return {
            "request_id": self.request_id,
            "question": self.question,
            "standalone_question": self.standalone_question,
            "searched": self.searched,
            "collection": self.collection,
            "timings_ms": dict(self.timings_ms),
            "weights": list(self.weights) if self.weights is not None else None,
            "scores": {stage: [list(pair) for pair in pairs] for stage, pairs in self.scores.items()},
            "search_scores": {name: list(values) for name, values in self.search_scores.items()},
            "source": self.source,
            "variant": self.variant,
        }
