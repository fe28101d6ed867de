"""Rerankers: reorder retrieved chunks by a model's relevance score, or keep the fused order.

`make_reranker` turns a setting ("none", "sentence", "cross-encoder:<path or name>",
"cohere[:model]") into a reranker, or into (None, reason) when it cannot run here; `safe_rerank` never lets a failing
reranker fail an answer: the fused order is kept and a warning says why.
"""

from __future__ import annotations

import logging
import os
from dataclasses import replace
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from core.errors import ConfigError
from core.settings import Settings
from core.types import ScoredChunk
from retrieval.boosts import name_words
from retrieval.lazy_model import LazyModel

NO_RERANKER = "none"
SENTENCE_RERANKER = "sentence"
CROSS_ENCODER_PREFIX = "cross-encoder:"
COHERE_PREFIX = "cohere"

log = logging.getLogger(__name__)


@runtime_checkable
class Reranker(Protocol):
    """Reorders chunks for a query: best first, scores replaced by the reranker's own."""

    @property
    def name(self) -> str: ...

    def rerank(self, query: str, chunks: list[ScoredChunk], top_k: int | None = None) -> list[ScoredChunk]: ...


def _check_top_k(top_k: int | None) -> None:
    if top_k is not None and top_k <= 0:
        raise ValueError(f"top_k must be > 0 (got {top_k})")


class CrossEncoderReranker(LazyModel):
    """A sentence-transformers CrossEncoder from a local folder or a hub name.

    The model loads on first use, once, even when several threads ask at the same time;
    query-chunk pairs are scored in batches of `batch_size`.
    """

    def __init__(self, model: str, batch_size: int = 16, max_length: int | None = None, *,
                 backend: str = "torch", cache_dir: Path | str | None = None) -> None:
        from retrieval.embedder import resolve_backend

        if not model:
            raise ValueError("model is empty: give a local cross-encoder folder or a model name")
        if batch_size <= 0:
            raise ValueError(f"batch_size must be > 0 (got {batch_size})")
        super().__init__()
        self.model = model
        self.batch_size = batch_size
        self.max_length = max_length
        # The embedder's backends (retrieval/embedder.py): the ONNX ones export once into cache_dir.
        self.requested_backend = backend.strip().lower()
        self.backend = resolve_backend(backend)
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None

    @property
    def name(self) -> str:
        return f"{CROSS_ENCODER_PREFIX}{self.model}"

    def warm_up(self) -> None:
        """Load the model now instead of on the first query."""
        self._load()

    def _build(self) -> Any:
        from sentence_transformers import CrossEncoder

        looks_like_path = self.model.startswith((".", "/", "~"))
        if looks_like_path and not os.path.isdir(os.path.expanduser(self.model)):
            raise ConfigError(
                f"no cross-encoder folder at {self.model!r}: give the folder of a saved CrossEncoder"
            )
        if self.backend != "torch":
            from retrieval.onnx_export import UnsupportedExport

            try:
                return self._build_onnx()
            except UnsupportedExport as exc:
                if self.requested_backend != "auto":
                    raise
                log.warning("%s; the cross-encoder runs on torch instead.", exc)
                self.backend = "torch"
        try:
            return CrossEncoder(os.path.expanduser(self.model), device="cpu", max_length=self.max_length)
        except (OSError, ValueError) as exc:
            raise ConfigError(
                f"cannot load cross-encoder {self.model!r} ({exc}): give a local CrossEncoder folder, "
                "or a model name that is in the local model cache when offline"
            ) from exc

    def _build_onnx(self) -> OnnxCrossEncoder:
        from retrieval.embedder import local_model_folder
        from retrieval.onnx_export import OnnxModel, ensure_export

        if self.cache_dir is None:
            from core.settings import get_settings

            self.cache_dir = get_settings().onnx_dir
        folder = local_model_folder(os.path.expanduser(self.model))
        export = ensure_export(folder, "cross-encoder", self.cache_dir, name=folder.name)
        runner = OnnxModel(export, quantized=self.backend == "onnx-int8")
        if self.max_length is not None:
            runner.tokenizer.enable_truncation(min(self.max_length, runner.max_length))
        return OnnxCrossEncoder(runner)

    def scores(self, query: str, texts: list[str]) -> list[float]:
        """The model's relevance score of each text for the query, in the texts' order."""
        if not texts:
            return []
        model = self._load()
        if isinstance(model, OnnxCrossEncoder):
            return model.scores(query, texts, self.batch_size)
        predicted = model.predict(
            [(query, text) for text in texts],
            batch_size=self.batch_size,
            show_progress_bar=False,
            convert_to_numpy=True,
        )
        return [float(s) for s in predicted.reshape(len(texts), -1)[:, 0]]

    def rerank(self, query: str, chunks: list[ScoredChunk], top_k: int | None = None) -> list[ScoredChunk]:
        """The `top_k` best chunks by cross-encoder score (all when None), best first."""
        _check_top_k(top_k)
        scores = self.scores(query, [c.text for c in chunks])
        scored = [replace(c, score=s) for c, s in zip(chunks, scores, strict=True)]
        # sorted() is stable: equal scores keep the fused order.
        ranked = sorted(scored, key=lambda c: c.score, reverse=True)
        return ranked[:top_k] if top_k is not None else ranked


