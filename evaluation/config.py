"""What one evaluation measures: the pipeline's settings, resolved against the app's settings.

Kept apart from the runner so that the runner, the starter pipeline and the calibration can all
import it without importing each other.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from ingest.pipeline import ChunkingOptions

STARTER_LABEL = "llamaindex-starter"


@dataclass(frozen=True)
class EvalConfig:
    """One pipeline to evaluate. None means: the value from the settings."""

    chunker: str | None = None
    chunk_size: int | None = None
    chunk_overlap: int | None = None
    retrieval: str | None = None  # hybrid | dense | sparse
    fusion: str | None = None  # rrf | dbsf
    weights: tuple[float, float] | None = None
    rrf_k: int | None = None
    candidates: int | None = None
    sparse_gain: float | None = None
    name_boost: float | None = None
    recency_boost: float | None = None
    reranker: str | None = None
    answerer: str | None = None
    top_k: int | None = None
    abstain_threshold: float | None = None  # the extractive answerer's; recorded with each run
    depth: int = 30  # chunks retrieved for the ranking metrics (documents to rank @10 need more)
    answers: bool = True  # False: retrieval only, for speed
    judge: str | None = None  # an LLM provider spec: adds RAGAS faithfulness and answer relevancy
    starter: bool = False  # True: LlamaIndex's starter pipeline (evaluation/starter.py) instead of ours
    label: str = "ours"

    def resolved(self, settings: Any) -> EvalConfig:
        """Every None replaced by the settings' value."""
        return replace(
            self,
            chunker=self.chunker or settings.chunker,
            chunk_size=self.chunk_size or settings.chunk_size,
            chunk_overlap=self.chunk_overlap if self.chunk_overlap is not None else settings.chunk_overlap,
            retrieval=self.retrieval or settings.retrieval_mode,
            fusion=self.fusion or getattr(settings, "fusion", "rrf"),
            weights=tuple(self.weights or settings.fusion_weights),
            rrf_k=self.rrf_k or settings.rrf_k,
            candidates=self.candidates or settings.candidates,
            sparse_gain=settings.sparse_gain if self.sparse_gain is None else self.sparse_gain,
            name_boost=settings.name_boost if self.name_boost is None else self.name_boost,
            recency_boost=settings.recency_boost if self.recency_boost is None else self.recency_boost,
            reranker=self.reranker or settings.reranker,
            answerer=self.answerer or settings.answerer,
            top_k=self.top_k or settings.top_k,
            abstain_threshold=(settings.abstain_threshold if self.abstain_threshold is None
                               else self.abstain_threshold),
        )

    def chunking(self, settings: Any) -> ChunkingOptions:
        """The chunking options for ingestion (needs a resolved config)."""
        return ChunkingOptions(
            chunker=str(self.chunker),
            chunk_size=int(self.chunk_size or 0),
            chunk_overlap=int(self.chunk_overlap or 0),
            parent_chunk_size=settings.parent_chunk_size,
        )


def alone(config: EvalConfig, mode: str) -> EvalConfig:
    """One retriever alone, as the grid and the gate compare our fusion with it: a single search
    mode, no name or recency boost, no reranker, retrieval only."""
    return replace(config, retrieval=mode, name_boost=0.0, recency_boost=0.0, reranker="none", answers=False,
                   label=f"{mode} alone")
