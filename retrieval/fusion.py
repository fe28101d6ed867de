"""Fusing the dense and sparse result lists by weighted RRF with a per-question sparse weight.

Measured on two real sets (evaluation/baselines/README.md): dense search wins on one (20 SEC
filings sharing their vocabulary), BM25 on the other (biomedical articles with rare terms), and a
fixed RRF weighting loses to the better single retriever on each. How much BM25's best hit stands
out from its 20th (`sparse_confidence`) tells them apart without labels: a peaked BM25 list means
rare query terms matched; a flat one means common words matched everywhere. The sparse list's RRF
weight grows with it (`adaptive_weights`).

The document boosts that run after fusion (names, codes in file names, recency) are plug-ins in
retrieval/boosts.py.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from core.types import ScoredChunk


def weighted_rrf(lists: Sequence[Sequence[ScoredChunk]], weights: Sequence[float], k: float) -> list[ScoredChunk]:
    """Reciprocal rank fusion: each chunk scores sum(weight / (k + rank)), ranks from 1."""
    if len(lists) != len(weights):
        raise ValueError(f"{len(lists)} result lists but {len(weights)} weights")
    scores: dict[str, float] = defaultdict(float)
    chunks: dict[str, ScoredChunk] = {}
    for hits, weight in zip(lists, weights, strict=True):
        for rank, hit in enumerate(hits, start=1):
            scores[hit.id] += weight / (k + rank)
            chunks.setdefault(hit.id, hit)
    ordered = sorted(scores, key=lambda cid: -scores[cid])
    return [_rescored(chunks[cid], scores[cid]) for cid in ordered]


def sparse_confidence(sparse_hits: Sequence[ScoredChunk], n: int = 20) -> float:
    """BM25's best score over its `n`-th best (or its last, when fewer): 1.0 means flat."""
    if len(sparse_hits) < 2:
        return 1.0
    last = float(sparse_hits[min(n, len(sparse_hits)) - 1].score)
    first = float(sparse_hits[0].score)
    return first / last if last > 0 else 1.0


def adaptive_weights(
    sparse_hits: Sequence[ScoredChunk],
    base: tuple[float, float],
    gain: float,
    pivot: float,
    ceiling: float,
    n: int = 20,
) -> tuple[float, float]:
    """(dense, sparse) weights: the sparse weight is `base[1] * gain * (confidence - pivot)`,
    clipped to [0, ceiling]. gain 0 keeps `base` as it is."""
    if gain <= 0:
        return base
    confidence = sparse_confidence(sparse_hits, n)
    sparse = min(ceiling, max(0.0, base[1] * gain * (confidence - pivot)))
    return base[0], sparse


def _rescored(chunk: ScoredChunk, score: float) -> ScoredChunk:
    return ScoredChunk(id=chunk.id, score=score, text=chunk.text, payload=chunk.payload)
