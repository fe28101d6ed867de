"""The evaluation runner: ingest a data set (cached), ask every question, compute the metrics.

The same runner serves `rag eval`, the test suite and the Evaluation page. Each run also
measures the pipeline a user would build from LlamaIndex's starter docs (`evaluation.starter`)
on the same questions, so every report shows ours beside it.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from core.errors import RagError
from core.types import Answer, ScoredChunk
from evaluation.datasets import Dataset, Question
from evaluation.llm_judge import DEFINITIONS as JUDGE_DEFINITIONS
from evaluation.metrics import (
    METRIC_DEFINITIONS,
    abstention_accuracy,
    aggregate,
    citation_page_accuracy,
    citation_precision,
    exact_match,
    faithfulness,
    latency_summary,
    retrieval_metrics,
    semantic_similarity,
    token_f1,
)
from ingest.pipeline import ChunkingOptions
from retrieval.retriever import HybridRetriever

# Progress callback: (questions done, questions in all).
Progress = Callable[[int, int], None]
CACHE_FORMAT = 4  # 2: the document name in the sparse text too; 3: document dates in the payload;
# 4: each document's capitalised terms in the payload


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
        )

    def chunking(self, settings: Any) -> ChunkingOptions:
        """The chunking options for ingestion (needs a resolved config)."""
        return ChunkingOptions(
            chunker=str(self.chunker),
            chunk_size=int(self.chunk_size or 0),
            chunk_overlap=int(self.chunk_overlap or 0),
            parent_chunk_size=settings.parent_chunk_size,
        )


@dataclass
class IngestedCollection:
    """A data set's documents in a store collection, ready to query."""

    collection: str
    chunks: int
    files: int
    failed: list[str]
    seconds: float
    reused: bool


@dataclass
class PipelineResult:
    """The metrics and per-question rows of one pipeline over one data set."""

    label: str
    settings: dict[str, Any]
    metrics: dict[str, Any]
    rows: list[dict[str, Any]]
    ingestion: dict[str, Any]
    seconds: float
    notes: list[str] = field(default_factory=list)


@dataclass
class EvalRun:
    """One evaluation: our pipeline and the starter pipeline on the same questions."""

    dataset: str
    dataset_path: str
    questions: int
    ours: PipelineResult
    starter: PipelineResult | None
    seconds: float
    created_at: float = field(default_factory=time.time)

    @property
    def settings(self) -> dict[str, Any]:
        return self.ours.settings

    @property
    def metrics(self) -> dict[str, Any]:
        return self.ours.metrics

    def summary(self) -> dict[str, Any]:
        """The `rag eval --json` object."""
        metrics = dict(self.ours.metrics)
        if self.starter is not None:
            metrics["starter"] = self.starter.metrics
        return {
            "dataset": self.dataset,
            "questions": self.questions,
            "settings": self.ours.settings,
            "metrics": metrics,
            "seconds": round(self.seconds, 2),
        }

    def to_dict(self) -> dict[str, Any]:
        """Everything, as written to report.json."""
        return {
            **self.summary(),
            "dataset_path": self.dataset_path,
            "created_at": self.created_at,
            "definitions": metric_definitions(),
            "ingestion": self.ours.ingestion,
            "notes": self.ours.notes,
            "starter": None if self.starter is None else {
                "settings": self.starter.settings,
                "metrics": self.starter.metrics,
                "ingestion": self.starter.ingestion,
                "rows": self.starter.rows,
            },
            "rows": self.ours.rows,
        }


def metric_definitions() -> dict[str, str]:
    """The metric definitions written into every report, with the ones the runner adds."""
    return {
        **METRIC_DEFINITIONS,
        "document ranking": "documents ranked by their best chunk among the first "
        "`depth` retrieved chunks (first occurrence)",
        "faithfulness": METRIC_DEFINITIONS["faithfulness"] + " (a sentence is supported when the "
        "citation check scores it at or above its support threshold against the chunks it cites; "
        "a sentence without a citation is unsupported; abstentions are skipped)",
        "citation_precision": METRIC_DEFINITIONS["citation_precision"] + " (support at or above the "
        "citation check's threshold)",
        "answered_rate": "share of answerable questions answered without an abstention",
        "latency_ms": "p50 / p95 per stage over the questions, milliseconds",
        "cost_usd": "summed cost of the answers (0 for the extractive answerer)",
        **{k: v.format(judge="the --judge provider", n=3) for k, v in JUDGE_DEFINITIONS.items()},
        "judge_cost_usd": "summed cost of the judge's calls (with --judge)",
    }


