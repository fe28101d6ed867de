"""Files in, chunks with dense + sparse vectors and rich metadata out, into one collection."""

from __future__ import annotations

import json
import os
import queue
import threading
import time
import unicodedata
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from core.errors import DocumentNotFoundError, RagError
from core.markup import readable
from core.types import Chunk, Document
from ingest.terms import document_codes, document_terms
from store.base import Point, Replacement, VectorStore

ID_NAMESPACE = uuid.UUID("6f1c3c1e-2b9a-4f67-9c0e-4d1f3b0a7e55")
FileStatus = Literal["ingested", "skipped", "failed"]
STAGES = ("read", "chunk", "embed", "store")
# Files read and chunked ahead of the one being embedded: reading (PDFium) and chunking run in a
# thread beside the embedder (onnxruntime and torch release the GIL), bounded so memory stays flat.
READ_AHEAD = 2
# Points staged before the store commits them: a commit is a few large writes and one flush (a
# flush cost 100-270 ms here), so many small files share one instead of paying one each.
BATCH_POINTS = 512
# Chunks embedded and handed to the store at a time: a large document's vectors are written as they
# come, never all held (the store swaps the document in only when all of it is written).
SLICE_CHUNKS = 256


@dataclass
class FileResult:
    """What happened to one file."""

    path: str
    status: FileStatus
    pages: int = 0
    chunks: int = 0
    error: str | None = None
    document_id: str | None = None
    source: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if k in ("path", "status", "pages", "chunks", "error")}


@dataclass
class IngestReport:
    """The outcome of one ingest call."""

    files: list[FileResult] = field(default_factory=list)
    chunks_added: int = 0
    seconds: float = 0.0
    stage_seconds: dict[str, float] = field(default_factory=lambda: dict.fromkeys(STAGES, 0.0))

    @property
    def failed(self) -> list[FileResult]:
        return [f for f in self.files if f.status == "failed"]

    def to_dict(self) -> dict[str, Any]:
        return {
            "files": [f.to_dict() for f in self.files],
            "chunks_added": self.chunks_added,
            "seconds": round(self.seconds, 3),
        }


@dataclass
class ChunkingOptions:
    """The chunker chosen for one ingest and its sizes."""

    chunker: str = "sentence"
    chunk_size: int = 200
    chunk_overlap: int = 20
    parent_chunk_size: int = 800


@dataclass
class DocumentInfo:
    """One stored document, as listed to a person."""

    document_id: str
    source: str
    file_name: str
    file_type: str
    pages: int
    chunks: int
    chunker: str
    chunker_settings: dict[str, Any]
    ingested_at: str
    sha256: str


ProgressCallback = Callable[[dict[str, Any]], None]


def normalise_source(name: str) -> str:
    """The stable form of a source name: NFC, forward slashes, no leading './'."""
    name = unicodedata.normalize("NFC", name.replace(os.sep, "/"))
    while name.startswith("./"):
        name = name[2:]
    return name


def document_id_for(collection: str, source: str) -> str:
    """A document id from its collection and normalised source name."""
    return str(uuid.uuid5(ID_NAMESPACE, f"{collection}\x00{normalise_source(source)}"))


def point_id_for(document_id: str, sha256: str, chunker_settings: dict[str, Any], index: int) -> str:
    """A point id from document id, file hash, chunker settings and chunk index."""
    settings = json.dumps(chunker_settings, sort_keys=True)
    return str(uuid.uuid5(ID_NAMESPACE, f"{document_id}\x00{sha256}\x00{settings}\x00{index}"))


def collect_files(paths: Iterable[Path], extensions: Iterable[str]) -> list[tuple[Path, str]]:
    """Files to ingest with their source names: folders are walked (source = path inside the folder)."""
    allowed = {e.lower() for e in extensions}
    found: list[tuple[Path, str]] = []
    for path in paths:
        path = Path(path)
        if path.is_dir():
            for child in sorted(p for p in path.rglob("*") if p.is_file()):
                if child.name.startswith("."):
                    continue
                # Inside folders only supported types are taken; a named file is always tried.
                if child.suffix.lower() in allowed:
                    found.append((child, child.relative_to(path).as_posix()))
        else:
            found.append((path, path.name))
    return found


