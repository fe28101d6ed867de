"""The evaluation runner: ingest a data set (cached), ask every question, compute the metrics.

The same runner serves `rag eval`, `rag calibrate`, the test suite and the Evaluation page. Each
run also measures the pipeline a user would build from LlamaIndex's starter docs
(`evaluation.starter`) on the same questions, so every report shows ours beside it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from core.errors import RagError
from core.stages import Query
from core.trace import Trace
from core.types import Answer, ScoredChunk
from evaluation.abstention import (
    CURVE_STEP,
    NEGATIVE_KINDS,
    curve_point,
    decision_from_row,
    thresholds,
    tradeoff_curve,
)
from evaluation.collection_cache import CACHE_FORMAT, CollectionCache, IngestedCollection
from evaluation.config import STARTER_LABEL, EvalConfig, alone
from evaluation.datasets import Dataset, Question
from evaluation.llm_judge import DEFINITIONS as JUDGE_DEFINITIONS
from evaluation.metrics import (
    METRIC_DEFINITIONS,
    abstention_accuracy,
    aggregate,
    answer_correct,
    citation_page_accuracy,
    containment_faithfulness,
    exact_match,
    holds_passage,
    latency_summary,
    passage_metrics,
    retrieval_metrics,
    semantic_similarity,
    token_f1,
)
from evaluation.starter import build_starter, starter_config, starter_key
from retrieval.retriever import HybridRetriever

# Kept importable from here, where callers found them before the config moved out.
__all__ = ["CACHE_FORMAT", "STARTER_LABEL", "CollectionCache", "EvalConfig", "EvalRun", "EvaluationRunner",
           "IngestedCollection", "PipelineResult", "alone", "metric_definitions", "run_grid"]

# Progress callback: (questions done, questions in all).
Progress = Callable[[int, int], None]


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
        "answered_rate": "share of answerable questions answered without an abstention",
        "answered_rate_gold_in_top5": "share answered of the answerable questions whose gold document "
        "is among the first 5 retrieved documents",
        "refusal_rate_foreign": "share of foreign negatives (questions borrowed from another data set) "
        "answered with an abstention",
        "refusal_rate_hard": "share of hard negatives (this set's questions asked with their gold "
        "documents filtered out of the search, or the set's own unanswerable questions) answered "
        "with an abstention",
        "correct_answer_rate": "share of the answers given to answerable questions that are correct by "
        "the reference: token F1 >= 0.5 or semantic similarity >= 0.7",
        "abstention_curve": "per threshold on the answerer's confidence: answered_rate_gold_in_top5 and "
        "the refusal rate per kind of negative, from the confidences recorded in this run (a "
        "question answers when its confidence reaches the threshold; one that abstained for "
        "another reason stays abstained)",
        "latency_ms": "p50 / p95 per stage over the questions, milliseconds",
        "cost_usd": "summed cost of the answers (0 for the extractive answerer)",
        **{k: v.format(judge="the --judge provider", n=3) for k, v in JUDGE_DEFINITIONS.items()},
        "judge_cost_usd": "summed cost of the judge's calls (with --judge)",
    }


def _source(chunk: ScoredChunk) -> str:
    """A chunk's document as gold labels name it: the path relative to documents/."""
    return str(chunk.payload.get("source") or chunk.payload.get("file_name") or "")


def ranked_keys(chunks: list[ScoredChunk]) -> tuple[list[str], list[tuple[str, int]]]:
    """Documents and (document, page) pairs in rank order of their first chunk."""
    docs = list(dict.fromkeys(_source(c) for c in chunks))
    pages = list(dict.fromkeys((_source(c), c.page) for c in chunks))
    return docs, pages