class OnnxCrossEncoder:
    """A CrossEncoder's ONNX export: logits from onnxruntime, then the activation its `predict` applies."""

    def __init__(self, runner: Any) -> None:
        self.runner = runner
        self.activation = str(runner.export.manifest.get("activation", "identity"))

    def scores(self, query: str, texts: list[str], batch_size: int) -> list[float]:
        import numpy as np

        out = np.empty(len(texts), dtype=np.float32)
        for positions, _, output in self.runner.outputs(self.runner.encode([(query, t) for t in texts]), batch_size):
            logits = output.reshape(len(positions), -1)[:, 0]
            out[positions] = 1 / (1 + np.exp(-logits)) if self.activation == "sigmoid" else logits
        return [float(s) for s in out]


class SentenceReranker:
    """Second-stage scoring of the candidates at sentence level: no model, no extra weights.

    Each of the first `depth` candidates scores `weight` x its best sentence's share of the
    question's content words (retrieval/sentences.py) + (1 - weight) x a prior from its fused rank
    r, (k + 1) / (k + r): a chunk with one sentence that holds the question's rare words rises
    above chunks that share only its topic, and the fused order (name and recency boosts
    included) still counts. A question word the chunk's document name, title or codes hold counts
    half (`document_context`), so a sentence of the filing the question names beats the same
    sentence of another company's. Candidates past `depth` follow in their fused order, below
    every rescored one.

    The default (weight 0.6) was chosen on the dev splits' stored candidate lists (the 30 the
    committed pipeline searched per question; evaluation/baselines/README.md): COVID-QA passage
    hit@1 0.498 -> 0.542, hit@5 0.729 -> 0.754, document MRR@10 0.802 -> 0.825; docugami
    document MRR@10 0.919 -> 0.917 (weight 0.7: 0.908; without the document's words: 0.888).
    """

    def __init__(self, weight: float = 0.6, rank_k: float = 2.0, depth: int = 30) -> None:
        if not 0.0 <= weight <= 1.0:
            raise ValueError(f"weight must be within [0, 1] (got {weight})")
        if rank_k <= 0:
            raise ValueError(f"rank_k must be > 0 (got {rank_k})")
        if depth <= 0:
            raise ValueError(f"depth must be > 0 (got {depth})")
        self.weight = weight
        self.rank_k = rank_k
        self.depth = depth

    @property
    def name(self) -> str:
        return SENTENCE_RERANKER

    def prior(self, rank: int) -> float:
        """The fused rank's part of the score: 1 at rank 1, then (k + 1) / (k + rank)."""
        return (self.rank_k + 1) / (self.rank_k + rank)

    def rerank(self, query: str, chunks: list[ScoredChunk], top_k: int | None = None) -> list[ScoredChunk]:
        """The chunks by mixed score, best first, scores replaced by it; cut to `top_k` when given."""
        from retrieval.sentences import best_sentence_scores

        _check_top_k(top_k)
        head = chunks[: self.depth]
        best = best_sentence_scores(query, [c.text for c in head], [document_context(c.payload) for c in head])
        scored = [
            (self.weight * sentence + (1 - self.weight) * self.prior(rank), rank, chunk)
            for rank, (chunk, sentence) in enumerate(zip(head, best, strict=True), start=1)
        ]
        scored += [
            ((1 - self.weight) * self.prior(rank), rank, chunk)
            for rank, chunk in enumerate(chunks[self.depth :], start=len(head) + 1)
        ]
        scored.sort(key=lambda item: (-item[0], item[1]))  # ties keep the fused order
        ranked = [replace(chunk, score=score) for score, _, chunk in scored]
        return ranked[:top_k] if top_k is not None else ranked