class IngestionPipeline:
    """Reads, chunks, embeds and stores files; unchanged files are skipped, changed ones replaced whole.

    Files are stored together, each replaced atomically, in commits of about `batch_points` points;
    a document is embedded `slice_chunks` chunks at a time.
    """

    def __init__(self, store: VectorStore, embedder: Any, sparse: Any, *, max_file_bytes: int | None = None,
                 batch_points: int = BATCH_POINTS, slice_chunks: int = SLICE_CHUNKS) -> None:
        if batch_points <= 0 or slice_chunks <= 0:
            raise ValueError(f"batch_points and slice_chunks must be > 0 (got {batch_points}, {slice_chunks})")
        self.store = store
        self.embedder = embedder
        self.sparse = sparse
        self.max_file_bytes = max_file_bytes
        self.batch_points = batch_points
        self.slice_chunks = slice_chunks

    def ingest(
        self,
        paths: Iterable[Path],
        collection: str,
        options: ChunkingOptions | None = None,
        *,
        progress: ProgressCallback | None = None,
        password: str | None = None,
        sources: dict[Path, str] | None = None,
    ) -> IngestReport:
        """Ingest files and folders into `collection`; one bad file never stops the others."""
        from ingest.chunkers import make_chunker
        from ingest.readers import SUPPORTED_EXTENSIONS

        options = options or ChunkingOptions()
        chunker = make_chunker(
            options.chunker,
            options.chunk_size,
            options.chunk_overlap,
            parent_chunk_size=options.parent_chunk_size,
            embedder=self.embedder,
        )
        started = time.perf_counter()
        report = IngestReport()
        files = collect_files(paths, SUPPORTED_EXTENSIONS)
        if sources:
            files = [(p, sources.get(p, s)) for p, s in files]
        if files and not self.store.collection_exists(collection):
            self.store.create_collection(collection, self.embedder.dim)
        ahead = read_ahead([path for path, _ in files], chunker, password, self.max_file_bytes)
        pending = _PendingCommit(self.store, collection, report, progress, len(files))
        try:
            for number, ((path, source), ready) in enumerate(zip(files, ahead, strict=True), start=1):
                if progress:
                    progress({"event": "start", "file": str(path), "index": number, "total": len(files)})
                result = FileResult(path=str(path), status="failed", source=normalise_source(source),
                                    document_id=document_id_for(collection, source))
                report.files.append(result)
                pending.waiting.append((number, result))
                if result.document_id in pending.touched:
                    pending.commit()  # the same document again: its first version is settled before it is compared
                self._ingest_file(collection, chunker, report, ready, result, pending)
                if pending.points >= self.batch_points or not pending.staged:
                    pending.commit()  # with nothing staged, this only reports the files that are done
            pending.commit()
        finally:
            pending.close()
        report.seconds = time.perf_counter() - started
        return report

    def _ingest_file(self, collection: str, chunker: Any, report: IngestReport, ready: Prepared,
                     result: FileResult, pending: _PendingCommit) -> None:
        """Skip the file, stage its points in `pending` (its result is settled by the commit), or fail it."""
        document_id = str(result.document_id)
        try:
            report.stage_seconds["read"] += ready.read_seconds
            if ready.document is None:
                raise ready.error or RagError("not read")
            document = ready.document
            result.pages = len(document.pages)
            chunker_settings = _json_roundtrip(chunker.settings())
            existing = self.store.scroll(collection, {"document_id": document_id, "position": 0}, limit=1)
            if existing and _same_version(existing[0].payload, document.sha256, chunker_settings, self.embedder.model_name):
                result.status = "skipped"
                result.chunks = int(existing[0].payload.get("doc_chunks", 0))
                return
            report.stage_seconds["chunk"] += ready.chunk_seconds
            if ready.error is not None:
                raise ready.error
            chunks = ready.chunks
            if not chunks:
                raise RagError("no chunks produced (the text is empty after chunking)")
            for points in self._points(document, chunks, collection, document_id, str(result.source), chunker, report):
                pending.add(result, document_id, points)
        except Exception as exc:  # a reader, chunker or embedder failure must not stop the other files
            result.error = _reason(exc)
            pending.abandon(document_id, exc)

    def _points(
        self,
        document: Document,
        chunks: list[Chunk],
        collection: str,
        document_id: str,
        source: str,
        chunker: Any,
        report: IngestReport,
    ) -> Iterator[list[Point]]:
        """The document's points, `slice_chunks` chunks at a time, each slice embedded when it is asked for."""
        chunker_settings = _json_roundtrip(chunker.settings())
        for chunk in chunks:
            chunk.id = point_id_for(document_id, document.sha256, chunker_settings, chunk.index)
        by_index = {c.index: c for c in chunks}
        for chunk in chunks:
            if chunk.parent_index is not None:
                chunk.parent_id = by_index[chunk.parent_index].id
        # The document's name goes before each chunk's embedded text, as LlamaIndex embeds file_name
        # metadata: on docugami it lifted hybrid hit@5 from 0.821 to 0.908, neutral on COVID-QA.
        header = context_header(document)
        ingested_at = datetime.now(UTC).isoformat(timespec="seconds")
        base = {
            "collection": collection,
            "document_id": document_id,
            "source": source,
            "file_name": document.name,
            "file_type": document.file_type,
            "title": document.title,
            "created": document.metadata.get("created"),  # ISO date from the file's metadata, if any
            # Its most frequent capitalised words: what codes in file names stand for ("INTC": Intel).
            "doc_terms": document_terms("\n".join(page.text for page in document.pages)),
            # The codes it uses throughout ("10-Q" in every page header): the answerer counts them as
            # held by each of its chunks when a question names them.
            "doc_codes": document_codes([page.text for page in document.pages]),
            "sha256": document.sha256,
            "doc_pages": len(document.pages),
            "doc_chunks": sum(1 for c in chunks if c.level != "parent"),
            "chunker": chunker.name,
            "chunker_settings": chunker_settings,
            "embedding_model": self.embedder.model_name,
            "ingested_at": ingested_at,
        }
        for start in range(0, len(chunks), self.slice_chunks):
            part = chunks[start : start + self.slice_chunks]
            yield self._slice_points(part, start, base, header, report)

    def _slice_points(self, part: list[Chunk], start: int, base: dict[str, Any], header: str,
                      report: IngestReport) -> list[Point]:
        """Points of consecutive chunks from `start` on, their searchable ones embedded (dense and sparse)."""
        searchable = [c for c in part if c.level != "parent"]
        vectors: dict[str | None, tuple[Any, Any]] = {}
        if searchable:
            t0 = time.perf_counter()
            # A PDF's outline names navigation more than topics ("Cover", "Table of Contents" in a
            # filing): on docugami dev its headings before each chunk cost two answers, so only
            # the headings a text marks (Markdown, HTML, Word) are embedded with its chunks.
            sections = base.get("file_type") != "pdf"
            # Markdown is embedded as read: a link's address is no word of the text (`readable`).
            read = readable if base.get("file_type") == "md" else str
            texts = [header + (section_context(c, base.get("title")) if sections else "") + read(c.text)
                     for c in searchable]
            dense = self.embedder.embed(texts)
            sparse = self.sparse.encode_documents(texts)
            report.stage_seconds["embed"] += time.perf_counter() - t0
            vectors = {c.id: (dense[i].tolist(), sparse[i]) for i, c in enumerate(searchable)}
        points = []
        for position, chunk in enumerate(part, start=start):
            payload = dict(base)
            payload.update(
                text=chunk.text,
                chunk_index=chunk.index,
                page=chunk.page,
                start=chunk.start,
                end=chunk.end,
                heading_path=list(chunk.heading_path),
                token_count=chunk.token_count,
                level=chunk.level,
                parent_id=chunk.parent_id,
                position=position,  # position 0 carries the document-level fields for listing
            )
            dense_vec, sparse_vec = vectors.get(chunk.id, (None, None))
            points.append(Point(id=chunk.id, payload=payload, dense=dense_vec, sparse=sparse_vec))
        return points

    def list_documents(self, collection: str) -> list[DocumentInfo]:
        """The collection's documents, by source name."""
        firsts = self.store.scroll(collection, {"position": 0})
        docs = [
            DocumentInfo(
                document_id=p.payload["document_id"],
                source=p.payload.get("source", p.payload.get("file_name", "")),
                file_name=p.payload.get("file_name", ""),
                file_type=p.payload.get("file_type", ""),
                pages=int(p.payload.get("doc_pages", 0)),
                chunks=int(p.payload.get("doc_chunks", 0)),
                chunker=p.payload.get("chunker", ""),
                chunker_settings=p.payload.get("chunker_settings", {}),
                ingested_at=p.payload.get("ingested_at", ""),
                sha256=p.payload.get("sha256", ""),
            )
            for p in firsts
        ]
        return sorted(docs, key=lambda d: d.source)

    def find_document(self, collection: str, name_or_id: str) -> DocumentInfo | None:
        """A document by id, source name or file name."""
        for doc in self.list_documents(collection):
            if name_or_id in (doc.document_id, doc.source, doc.file_name):
                return doc
        return None

    def delete_document(self, collection: str, name_or_id: str) -> int:
        """Delete one document's chunks; returns how many points went."""
        doc = self.find_document(collection, name_or_id)
        if doc is None:
            raise DocumentNotFoundError(collection, name_or_id)
        return self.store.delete_document(collection, doc.document_id)