def passage_flags(question: Question, chunks: list[ScoredChunk]) -> list[bool] | None:
    """For each retrieved chunk, whether it holds the question's passage (see `holds_passage`);
    only chunks of gold documents count when the question names them. None without passage gold."""
    if not question.has_passage_gold:
        return None
    span = question.answer if question.answer_is_span else None
    gold = question.gold_documents
    return [(not gold or _source(c) in gold) and holds_passage(c.text, span, question.contexts or ())
            for c in chunks]


def answer_ranking(candidates: Sequence[ScoredChunk], trace: Trace) -> list[ScoredChunk]:
    """The chunks in the order an answer saw them: the top_k the rerank stage handed on (as the
    trace recorded them), then the other search candidates in their order."""
    by_id = {c.id: c for c in candidates}
    first = [by_id[chunk_id] for chunk_id, _ in trace.scores.get("rerank", []) if chunk_id in by_id]
    seen = {c.id for c in first}
    return first + [c for c in candidates if c.id not in seen]


def exclusion_filters(question: Question) -> dict[str, Any] | None:
    """The store filter that leaves a hard negative's gold documents out of the search."""
    if not question.exclude_documents:
        return None
    return {"source": {"not": list(question.exclude_documents)}}


@dataclass
class QuestionResult:
    """What one question produced: the ranked chunks, the context and answer, the timings."""

    ranked: list[ScoredChunk]
    sources: list[ScoredChunk] = field(default_factory=list)
    answer: Answer | None = None
    timings_ms: dict[str, float] = field(default_factory=dict)


