"""Hybrid retrieval: the query embedded once, dense + sparse prefetch fused inside Qdrant, parents merged."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from core.options import PipelineOptions
from core.trace import Trace
from core.types import ScoredChunk
from retrieval.boosts import DocumentBoost, apply_boosts, build_boosts
from retrieval.fusion import adaptive_weights, weighted_rrf
from store.base import Filters, QuerySpec, SearchMode, VectorStore


class HybridRetriever:
    """`retrieve(collection, query, top_k, filters)` -> best chunks; timings and fusion weights go
    on the trace the caller passes (the retriever is shared by concurrent requests: it keeps none)."""

    def __init__(
        self,
        store: VectorStore,
        embedder: Any,
        sparse: Any,
        *,
        mode: SearchMode = "hybrid",
        candidates: int = 40,
        weights: tuple[float, float] = (1.0, 1.0),
        rrf_k: int = 60,
        fusion: str = "rrf",
        sparse_gain: float = 0.0,
        sparse_pivot: float = 1.0,
        sparse_ceiling: float = 3.0,
        boosts: Sequence[DocumentBoost] = (),
    ) -> None:
        if candidates <= 0:
            raise ValueError(f"candidates must be > 0 (got {candidates})")
        self.store = store
        self.embedder = embedder
        self.sparse = sparse
        self.mode = mode
        self.candidates = candidates
        self.weights = weights
        self.rrf_k = rrf_k
        self.fusion = fusion
        self.sparse_gain = sparse_gain
        self.sparse_pivot = sparse_pivot
        self.sparse_ceiling = sparse_ceiling
        self.boosts = tuple(boosts)  # after fusion, in order (retrieval/boosts.py)

    @classmethod
    def from_settings(cls, store: VectorStore, embedder: Any, sparse: Any, settings: Any,
                      options: PipelineOptions | None = None) -> HybridRetriever:
        """A retriever with the search and fusion choices of `options` (unset ones: the settings')."""
        chosen = (options or PipelineOptions()).resolved(settings)
        return cls(
            store, embedder, sparse,
            mode=chosen.retrieval, candidates=chosen.candidates, weights=chosen.weights, rrf_k=chosen.rrf_k,
            fusion=chosen.fusion, sparse_gain=chosen.sparse_gain, sparse_pivot=settings.sparse_pivot,
            sparse_ceiling=settings.sparse_ceiling,
            boosts=build_boosts(settings.retrieval_boosts, name_boost=chosen.name_boost, recency_boost=chosen.recency_boost,
                                code_weight=settings.code_weight, language=settings.language),
        )

    def retrieve(
        self,
        collection: str,
        query: str,
        top_k: int = 5,
        filters: Filters | None = None,
        *,
        mode: SearchMode | None = None,
        weights: tuple[float, float] | None = None,
        trace: Trace | None = None,
    ) -> list[ScoredChunk]:
        """Best `top_k` chunks for `query`; children of recursive chunking come back as their parents.

        With a `trace`, the embed and search times ("embed", "retrieve") and the fusion weights go on it.
        """
        if top_k <= 0:
            raise ValueError(f"top_k must be > 0 (got {top_k})")
        mode = mode or self.mode
        t0 = time.perf_counter()
        dense = self.embedder_for(collection).embed_query(query).tolist() if mode in ("hybrid", "dense") else None
        sparse = self.sparse.encode_query(query) if mode in ("hybrid", "sparse") else None
        t1 = time.perf_counter()
        limit = max(top_k, 1) * 3  # room for children that merge into one parent
        hits, fused_weights = self._search(
            collection, dense, sparse, mode, max(limit, self.candidates), filters, weights, trace)
        hits = apply_boosts(query, hits, self.boosts, self.rrf_k)[:limit]
        merged = self._merge_parents(collection, hits)[:top_k]
        t2 = time.perf_counter()
        if trace is not None:
            trace.add_time("embed", (t1 - t0) * 1000)
            trace.add_time("retrieve", (t2 - t1) * 1000)
            trace.weights = fused_weights
            trace.query_vector = dense
        return merged

    def embedder_for(self, collection: str) -> Any:
        """The embedder of the collection's questions: `embedder` may hold one per collection
        (CollectionEmbedders)."""
        pick = getattr(self.embedder, "for_questions", None)
        return pick(collection) if pick is not None else self.embedder

    def _search(
        self,
        collection: str,
        dense: list[float] | None,
        sparse: Any,
        mode: SearchMode,
        limit: int,
        filters: Filters | None,
        weights: tuple[float, float] | None,
        trace: Trace | None = None,
    ) -> tuple[list[ScoredChunk], tuple[float, float] | None]:
        """One store query for a single mode or DBSF; two queries fused here by weighted RRF otherwise.

        Returns the hits and the weights fused here (None when the store fused, or nothing was fused).
        The trace gets each list's best raw scores (monitoring watches them drift).
        """
        candidates = max(self.candidates, limit)
        base: dict[str, Any] = {"filters": dict(filters or {}), "rrf_k": self.rrf_k}
        if mode != "hybrid" or self.fusion == "dbsf":
            spec = QuerySpec(dense=dense, sparse=sparse, mode=mode, top_k=limit, candidates=candidates,
                             fusion=self.fusion, weights=weights or self.weights, **base)  # type: ignore[arg-type]
            hits = self.store.query(collection, spec)
            if trace is not None and mode != "hybrid":
                trace.search_scores[mode] = [float(h.score) for h in hits[:5]]
            return hits, None
        dense_hits, sparse_hits = self.store.query_many(collection, [  # one store call, one engine batch
            QuerySpec(dense=dense, mode="dense", top_k=candidates, **base),
            QuerySpec(sparse=sparse, mode="sparse", top_k=candidates, **base)])
        if trace is not None:
            trace.search_scores["dense"] = [float(h.score) for h in dense_hits[:5]]
            trace.search_scores["sparse"] = [float(h.score) for h in sparse_hits[:5]]
        fused_weights = adaptive_weights(
            sparse_hits, weights or self.weights, self.sparse_gain, self.sparse_pivot, self.sparse_ceiling)
        return weighted_rrf([dense_hits, sparse_hits], fused_weights, self.rrf_k)[:limit], fused_weights

    def _merge_parents(self, collection: str, hits: list[ScoredChunk]) -> list[ScoredChunk]:
        """Replace child hits by their parent chunk (best child's score), keeping rank order."""
        parent_ids = [h.payload.get("parent_id") for h in hits if h.payload.get("parent_id")]
        if not parent_ids:
            return hits
        parents = {p.id: p for p in self.store.retrieve(collection, list(dict.fromkeys(parent_ids)))}
        merged: list[ScoredChunk] = []
        seen: dict[str, ScoredChunk] = {}
        for hit in hits:
            parent = parents.get(hit.payload.get("parent_id") or "")
            if parent is None:
                merged.append(hit)
                continue
            if parent.id in seen:
                seen[parent.id].payload["matched_children"].append(hit.id)
                continue
            payload = dict(parent.payload)
            payload["matched_children"] = [hit.id]
            payload["matched_text"] = hit.text
            chunk = ScoredChunk(id=parent.id, score=hit.score, text=parent.text, payload=payload)
            seen[parent.id] = chunk
            merged.append(chunk)
        return merged