class _PendingCommit:
    """Files staged in one replacement of the store, waiting for its commit.

    A file's result, and its "done" progress event, are settled only when its points are committed:
    files are reported in order, once every earlier one is settled.
    """

    def __init__(self, store: VectorStore, collection: str, report: IngestReport,
                 progress: ProgressCallback | None, total: int) -> None:
        self.store = store
        self.collection = collection
        self.report = report
        self.progress = progress
        self.total = total
        self.replacement: Replacement | None = None
        self.staged: dict[str, FileResult] = {}  # document id -> the file's result
        self.touched: set[str] = set()  # documents added to the replacement, staged or given up since
        self.waiting: list[tuple[int, FileResult]] = []  # files not yet reported done, in order
        self.points = 0

    def add(self, result: FileResult, document_id: str, points: list[Point]) -> None:
        """Stage a slice of a file's points (written hidden as the store's write batches fill)."""
        if self.replacement is None:
            self.replacement = self.store.replacing(self.collection)
        self.staged[document_id] = result
        self.touched.add(document_id)
        t0 = time.perf_counter()
        self.replacement.add(document_id, points)
        self.report.stage_seconds["store"] += time.perf_counter() - t0
        result.chunks += sum(1 for p in points if p.payload.get("level") != "parent")
        self.points += len(points)

    def abandon(self, document_id: str, error: Exception) -> None:
        """The file failed: what it staged is never committed (its old version stays)."""
        result = self.staged.pop(document_id, None)
        if result is not None:
            result.chunks = 0
            if self.replacement is not None:
                self.replacement.abandon(document_id, error)

    def commit(self) -> None:
        """Commit what is staged, settle the staged files' results, report the files that are done."""
        if self.replacement is not None:
            replacement, self.replacement = self.replacement, None
            t0 = time.perf_counter()
            try:
                failed = replacement.commit()
            except Exception as exc:  # the commit itself failed: no staged file is known to be stored
                failed = dict.fromkeys(self.staged, exc)
            self.report.stage_seconds["store"] += time.perf_counter() - t0
            for document_id, result in self.staged.items():
                if document_id in failed:
                    result.error = _reason(failed[document_id])
                    result.chunks = 0
                else:
                    result.status = "ingested"
                    self.report.chunks_added += result.chunks
            self.staged.clear()
            self.touched.clear()
            self.points = 0
        for number, result in self.waiting:
            if self.progress:
                self.progress({"event": "done", "file": result.path, "index": number, "total": self.total,
                               "result": result})
        self.waiting.clear()

    def close(self) -> None:
        """Give up what was not committed (an ingest stopped by an exception)."""
        if self.replacement is not None:
            self.replacement.close()
            self.replacement = None