class EvaluationRunner:
    """Runs pipelines over a data set. Cheap to build; the service's models load on first use."""

    def __init__(self, service: Any, cache: CollectionCache | None = None) -> None:
        self.service = service
        self.cache = cache or CollectionCache(service)
        self._rerankers: dict[str, tuple[Any, str | None]] = {}
        self._metric_embedder: Any = None

    @property
    def metric_embedder(self) -> Any:
        """What semantic similarity is measured with: fp32 vectors whichever backend the pipeline under
        test embeds with (int8 vectors would move the yardstick with what it measures)."""
        embedder = self.service.embedder
        if getattr(embedder, "backend", "torch") != "onnx-int8":
            return embedder
        if self._metric_embedder is None:
            from retrieval.embedder import SentenceEmbedder

            settings = self.service.settings
            self._metric_embedder = SentenceEmbedder(settings.embedding_model, backend="onnx",
                                                     cache_dir=settings.onnx_dir)
        return self._metric_embedder

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
        return HybridRetriever.from_settings(service.store, service.embedders, service.sparse, service.settings, config)

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
            retriever, ingested = build_starter(self.service, dataset, self.cache.root, starter_key(self.cache, dataset))
        else:
            ingested = collection or self.cache.ingest(dataset, config.chunking(settings), ingest_progress)
            retriever = self.retriever_for(config)
        notes: list[str] = []
        reranker, reason = self._reranker(config.reranker or "none")
        if reason:
            notes.append(reason)
        pipeline = None
        if config.answers and not config.starter:
            from answer.pipeline import AnswerPipeline

            # No request log: evaluation questions are not user traffic for monitoring.
            pipeline = AnswerPipeline(retriever, self.service.sentence_embedder, settings)
        judge = None
        if pipeline is not None and config.judge:
            from evaluation.llm_judge import RagasJudge

            judge = RagasJudge.from_spec(config.judge, settings, self.metric_embedder.embed)
            notes.extend(f"{k}: {v}" for k, v in judge.definitions().items())
        rows = []
        for question in dataset.questions:
            result = self._ask(question, ingested.collection, config, retriever, reranker, pipeline)
            rows.append(self._row(question, result, config, judge))
            if on_question:
                on_question()
        metrics = self._metrics(rows, pipeline is not None, config.abstain_threshold)
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

    def _ask(
        self, question: Question, collection: str, config: EvalConfig, retriever: Any, reranker: Any, pipeline: Any,
    ) -> QuestionResult:
        """Run the pipeline once for one question; its trace and results feed every metric.

        With answers: the answer pipeline, asked to search `depth` candidates (the ranking metrics
        read them: the answer's top_k first, as ranked, then the other candidates in search order).
        Retrieval only: the search and rerank stages alone, over `depth` chunks.
        """
        from answer.pipeline import rerank, search

        # Hard negatives leave their gold documents out; the starter (retrieval only) asks as is.
        filters = None if config.starter else exclusion_filters(question)
        trace = Trace(question=question.question, collection=collection)
        if pipeline is None:
            query = Query(question.question, collection, config.depth, config.depth, filters or {})
            with trace.timed("total"):
                ranked = rerank(reranker, search(retriever, query, trace), trace)
            return QuestionResult(ranked=list(ranked.chunks), timings_ms=dict(trace.timings_ms))
        stream = pipeline.ask_stream(
            question.question, collection, top_k=config.top_k, reranker=config.reranker, answerer=config.answerer,
            filters=filters, trace=trace, fetch=config.depth, abstain_threshold=config.abstain_threshold)
        answer = stream.result()
        return QuestionResult(answer_ranking(stream.candidates, trace), list(stream.sources), answer,
                              dict(trace.timings_ms))

    def _row(self, question: Question, result: QuestionResult, config: EvalConfig, judge: Any) -> dict[str, Any]:
        """One report row: the question, what was retrieved, its metrics and, with answers, the answer."""
        hits = result.ranked
        docs, pages = ranked_keys(hits)
        metrics = retrieval_metrics(docs, question.gold_documents or None, pages, question.gold_pages or None)
        if question.has_passage_gold:
            metrics.update(passage_metrics(passage_flags(question, hits)))
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
            "metrics": metrics,
            "answer": None,
            "citations": [],
            "abstained": None,
            "timings_ms": {k: round(v, 2) for k, v in result.timings_ms.items()},
        }
        if question.negative_kind:
            row["negative"] = question.negative_kind
        if question.exclude_documents:
            row["excluded_documents"] = list(question.exclude_documents)
        if result.answer is not None:
            row.update(self._answer_fields(question, result.answer, result.sources, config))
            if judge is not None and not result.answer.abstained:
                row.update(_judged(judge, question.question, result.answer, result.sources, row["answer_metrics"]))
        return row

    def _answer_fields(
        self, question: Question, answer: Answer, sources: list[ScoredChunk], config: EvalConfig,
    ) -> dict[str, Any]:
        """The answer's row fields and metrics, read from the answer and the context it was given."""
        from answer.grounding import strip_markers

        by_id = {s.id: s for s in sources}
        citations = [
            {"n": c.n, "document": _source(by_id[c.chunk_id]) if c.chunk_id in by_id else c.document,
             "page": c.page, "chunk_id": c.chunk_id, "score": round(float(c.score), 6),
             "support": round(float(c.support), 4), "supporting_sentence": c.supporting_sentence}
            for c in answer.citations
        ]
        text = strip_markers(answer.text).strip()
        metrics: dict[str, Any] = {}
        answered = not answer.abstained
        if question.answer and question.answerable:
            metrics["exact_match"] = exact_match(text, question.answer) if answered else 0.0
            metrics["token_f1"] = token_f1(text, question.answer) if answered else 0.0
            metrics["semantic_similarity"] = (
                semantic_similarity(text, question.answer, self.metric_embedder.embed) if answered else 0.0
            )
            if answered:
                correct = answer_correct(metrics["token_f1"], metrics["semantic_similarity"])
                metrics["correct_answer_rate"] = None if correct is None else float(correct)
        if answered:
            faithful, precise = containment_faithfulness(answer.text, [s.text for s in sources])
            metrics["faithfulness"] = faithful
            metrics["citation_precision"] = precise
            metrics["citation_page_accuracy"] = citation_page_accuracy(
                [(c["document"], c["page"]) for c in citations], question.gold_pages or None)
            # Did the answer cite the passage that holds the evidence, when one of its sources held it?
            held = passage_flags(question, sources) if question.answerable else None
            if held and any(held):
                holding = {source.id for source, flag in zip(sources, held, strict=True) if flag}
                metrics["cited_passage_rate"] = float(any(c["chunk_id"] in holding for c in citations))
        if question.answerable:
            metrics["answered_rate"] = 1.0 if answered else 0.0
        confidence = None if answer.confidence is None else round(float(answer.confidence), 4)
        threshold = float(config.abstain_threshold or 0.0)
        abstained_by = None
        if answer.abstained:
            abstained_by = "threshold" if confidence is not None and confidence < threshold else "other"
        return {
            "answer": answer.text,
            "citations": citations,
            "abstained": answer.abstained,
            "confidence": confidence,
            "abstained_by": abstained_by,
            "answer_metrics": metrics,
            "cost_usd": answer.cost_usd,
            "answer_timings_ms": {k: round(v, 2) for k, v in answer.timings_ms.items()},
        }

    @staticmethod
    def _metrics(rows: list[dict[str, Any]], answers: bool, threshold: float | None = None) -> dict[str, Any]:
        answerable = [r for r in rows if r["answerable"]]
        metrics: dict[str, Any] = {
            k: _round(v) for k, v in aggregate(r["metrics"] for r in answerable).items() if v is not None
        }
        metrics["questions_scored"] = sum(1 for r in answerable if r["gold_documents"])
        passage_scored = sum(1 for r in answerable if r["metrics"].get("passage_hit@5") is not None)
        if passage_scored:
            metrics["questions_with_passage_gold"] = passage_scored
        if answers:
            metrics.update({k: _round(v) for k, v in aggregate(r.get("answer_metrics", {}) for r in rows).items()})
            metrics.update(abstention_metrics(rows, float(threshold or 0.0)))
            metrics["cost_usd"] = round(sum(r.get("cost_usd") or 0.0 for r in rows), 6)
            if any("judge" in r or "judge_error" in r for r in rows):
                metrics["judge_cost_usd"] = round(sum(r.get("judge_cost_usd") or 0.0 for r in rows), 6)
                metrics["judge_errors"] = sum(1 for r in rows if "judge_error" in r)
            latency = latency_summary(r["answer_timings_ms"] for r in rows)
        else:
            latency = latency_summary(r["timings_ms"] for r in rows)
        metrics["latency_ms"] = {s: {k: round(v, 1) for k, v in d.items()} for s, d in latency.items()}
        return metrics


