"""The service layer: builds the store, embedder and pipelines once; the CLI and the pages call it."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from answer.pipeline import AnswerPipeline
from core.errors import DocumentNotFoundError, RagError
from core.options import PipelineOptions
from core.settings import Settings, get_settings
from core.stages import AnswerStream
from core.types import Answer
from ingest.pipeline import (
    ChunkingOptions,
    DocumentInfo,
    FileResult,
    IngestionPipeline,
    IngestReport,
    ProgressCallback,
)
from monitoring.request_log import RequestLog
from retrieval.embedder import CollectionEmbedders, SentenceEmbedder, sentence_embedder
from retrieval.retriever import HybridRetriever
from retrieval.sparse import Bm25Encoder
from retrieval.subjects import CollectionSubjects
from store.base import VectorStore


@dataclass
class CollectionInfo:
    """A collection with its document and chunk counts."""

    name: str
    documents: int
    chunks: int


def unsupported_results(paths: Iterable[Path]) -> list[FileResult]:
    """The files of these folders that no reader takes, as skipped results with the reason."""
    from ingest.readers import unsupported_in_folders

    return [FileResult(path=str(path), status="skipped", error=reason)
            for path, reason in unsupported_in_folders(paths)]


def cleaned_sources(paths: Iterable[Path]) -> dict[Path, str]:
    """Source names for the files whose names hold control or format characters (a newline, a
    right-to-left mark): the name cleaned as an upload's is (rag/uploads.py), so the CLI and the
    API store and show the same harmless name."""
    from ingest.pipeline import collect_files
    from ingest.readers import SUPPORTED_EXTENSIONS
    from rag.uploads import clean_name

    cleaned = {}
    for path, source in collect_files(paths, SUPPORTED_EXTENSIONS):
        clean = "/".join(part for part in (clean_name(p) for p in source.split("/")) if part)
        if clean and clean != source:
            cleaned[path] = clean
    return cleaned


class RagService:
    """One instance per process: cheap to build, heavy parts load on first use."""

    def __init__(self, settings: Settings | None = None, *, source: str = "") -> None:
        self.settings = settings or get_settings()
        self.settings.ensure_dirs()
        # Who asks through this service (web, cli, api, eval): logged with each request, unless a
        # request names its own (`source=` of ask, for a process that serves the web and the API).
        self.source = source
        self._lock = threading.Lock()
        # Told of every ingest call's report (collection, report); the server's metrics count them.
        self.ingest_observers: list[Callable[[str, IngestReport], None]] = []
        self._pipelines: dict[int, IngestionPipeline] = {}  # one per embedder (the collections' spaces)

    @cached_property
    def store(self) -> VectorStore:
        from store.factory import make_store

        return make_store(self.settings)

    @cached_property
    def embedder(self) -> SentenceEmbedder:
        """The embedder of new collections (RAG_EMBEDDING_BACKEND; auto: fp32 ONNX when onnxruntime imports)."""
        return SentenceEmbedder(
            self.settings.embedding_model,
            batch_size=self.settings.embedding_batch_size,
            backend=self.settings.embedding_backend,
            cache_dir=self.settings.onnx_dir,
        )

    @cached_property
    def embedders(self) -> CollectionEmbedders:
        """The embedder of each collection: with auto, the space its chunks are stored in."""
        return CollectionEmbedders(self.embedder, self.store)

    @cached_property
    def sentence_embedder(self) -> SentenceEmbedder:
        """Embeds the sources' sentences for the answer step (RAG_SENTENCE_BACKEND)."""
        return sentence_embedder(self.embedder, self.settings.sentence_backend)

    @cached_property
    def sparse(self) -> Bm25Encoder:
        return Bm25Encoder(language=self.settings.language)

    @cached_property
    def pipeline(self) -> IngestionPipeline:
        """Documents of any collection: listing, finding, deleting (ingest_pipeline embeds)."""
        return self.ingest_pipeline(self.embedder)

    def ingest_pipeline(self, embedder: SentenceEmbedder) -> IngestionPipeline:
        """The ingestion pipeline that embeds with `embedder` (a collection's, `embedders.for_collection`)."""
        if id(embedder) not in self._pipelines:
            self._pipelines[id(embedder)] = IngestionPipeline(
                self.store, embedder, self.sparse, max_file_bytes=int(self.settings.max_file_mb * 1024 * 1024))
        return self._pipelines[id(embedder)]

    @cached_property
    def request_log(self) -> RequestLog:
        return RequestLog(self.settings.logs_dir / "requests.sqlite")

    @cached_property
    def retriever(self) -> HybridRetriever:
        return HybridRetriever.from_settings(self.store, self.embedders, self.sparse, self.settings)

    @cached_property
    def answers(self) -> AnswerPipeline:
        return AnswerPipeline(self.retriever, self.sentence_embedder, self.settings, self.request_log, self.subjects)

    @cached_property
    def subjects(self) -> CollectionSubjects:
        """The names each collection is about, read again after every change to it (`_changed`)."""
        return CollectionSubjects(self.store)

    def _changed(self, collection: str) -> None:
        """Forget what was read from the collection: it was written to, emptied or deleted."""
        self.embedders.forget(collection)
        self.subjects.forget(collection)

    # Answers
    def ask(
        self, question: str, collection: str | None = None, *, documents: Sequence[str] | None = None,
        session: str | None = None, **options: Any,
    ) -> Answer:
        """A checked answer with citations (options: top_k, reranker, answerer, filters, mode, history:
        the conversation's earlier questions). `documents`: ask only these (names or ids). `session`: whose
        question (a chat session, an API client), for A/B variants sticky per session."""
        name, options = self._routed(collection, session, options)
        answer = self.answers.ask(question, name, **self._only(name, documents, options))
        mismatch = self.embedders.mismatch(name, adding=False)
        if mismatch:
            answer.warnings.append(mismatch)
        return answer

    def ask_stream(
        self, question: str, collection: str | None = None, *, documents: Sequence[str] | None = None,
        session: str | None = None, **options: Any,
    ) -> AnswerStream:
        """The same answer as a stream of text pieces; `.answer` once read, `.trace` its figures
        (`trace.standalone_question`: what was searched for, a follow-up completed from `history`)."""
        name, options = self._routed(collection, session, options)
        return self.answers.ask_stream(question, name, **self._only(name, documents, options))

    def _routed(self, collection: str | None, session: str | None, options: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        """The collection and options of one request: who asks, and with A/B testing on, the variant of
        its session (core/variants.py; a request without a session is a session of its own), whose
        choices win over the request's."""
        import uuid

        from core.variants import assign, parse_variants

        name = collection or self.settings.default_collection
        options = {"source": self.source, **options}
        variants = parse_variants(self.settings.ab, self.settings.ab_variants)
        if not variants:
            return name, options
        variant = assign(variants, session or uuid.uuid4().hex)
        return name + variant.collection_suffix, {**options, **variant.pipeline_options(), "variant": variant.name}

    def ab_variants(self) -> dict[str, dict[str, Any]]:
        """The A/B variants the settings define (RAG_AB, RAG_AB_VARIANTS): name -> its share of sessions
        ("share") and the choices it makes."""
        from core.variants import parse_variants

        return {v.name: {"share": v.share, **v.options} for v in parse_variants(self.settings.ab, self.settings.ab_variants)}

    def document_filter(self, collection: str, documents: Sequence[str]) -> dict[str, Any]:
        """The store filter that keeps a search to these documents (source names, file names or
        ids, as `rag docs list` shows them); a RagError names one the collection does not hold."""
        known = self.list_documents(collection)
        ids = []
        for wanted in dict.fromkeys(d.strip() for d in documents if d and d.strip()):
            match = next((d for d in known if wanted in (d.document_id, d.source, d.file_name)), None)
            if match is None:
                raise RagError(f"No document {wanted!r} in collection {collection!r}: "
                               f"`rag docs list --collection {collection}` shows them.")
            ids.append(match.document_id)
        return {"document_id": ids} if ids else {}

    def _only(self, collection: str, documents: Sequence[str] | None, options: dict[str, Any]) -> dict[str, Any]:
        """The options with "ask only these documents" added to their filters."""
        if not documents:
            return options
        only = self.document_filter(collection, documents)
        return {**options, "filters": {**(options.get("filters") or {}), **only}} if only else options

    def monitoring(self, window: str | None = None, *, collection: str | None = None, source: str | None = None,
                   remember_alerts: bool = True):  # noqa: ANN201
        """Latency percentiles, errors, tokens, cost, drift, answer quality and alerts from the request
        log over `window` (1d, 12h, all), for one collection and one source when given."""
        from monitoring.config import MonitorConfig, parse_window
        from monitoring.metrics import build_report

        return build_report(self.request_log, parse_window(window), MonitorConfig.from_settings(self.settings),
                            window=window or "all", collection=collection, source=source,
                            evaluations=self.evaluation_statuses(), remember_alerts=remember_alerts)

    def evaluation_statuses(self) -> list[Any]:
        """The latest evaluation runs with the committed baseline of their data set (for quality alerts)."""
        from evaluation.run_store import load_baseline
        from monitoring.alerts import EvaluationStatus

        return [EvaluationStatus(run["dataset"], run["created_at"], run["metrics"], load_baseline(run["dataset"]))
                for run in self.evaluation_store.list(50, with_rows=False)]

    def new_monitoring_reference(self, collection: str) -> None:
        """Drift compares against the requests that come after now (after a fix, a new model, a re-index)."""
        self.request_log.mark("reference", collection)

    def record_feedback(self, request_id: str, helpful: bool) -> bool:
        """Helpful / not helpful, stored with the request."""
        return self.request_log.set_feedback(request_id, helpful)

    def chunking_options(
        self, chunker: str | None = None, chunk_size: int | None = None, chunk_overlap: int | None = None
    ) -> ChunkingOptions:
        """Per-call chunking choices over the settings' defaults."""
        chosen = PipelineOptions(chunker=chunker, chunk_size=chunk_size, chunk_overlap=chunk_overlap).resolved(
            self.settings)
        options = ChunkingOptions(
            chunker=str(chosen.chunker),
            chunk_size=int(chosen.chunk_size),
            chunk_overlap=int(chosen.chunk_overlap),
            parent_chunk_size=self.settings.parent_chunk_size,
        )
        from ingest.chunkers import make_chunker

        # Built once here so a bad choice fails now, with the chunker's message, before any file is read.
        make_chunker(options.chunker, options.chunk_size, options.chunk_overlap,
                     parent_chunk_size=options.parent_chunk_size)
        return options

    # Ingestion and documents
    def _index(self, collection: str, report: IngestReport) -> None:
        """Build the search index of what an ingestion added, once the collection is large enough to
        need one (settings.index_points); its seconds are the report's "index" stage."""
        threshold = self.settings.index_points
        if not report.chunks_added or not threshold or self.store.count(collection) < threshold:
            return
        started = time.perf_counter()
        self.store.optimize(collection)
        report.stage_seconds["index"] = round(time.perf_counter() - started, 3)
        report.seconds += report.stage_seconds["index"]

    def ingest(
        self,
        paths: Iterable[Path],
        collection: str,
        options: ChunkingOptions | None = None,
        *,
        progress: ProgressCallback | None = None,
        sources: dict[Path, str] | None = None,
        password: str | None = None,
    ) -> IngestReport:
        paths = list(paths)
        sources = {**cleaned_sources(paths), **(sources or {})} or None
        with self._lock:
            fresh = not self.store.collection_exists(collection) or self.store.count(collection) == 0
            self._changed(collection)
            mismatch = None if fresh else self.vector_space_mismatch(collection)
            if mismatch:  # adding vectors of another space would mix two spaces in one index
                raise RagError(mismatch)
            pipeline = self.ingest_pipeline(self.embedders.for_collection(collection))
            self._changed(collection)
            report = pipeline.ingest(
                paths, collection, options or self.chunking_options(),
                progress=progress, sources=sources, password=password,
            )
            self._index(collection, report)
            self.subjects.forget(collection)  # a question asked while it ran may have read it half written
        report.files.extend(unsupported_results(paths))
        if report.chunks_added:  # monitoring: a new index restarts drift's reference; growth asks for calibration
            self.request_log.mark("reindex" if fresh else "ingest", collection, {
                "chunks_added": report.chunks_added, "files": sum(f.status == "ingested" for f in report.files)})
        for observe in self.ingest_observers:
            observe(collection, report)
        return report

    def list_documents(self, collection: str) -> list[DocumentInfo]:
        self._require(collection)
        return self.pipeline.list_documents(collection)

    def delete_all_documents(self, collection: str) -> tuple[list[str], int]:
        """Delete every document of a collection (which stays, empty): their names and the chunks gone."""
        self._require(collection)
        names, chunks = [], 0
        for doc in self.pipeline.list_documents(collection):
            chunks += self.pipeline.delete_document(collection, doc.document_id)
            names.append(doc.source)
        self._changed(collection)  # empty: the next ingestion picks the space again
        return names, chunks

    def get_document(self, collection: str, name_or_id: str) -> DocumentInfo:
        """One document by name (as listed), file name or id; DocumentNotFoundError when there is none."""
        self._require(collection)
        doc = self.pipeline.find_document(collection, name_or_id)
        if doc is None:
            raise DocumentNotFoundError(collection, name_or_id)
        return doc

    def delete_document(self, collection: str, name_or_id: str) -> int:
        self._require(collection)
        self._changed(collection)
        return self.pipeline.delete_document(collection, name_or_id)

    # Collections
    def list_collections(self) -> list[CollectionInfo]:
        infos = []
        for name in self.store.list_collections():
            docs = self.store.count(name, {"position": 0})
            chunks = self.store.count(name, {"level": ["leaf", "child"]})
            infos.append(CollectionInfo(name=name, documents=docs, chunks=chunks))
        return infos

    def get_collection(self, name: str) -> CollectionInfo:
        """One collection with its counts; CollectionNotFoundError when there is none."""
        self._require(name)
        return CollectionInfo(name=name, documents=self.store.count(name, {"position": 0}),
                              chunks=self.store.count(name, {"level": ["leaf", "child"]}))

    def create_collection(self, name: str) -> None:
        self.store.create_collection(name, self.embedder.dim)

    def delete_collection(self, name: str) -> None:
        self._require(name)
        self.store.delete_collection(name)
        self._changed(name)

    def vector_space_mismatch(self, collection: str) -> str | None:
        """What to do when the collection's chunks were embedded in another vector space (another
        model, or int8 against fp32 vectors) than this process adds chunks in; None when they match."""
        return self.embedders.mismatch(collection)

    def ensure_samples(self) -> IngestReport | None:
        """Ingest the shipped sample documents into the default collection when it is missing or empty."""
        name = self.settings.default_collection
        if self.store.collection_exists(name) and self.store.count(name) > 0:
            return None
        return self.ingest([self.settings.samples_dir], name)

    # Evaluation
    @cached_property
    def evaluation_store(self):  # noqa: ANN201
        from evaluation.run_store import RunStore

        return RunStore(self.settings.logs_dir / "evaluation.sqlite")

    def evaluation_runs(self, limit: int = 50) -> list[dict[str, Any]]:
        """Stored evaluation runs, latest first, each with its difference to the committed baseline."""
        from evaluation.run_store import baseline_delta

        runs = self.evaluation_store.list(limit)
        for run in runs:
            delta = baseline_delta(run["dataset"], run["metrics"])
            if delta:
                run["baseline_delta"] = delta
        return runs

    def evaluation_datasets(self) -> list[str]:
        """Data set folders offered on the Evaluation page: the shipped sample set."""
        from evaluation.datasets import QUESTIONS_FILE

        root = self.settings.samples_dir.parent
        return [str(root)] if (root / QUESTIONS_FILE).is_file() else []

    def run_evaluation(
        self, dataset: str, *, top_k: int | None = None, reranker: str | None = None, answerer: str | None = None,
        limit: int | None = None, progress: Any = None,
    ) -> dict[str, Any]:
        """Evaluate a data set with these settings (and the starter beside it), store and return the run."""
        from evaluation.datasets import load_dataset
        from evaluation.runner import EvalConfig, EvaluationRunner

        data = load_dataset(dataset)
        if limit:
            data = data.limit(limit)
        config = EvalConfig(top_k=top_k, reranker=reranker or None, answerer=answerer or None)
        run = EvaluationRunner(self).run(data, config, progress=progress)
        run_id = self.evaluation_store.save(run)
        self.track_evaluation(run)
        return next(r for r in self.evaluation_runs() if r["id"] == run_id)

    def track_evaluation(self, run: Any) -> Any:
        """Log an evaluation run to MLflow (monitoring/tracking.py); None when MLflow is absent or off."""
        from monitoring.tracking import log_evaluation

        return log_evaluation(self.settings, run.summary(), run.to_dict())

    def _require(self, collection: str) -> None:
        self.store.require_collection(collection)

    def close(self) -> None:
        if "store" in self.__dict__:
            self.store.close()
        if "request_log" in self.__dict__:
            self.request_log.close()