def _reason(exc: Exception) -> str:
    """What a person reads about a file's failure."""
    if isinstance(exc, RagError):
        return str(getattr(exc, "reason", None) or exc)
    return f"{type(exc).__name__}: {exc}"


@dataclass
class Prepared:
    """One file read and chunked ahead: the document and its chunks, or the error that stopped it."""

    document: Document | None = None
    chunks: list[Chunk] = field(default_factory=list)
    error: Exception | None = None
    read_seconds: float = 0.0
    chunk_seconds: float = 0.0


def prepare(path: Path, chunker: Any, password: str | None, max_bytes: int | None) -> Prepared:
    """Read and chunk one file; never raises (the error travels in the result)."""
    from ingest.readers import read_document

    ready = Prepared()
    t0 = time.perf_counter()
    try:
        ready.document = read_document(path, password=password, max_bytes=max_bytes)
    except Exception as exc:  # noqa: BLE001 - reported for this file by the consumer
        ready.error = exc
        return ready
    finally:
        ready.read_seconds = time.perf_counter() - t0
    t0 = time.perf_counter()
    try:
        ready.chunks = chunker.split(ready.document)
    except Exception as exc:  # noqa: BLE001 - reported for this file by the consumer
        ready.error = exc
    ready.chunk_seconds = time.perf_counter() - t0
    return ready