STARTER_LABEL = "llamaindex-starter"


class CollectionCache:
    """Ingested data set collections, keyed by the documents (relative paths and hashes), the
    chunking and the embedder, so reruns, copies of a data set and grid cells with the same
    chunking reuse one ingestion."""

    def __init__(self, service: Any, root: Path | None = None) -> None:
        self.service = service
        self.root = root or service.settings.cache_dir / "eval"

    def key(self, dataset: Dataset, options: ChunkingOptions) -> str:
        """sha256 over everything that changes the stored chunks."""
        digest = hashlib.sha256()
        header = {
            "format": CACHE_FORMAT,
            "chunking": asdict(options),
            "embedder": self.service.settings.embedding_model,
        }
        digest.update(json.dumps(header, sort_keys=True).encode())
        for path in dataset.document_files():
            digest.update(dataset.relative_document(path).encode() + b"\0")
            digest.update(hashlib.sha256(path.read_bytes()).digest())
        return digest.hexdigest()

    def ingest(
        self, dataset: Dataset, options: ChunkingOptions, progress: Callable[[dict[str, Any]], None] | None = None
    ) -> IngestedCollection:
        """The collection holding `dataset`'s documents chunked with `options`; ingested once."""
        key = self.key(dataset, options)
        collection = f"eval-{key[:20]}"
        marker = self.root / f"{key}.json"
        store = self.service.store
        if marker.is_file() and store.collection_exists(collection):
            info = json.loads(marker.read_text(encoding="utf-8"))
            return IngestedCollection(collection, info["chunks"], info["files"], info["failed"], 0.0, True)
        if store.collection_exists(collection):
            # A partial ingestion (interrupted): start again from empty.
            store.delete_collection(collection)
        report = self.service.ingest([dataset.documents_dir], collection, options, progress=progress)
        failed = [f"{f.path}: {f.error}" for f in report.failed]
        info = {"dataset": str(dataset.root), "chunking": asdict(options), "chunks": report.chunks_added,
                "files": len(report.files), "failed": failed, "seconds": report.seconds}
        self.root.mkdir(parents=True, exist_ok=True)
        marker.write_text(json.dumps(info, indent=1), encoding="utf-8")
        return IngestedCollection(collection, report.chunks_added, len(report.files), failed, report.seconds, False)


def _source(chunk: ScoredChunk) -> str:
    """A chunk's document as gold labels name it: the path relative to documents/."""
    return str(chunk.payload.get("source") or chunk.payload.get("file_name") or "")


def ranked_keys(chunks: list[ScoredChunk]) -> tuple[list[str], list[tuple[str, int]]]:
    """Documents and (document, page) pairs in rank order of their first chunk."""
    docs = list(dict.fromkeys(_source(c) for c in chunks))
    pages = list(dict.fromkeys((_source(c), c.page) for c in chunks))
    return docs, pages


