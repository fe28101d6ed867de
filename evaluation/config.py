"""What one evaluation measures: the pipeline's settings, resolved against the app's settings.

Kept apart from the runner so that the runner, the starter pipeline and the calibration can all
import it without importing each other.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from core.options import PipelineOptions
from ingest.pipeline import ChunkingOptions

STARTER_LABEL = "llamaindex-starter"


@dataclass(frozen=True)
class EvalConfig(PipelineOptions):
    """One pipeline to evaluate: the pipeline's choices (None means: the value from the settings;
    `resolved(settings)` fills them in) and what the evaluation measures."""

    # Chunks retrieved for the ranking metrics (documents to rank @10 need more than top_k). 20:
    # the retriever searches max(3 x depth, candidates) = 60 chunks, as many as for an answer's
    # top 5, so the answer's sources are exactly the first of these (with 30 it would search 90,
    # and the fusion and boosts over a longer list could hand the answer other chunks).
    depth: int = 20
    answers: bool = True  # False: retrieval only, for speed
    judge: str | None = None  # an LLM provider spec: adds RAGAS faithfulness and answer relevancy
    starter: bool = False  # True: LlamaIndex's starter pipeline (evaluation/starter.py) instead of ours
    label: str = "ours"

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