def read_ahead(paths: list[Path], chunker: Any, password: str | None, max_bytes: int | None,
               depth: int = READ_AHEAD) -> Iterator[Prepared]:
    """The files prepared in order by a thread that keeps at most `depth` of them waiting; closing
    the iterator early stops the thread."""
    waiting: queue.Queue[Prepared] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        for path in paths:
            ready = prepare(path, chunker, password, max_bytes)
            while not stop.is_set():
                try:
                    waiting.put(ready, timeout=0.1)
                    break
                except queue.Full:
                    continue
            if stop.is_set():
                return

    thread = threading.Thread(target=produce, name="ingest-read-ahead", daemon=True)
    thread.start()
    try:
        for _ in paths:
            yield waiting.get()
    finally:
        stop.set()
        thread.join()


def _same_version(payload: dict[str, Any], sha256: str, chunker_settings: dict[str, Any], model: str) -> bool:
    return (
        payload.get("sha256") == sha256
        and payload.get("chunker_settings") == chunker_settings
        and payload.get("embedding_model") == model
    )


def _json_roundtrip(value: dict[str, Any]) -> dict[str, Any]:
    """Settings as a payload stores them (tuples become lists), so comparisons hold."""
    return json.loads(json.dumps(value, sort_keys=True))


def section_context(chunk: Chunk, document_title: str | None = None) -> str:
    """The headings above a chunk that its text does not hold ("Account settings > Delete your
    account" for steps that start a chunk mid-section), embedded before it after the document's
    name and title (a heading that is the title is not repeated); Markdown, HTML and Word only."""
    missing = [title for title in chunk.heading_path if title not in chunk.text and title != document_title]
    return " > ".join(missing) + "\n" if missing else ""


def context_header(document: Document) -> str:
    """The file name (and a title that is not an id) placed before each chunk's embedded text."""
    stem = Path(document.name).stem
    title = document.title or ""
    parts = [stem]
    if sum(ch.isalpha() for ch in title) >= 4 and title not in stem:
        parts.append(title)
    return " - ".join(parts) + "\n"