def document_context(payload: dict) -> str:
    """What a chunk has around every sentence: its document's name words, title and codes."""
    codes = payload.get("doc_codes") or []
    return " ".join([*sorted(name_words(payload)), str(payload.get("title") or ""), *map(str, codes)])


def make_reranker(spec: str, settings: Settings) -> tuple[Reranker | None, str | None]:
    """The reranker a setting names, or (None, reason) when it cannot run here.

    "none" gives (None, None); "sentence" needs no model. A cross-encoder is loaded now, so missing weights show up once
    at start instead of on every question; Cohere needs COHERE_API_KEY. An unknown kind is a
    ConfigError: that is a typo to fix, not a condition to run around.
    """
    spec = (spec or NO_RERANKER).strip()
    if spec.lower() == NO_RERANKER:
        return None, None
    if spec.lower() == SENTENCE_RERANKER:
        return SentenceReranker(), None
    if spec.startswith(CROSS_ENCODER_PREFIX):
        model = spec[len(CROSS_ENCODER_PREFIX):].strip()
        if not model:
            raise ConfigError(
                "RAG_RERANKER 'cross-encoder:' names no model: add a folder or a model name after the colon."
            )
        reranker = CrossEncoderReranker(model, backend=settings.embedding_backend, cache_dir=settings.onnx_dir)
        try:
            reranker.warm_up()
        except Exception as exc:  # noqa: BLE001 - any load failure means: run on the fused order
            return None, _not_loaded(spec, exc, "fix RAG_RERANKER or set it to 'none'")
        return reranker, None
    if spec == COHERE_PREFIX or spec.startswith(COHERE_PREFIX + ":"):
        from llm.cohere_rerank import CohereReranker

        model = spec.partition(":")[2].strip() or settings.cohere_rerank_model
        try:
            cohere = CohereReranker(
                model, base_url=settings.cohere_base_url, timeout=settings.llm_timeout_s
            )
        except Exception as exc:  # noqa: BLE001 - a missing key or package: run on the fused order
            return None, _not_loaded(spec, exc, "set COHERE_API_KEY, or set RAG_RERANKER to 'none'")
        return cohere, None
    raise ConfigError(
        f"Unknown reranker {spec!r}: use 'none', 'sentence', 'cross-encoder:<folder or model name>' or "
        "'cohere[:model]'."
    )


def _not_loaded(spec: str, exc: Exception, hint: str) -> str:
    return f"Reranker {spec!r} is not available ({exc}). Answers use the fused search order; {hint}."


def safe_rerank(
    reranker: Reranker | None, query: str, chunks: list[ScoredChunk], top_k: int | None = None
) -> tuple[list[ScoredChunk], str, str | None]:
    """(chunks, name of the reranker that ran, warning or None); never raises for the reranker.

    When the reranker fails (timeout, API error, any exception) the fused order is kept,
    cut to `top_k`, the name is "none" and the warning says what happened.
    """
    _check_top_k(top_k)
    fused = chunks[:top_k] if top_k is not None else list(chunks)
    if reranker is None or not chunks:
        return fused, NO_RERANKER if reranker is None else reranker.name, None
    try:
        ranked = reranker.rerank(query, chunks, top_k)
    except Exception as exc:  # noqa: BLE001 - a reranker must never fail an answer
        warning = (
            f"Reranker {reranker.name} failed ({type(exc).__name__}: {exc}); "
            "the answer uses the fused search order."
        )
        return fused, NO_RERANKER, warning
    return ranked, reranker.name, None