class EvaluationRunner:
    """Runs pipelines over a data set. Cheap to build; the service's models load on first use."""

    def __init__(self, service: Any, cache: CollectionCache | None = None) -> None:
        self.service = service
        self.cache = cache or CollectionCache(service)
        self._rerankers: dict[str, tuple[Any, str | None]] = {}

    def run(
        self,
        dataset: Dataset,
        config: EvalConfig | None = None,
        *,
        starter: bool = True,
        progress: Progress | None = None,
        ingest_progress: Callable[[dict[str, Any]], None] | None = None,
    ) -> EvalRun:
        """Our pipeline, and the starter pipeline beside it, over every question of `dataset`."""
        from evaluation.starter import starter_config

        started = time.perf_counter()
        config = (config or EvalConfig()).resolved(self.service.settings)
        total = len(dataset.questions) * (2 if starter else 1)
        done = [0]

        def step() -> None:
            done[0] += 1
            if progress:
                progress(done[0], total)

        ours = self.evaluate(dataset, config, on_question=step, ingest_progress=ingest_progress)
        base = None
        if starter:
            base_config = starter_config(config.depth).resolved(self.service.settings)
            base = self.evaluate(dataset, base_config, on_question=step, ingest_progress=ingest_progress)
        return EvalRun(
            dataset=dataset.name,
            dataset_path=str(dataset.root),
            questions=len(dataset.questions),
            ours=ours,
            starter=base,
            seconds=time.perf_counter() - started,
        )

    def retriever_for(self, config: EvalConfig) -> HybridRetriever:
        """A retriever with the config's fusion choices over the service's store and models."""
        service = self.service
        return HybridRetriever.from_settings(
            service.store, service.embedder, service.sparse, service.settings,
            mode=config.retrieval, candidates=config.candidates,
            weights=tuple(config.weights) if config.weights else None, rrf_k=config.rrf_k, fusion=config.fusion,
            sparse_gain=config.sparse_gain, name_boost=config.name_boost, recency_boost=config.recency_boost,
        )

    def evaluate(
        self,
        dataset: Dataset,
        config: EvalConfig,
        *,
        on_question: Callable[[], None] | None = None,
        ingest_progress: Callable[[dict[str, Any]], None] | None = None,
        collection: IngestedCollection | None = None,
    ) -> PipelineResult:
        """One pipeline (a resolved config) over the data set: per-question rows and metrics."""
        started = time.perf_counter()
        settings = self.service.settings
        retriever: Any
        if config.starter:
            from evaluation.starter import build_starter, starter_key

            retriever, ingested = build_starter(self.service, dataset, self.cache.root, starter_key(self.cache, dataset))
        else:
            ingested = collection or self.cache.ingest(dataset, config.chunking(settings), ingest_progress)
            retriever = self.retriever_for(config)
        notes: list[str] = []
        reranker, reason = self._reranker(config.reranker or "none")
        if reason:
            notes.append(reason)
        pipeline = None
        if config.answers:
            from answer.pipeline import AnswerPipeline

            # No request log: evaluation questions are not user traffic for monitoring.
            pipeline = AnswerPipeline(retriever, self.service.embedder, settings)
        judge = None
        if config.answers and config.judge:
            from evaluation.llm_judge import RagasJudge

            judge = RagasJudge.from_spec(config.judge, settings, self.service.embedder.embed)
            notes.extend(f"{k}: {v}" for k, v in judge.definitions().items())
        rows = []
        for question in dataset.questions:
            rows.append(self._question_row(question, ingested.collection, config, retriever, reranker, pipeline, judge))
            if on_question:
                on_question()
        metrics = self._metrics(rows, config.answers)
        reranker_name = getattr(reranker, "name", "none") if reranker is not None else "none"
        return PipelineResult(
            label=config.label,
            settings={**_settings_dict(config, settings), "reranker_used": reranker_name},
            metrics=metrics,
            rows=rows,
            ingestion=asdict(ingested),
            seconds=time.perf_counter() - started,
            notes=notes + [f"failed to ingest {f}" for f in ingested.failed],
        )

    def _reranker(self, spec: str) -> tuple[Any, str | None]:
        if spec not in self._rerankers:
            from retrieval.rerankers import make_reranker

            self._rerankers[spec] = make_reranker(spec, self.service.settings)
        return self._rerankers[spec]

    def _question_row(
        self, question: Question, collection: str, config: EvalConfig, retriever: HybridRetriever,
        reranker: Any, pipeline: Any, judge: Any = None,
    ) -> dict[str, Any]:
        t0 = time.perf_counter()
        hits = retriever.retrieve(collection, question.question, config.depth)
        timings = dict(retriever.last_timings)
        if reranker is not None:
            from retrieval.rerankers import safe_rerank

            t1 = time.perf_counter()
            hits, _, _ = safe_rerank(reranker, question.question, hits, config.depth)
            timings["rerank"] = (time.perf_counter() - t1) * 1000
        timings["total"] = (time.perf_counter() - t0) * 1000
        docs, pages = ranked_keys(hits)
        gold_pages = question.gold_pages or None
        row: dict[str, Any] = {
            "id": question.id,
            "question": question.question,
            "answerable": question.answerable,
            "gold_documents": sorted(question.gold_documents),
            "gold_pages": sorted([list(p) for p in question.gold_pages]),
            "retrieved": [
                {"document": _source(h), "page": h.page, "chunk_id": h.id, "score": round(float(h.score), 6)}
                for h in hits
            ],
            "metrics": retrieval_metrics(docs, question.gold_documents or None, pages, gold_pages),
            "answer": None,
            "citations": [],
            "abstained": None,
            "timings_ms": {k: round(v, 2) for k, v in timings.items()},
        }
        if pipeline is not None:
            stream = pipeline.ask_stream(question.question, collection, top_k=config.top_k,
                                         reranker=config.reranker, answerer=config.answerer)
            for _ in stream:
                pass
            answer = stream.answer
            assert answer is not None
            row.update(self._answer_fields(question, answer, collection))
            if judge is not None and not answer.abstained:
                row.update(_judged(judge, question.question, answer, stream.sources, row["answer_metrics"]))
        return row

    def _answer_fields(self, question: Question, answer: Answer, collection: str) -> dict[str, Any]:
        from answer.grounding import SUPPORT_THRESHOLD, answer_sentences, strip_markers

        sources = {c.id: _source(c) for c in self.service.store.retrieve(
            collection, list(dict.fromkeys(c.chunk_id for c in answer.citations)))} if answer.citations else {}
        citations = [
            {"n": c.n, "document": sources.get(c.chunk_id, c.document), "page": c.page, "chunk_id": c.chunk_id,
             "score": round(float(c.score), 6), "support": round(float(c.support), 4),
             "supporting_sentence": c.supporting_sentence}
            for c in answer.citations
        ]
        text = strip_markers(answer.text).strip()
        metrics: dict[str, Any] = {}
        if question.answer and question.answerable:
            metrics["exact_match"] = exact_match(text, question.answer) if not answer.abstained else 0.0
            metrics["token_f1"] = token_f1(text, question.answer) if not answer.abstained else 0.0
            metrics["semantic_similarity"] = (
                semantic_similarity(text, question.answer, self.service.embedder.embed)
                if not answer.abstained else 0.0
            )
        if not answer.abstained:
            unsupported = {s.strip() for s in answer.unsupported_sentences}
            flags = [bool(numbers) and strip_markers(s).strip() not in unsupported
                     for s, numbers in answer_sentences(answer.text) if strip_markers(s).strip()]
            metrics["faithfulness"] = faithfulness(flags)
            metrics["citation_precision"] = citation_precision(
                [float(c.support) >= SUPPORT_THRESHOLD for c in answer.citations])
            metrics["citation_page_accuracy"] = citation_page_accuracy(
                [(c["document"], c["page"]) for c in citations], question.gold_pages or None)
        if question.answerable:
            metrics["answered_rate"] = 0.0 if answer.abstained else 1.0
        return {
            "answer": answer.text,
            "citations": citations,
            "abstained": answer.abstained,
            "answer_metrics": metrics,
            "cost_usd": answer.cost_usd,
            "answer_timings_ms": {k: round(v, 2) for k, v in answer.timings_ms.items()},
        }

    @staticmethod
    def _metrics(rows: list[dict[str, Any]], answers: bool) -> dict[str, Any]:
        answerable = [r for r in rows if r["answerable"]]
        metrics: dict[str, Any] = {
            k: _round(v) for k, v in aggregate(r["metrics"] for r in answerable).items() if v is not None
        }
        metrics["questions_scored"] = sum(1 for r in answerable if r["gold_documents"])
        if answers:
            metrics.update({k: _round(v) for k, v in aggregate(r.get("answer_metrics", {}) for r in rows).items()})
            metrics["abstention_accuracy"] = _round(abstention_accuracy(
                [{"answerable": r["answerable"], "abstained": r["abstained"]} for r in rows]))
            metrics["unanswerable_questions"] = sum(1 for r in rows if not r["answerable"])
            metrics["cost_usd"] = round(sum(r.get("cost_usd") or 0.0 for r in rows), 6)
            if any("judge" in r or "judge_error" in r for r in rows):
                metrics["judge_cost_usd"] = round(sum(r.get("judge_cost_usd") or 0.0 for r in rows), 6)
                metrics["judge_errors"] = sum(1 for r in rows if "judge_error" in r)
            latency = latency_summary(r["answer_timings_ms"] for r in rows)
        else:
            latency = latency_summary(r["timings_ms"] for r in rows)
        metrics["latency_ms"] = {s: {k: round(v, 1) for k, v in d.items()} for s, d in latency.items()}
        return metrics


