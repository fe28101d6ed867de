"""Hybrid retrieval: the query embedded once, dense + sparse prefetch fused inside Qdrant, parents merged."""

from __future__ import annotations

import time
from typing import Any

from rag.schema import ScoredChunk
from retrieval.store import Filters, QuerySpec, SearchMode, VectorStore


class HybridRetriever:
    """`retrieve(collection, query, top_k, filters)` -> best chunks, with per-stage timings."""

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
        self.last_timings: dict[str, float] = {}

    def retrieve(
        self,
        collection: str,
        query: str,
        top_k: int = 5,
        filters: Filters | None = None,
        *,
        mode: SearchMode | None = None,
        weights: tuple[float, float] | None = None,
    ) -> list[ScoredChunk]:
        """Best `top_k` chunks for `query`; children of recursive chunking come back as their parents."""
        if top_k <= 0:
            raise ValueError(f"top_k must be > 0 (got {top_k})")
        mode = mode or self.mode
        t0 = time.perf_counter()
        dense = self.embedder.embed_query(query).tolist() if mode in ("hybrid", "dense") else None
        sparse = self.sparse.encode_query(query) if mode in ("hybrid", "sparse") else None
        t1 = time.perf_counter()
        spec = QuerySpec(
            dense=dense,
            sparse=sparse,
            mode=mode,
            top_k=max(top_k, 1) * 3,  # room for children that merge into one parent
            candidates=max(self.candidates, top_k),
            filters=dict(filters or {}),
            fusion=self.fusion,  # type: ignore[arg-type]
            rrf_k=self.rrf_k,
            weights=weights or self.weights,
        )
        hits = self.store.query(collection, spec)
        merged = self._merge_parents(collection, hits)[:top_k]
        t2 = time.perf_counter()
        self.last_timings = {"embed": (t1 - t0) * 1000, "retrieve": (t2 - t1) * 1000}
        return merged

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