def abstention_metrics(rows: list[dict[str, Any]], threshold: float) -> dict[str, Any]:
    """Abstention figures of rows with answers: abstention accuracy, answered rate where the gold
    document was found, refusal per kind of negative, and the curve over thresholds."""
    metrics: dict[str, Any] = {
        "abstention_accuracy": _round(abstention_accuracy(
            [{"answerable": r["answerable"], "abstained": r["abstained"]} for r in rows])),
        "unanswerable_questions": sum(1 for r in rows if not r["answerable"]),
    }
    for kind in NEGATIVE_KINDS:
        count = sum(1 for r in rows if r.get("negative") == kind)
        if count:
            metrics[f"{kind}_negatives"] = count
    decisions = [d for d in (decision_from_row(r, threshold) for r in rows) if d is not None]
    now = curve_point(decisions, threshold)
    metrics["answered_rate_gold_in_top5"] = _round(now.answered_rate)
    for kind, rate in now.refusal.items():
        metrics[f"refusal_rate_{kind}"] = _round(rate)
    metrics["abstention_curve"] = [
        p.to_dict() for p in tradeoff_curve(decisions, thresholds(CURVE_STEP, decisions, include=[threshold]))]
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
    data["embedding_backend"] = settings.embedding_backend
    data["sentence_backend"] = settings.sentence_backend
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
