"""Per-call choices over the settings: the one place where an unset choice becomes the setting's value."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any, Self

# Choice -> the Settings field that supplies it when the call leaves it unset.
SETTING_OF = {
    "chunker": "chunker",
    "chunk_size": "chunk_size",
    "chunk_overlap": "chunk_overlap",
    "retrieval": "retrieval_mode",
    "fusion": "fusion",
    "weights": "fusion_weights",
    "rrf_k": "rrf_k",
    "candidates": "candidates",
    "sparse_gain": "sparse_gain",
    "name_boost": "name_boost",
    "recency_boost": "recency_boost",
    "reranker": "reranker",
    "answerer": "answerer",
    "top_k": "top_k",
    "abstain_threshold": "abstain_threshold",
}
# Where 0 is a real choice; elsewhere 0 or "" (an empty form field) also means "the setting".
ZERO_IS_A_CHOICE = frozenset({"chunk_overlap", "sparse_gain", "name_boost", "recency_boost", "abstain_threshold"})


@dataclass(frozen=True)
class PipelineOptions:
    """Chunking, search and answer choices for one call; None means: the settings' value."""

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
    abstain_threshold: float | None = None  # the extractive answerer's

    def resolved(self, settings: Any) -> Self:
        """A copy (of the same class) with every unset choice replaced by the settings' value."""
        chosen: dict[str, Any] = {}
        for f in fields(PipelineOptions):
            value = getattr(self, f.name)
            unset = value is None if f.name in ZERO_IS_A_CHOICE else not value
            chosen[f.name] = getattr(settings, SETTING_OF[f.name]) if unset else value
        chosen["weights"] = tuple(chosen["weights"])
        return replace(self, **chosen)