def _judged(judge: Any, question: str, answer: Answer, sources: list[ScoredChunk],
            metrics: dict[str, Any]) -> dict[str, Any]:
    """The judge's RAGAS scores added to `metrics`; a judge failure is recorded, not fatal."""
    from answer.grounding import strip_markers

    try:
        scores = judge.score(question, strip_markers(answer.text).strip(), [s.text for s in sources])
    except RagError as error:
        return {"judge_error": str(error)}
    for name in ("llm_faithfulness", "answer_relevancy"):
        value = getattr(scores, name)
        if value is not None:
            metrics[name] = value
    return {
        "judge": {"statements": scores.statements, "verdicts": scores.verdicts,
                  "generated_questions": scores.generated_questions,
                  "input_tokens": scores.usage.input_tokens, "output_tokens": scores.usage.output_tokens},
        "judge_cost_usd": scores.cost_usd,
    }


def _round(value: float | None) -> float | None:
    return None if value is None else round(float(value), 4)


def _settings_dict(config: EvalConfig, settings: Any) -> dict[str, Any]:
    data = asdict(config)
    data["weights"] = list(config.weights or ())
    data["embedding_model"] = settings.embedding_model
    return data


GRID_CHUNKERS = ("fixed", "sentence", "recursive")
GRID_MODES = ("hybrid", "dense", "sparse")


@dataclass
class GridCell:
    """One cell of a grid: its label, settings, retrieval metrics and note."""

    label: str
    settings: dict[str, Any]
    metrics: dict[str, Any]
    note: str = ""


def grid_reranker(settings: Any, requested: str | None) -> str:
    """The reranker the grid's "on" column uses: the one asked for, else the configured one."""
    return requested or settings.reranker


def alone(config: EvalConfig, mode: str) -> EvalConfig:
    """One retriever alone, as the grid and the gate compare our fusion with it: a single search
    mode, no name or recency boost, no reranker, retrieval only."""
    return replace(config, retrieval=mode, name_boost=0.0, recency_boost=0.0, reranker="none", answers=False,
                   label=f"{mode} alone")


def run_grid(
    runner: EvaluationRunner,
    dataset: Dataset,
    base: EvalConfig,
    *,
    chunkers: tuple[str, ...] = GRID_CHUNKERS,
    modes: tuple[str, ...] = GRID_MODES,
    reranker: str | None = None,
    progress: Progress | None = None,
    ingest_progress: Callable[[dict[str, Any]], None] | None = None,
) -> list[GridCell]:
    """Chunkers x retrieval modes x reranker off/on, retrieval only, plus the starter pipeline.

    Cells with the same chunking share one ingested collection. When the reranker cannot load
    (offline, no cross-encoder configured) the "on" cells are left out and a note says why.
    """
    from evaluation.starter import starter_config

    settings = runner.service.settings
    on_spec = grid_reranker(settings, reranker)
    loaded, reason = runner._reranker(on_spec)
    states: list[str] = ["none"] + ([on_spec] if loaded is not None else [])
    why_off = "" if loaded is not None else (
        reason or f"no reranker configured (RAG_RERANKER={on_spec!r}): reranker-on cells not run")
    total = (len(chunkers) * len(modes) * len(states) + 1) * len(dataset.questions)
    done = [0]

    def step() -> None:
        done[0] += 1
        if progress:
            progress(done[0], total)

    cells: list[GridCell] = []
    starter = starter_config(base.depth).resolved(settings)
    result = runner.evaluate(dataset, starter, on_question=step, ingest_progress=ingest_progress)
    cells.append(GridCell(STARTER_LABEL, result.settings, result.metrics))
    for chunker in chunkers:
        for mode in modes:
            for state in states:
                config = replace(base, chunker=chunker, retrieval=mode, reranker=state, answers=False)
                if mode != "hybrid":  # the single retrievers alone, as fusion must not lose to them
                    config = replace(alone(config, mode), reranker=state)
                name = f"{mode} alone" if mode != "hybrid" else mode
                config = replace(config, label=f"{chunker} {name} rerank={'off' if state == 'none' else 'on'}")
                config = config.resolved(settings)
                result = runner.evaluate(dataset, config, on_question=step, ingest_progress=ingest_progress)
                cells.append(GridCell(config.label, result.settings, result.metrics,
                                      why_off if state == "none" and why_off else ""))
    return cells
