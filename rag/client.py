"""The `rag` command as a client: when a server answers, `rag ingest|ask|docs|collections` go through its
API instead of opening the store (which the server owns), with the same results and messages.

`connect()` picks the backend: RAG_SERVER_URL when it answers, else the `rag serve` of this RAG_HOME
(RAG_HOME/server.json) when its /health answers with the same instance, else a RagService of its own.
RemoteService has the RagService methods those commands call and returns the service's own types, so the
CLI prints the same output and exits with the same codes either way.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from core.errors import RagError
from core.options import PipelineOptions
from core.settings import Settings
from core.trace import Trace
from core.types import Answer
from ingest.pipeline import (
    ChunkingOptions,
    DocumentInfo,
    IngestReport,
    ProgressCallback,
    collect_files,
)
from rag.auth import ApiKeys
from rag.schemas import (
    AnswerOut,
    CollectionsOut,
    DocumentDeletedOut,
    DocumentsOut,
    IngestReportOut,
    JobOut,
)

HEALTH_TIMEOUT_S = 1.0
REQUEST_TIMEOUT_S = 600.0
JOB_POLL_S = 0.25


class RemoteAnswer:
    """What `RagService.ask_stream` gives the CLI, for an answer the server sent whole."""

    def __init__(self, answer: Answer, trace: Trace) -> None:
        self._answer = answer
        self.trace = trace

    def result(self) -> Answer:
        return self._answer


@dataclass
class CollectionSummary:
    """A collection with its counts: the fields of RagService.list_collections' CollectionInfo."""

    name: str
    documents: int
    chunks: int


class RemoteService:
    """The RagService calls of `rag ingest|ask|docs|collections`, answered by a server's API."""

    def __init__(self, url: str, settings: Settings, *, api_key: str | None = None,
                 transport: httpx.BaseTransport | None = None) -> None:
        self.url = url.rstrip("/")
        self.settings = settings
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._http = httpx.Client(base_url=self.url, headers=headers, timeout=REQUEST_TIMEOUT_S,
                                  transport=transport)

    # The calls
    def chunking_options(self, chunker: str | None = None, chunk_size: int | None = None,
                         chunk_overlap: int | None = None) -> ChunkingOptions:
        """The chosen options over this side's settings; the server checks them when the files arrive."""
        chosen = PipelineOptions(chunker=chunker, chunk_size=chunk_size, chunk_overlap=chunk_overlap).resolved(
            self.settings)
        return ChunkingOptions(chunker=str(chosen.chunker), chunk_size=int(chosen.chunk_size),
                               chunk_overlap=int(chosen.chunk_overlap),
                               parent_chunk_size=self.settings.parent_chunk_size)

    def ingest(self, paths: Iterable[Path], collection: str, options: ChunkingOptions | None = None, *,
               progress: ProgressCallback | None = None, sources: dict[Path, str] | None = None,
               password: str | None = None) -> IngestReport:
        """Upload the files (folders walked here, as the pipeline walks them) and wait for the job;
        the folders' files of other types are listed as skipped, as the service lists them."""
        from rag.service import unsupported_results

        paths = list(paths)
        report = self._ingest(paths, collection, options, progress=progress, sources=sources, password=password)
        report.files.extend(unsupported_results(paths))
        return report

    def _ingest(self, paths: list[Path], collection: str, options: ChunkingOptions | None, *,
                progress: ProgressCallback | None, sources: dict[Path, str] | None,
                password: str | None) -> IngestReport:
        from ingest.readers import SUPPORTED_EXTENSIONS

        files = collect_files(paths, SUPPORTED_EXTENSIONS)
        if sources:
            files = [(p, sources.get(p, s)) for p, s in files]
        if not files:
            return IngestReport()
        options = options or self.chunking_options()
        data = {"chunker": options.chunker, "chunk_size": str(options.chunk_size),
                "chunk_overlap": str(options.chunk_overlap)}
        if password:
            data["password"] = password
        local = [str(p) for p, _ in files]
        handles = [p.open("rb") for p, _ in files]
        try:
            parts = [("files", (source, handle, "application/octet-stream"))
                     for (_, source), handle in zip(files, handles, strict=True)]
            response = self._send("POST", f"/api/v1/collections/{_quoted(collection)}/documents", data=data,
                                  files=parts)
        finally:
            for handle in handles:
                handle.close()
        if response.status_code in (413, 415) and response.json().get("files") is not None:
            # None of the files could be taken: each one's reason, as the pipeline gives it.
            return IngestReportOut(files=response.json()["files"], chunks_added=0, seconds=0.0).to_report(local)
        job = JobOut.model_validate(self._checked(response).json())
        job = self._wait(job, local, progress)
        if job.status == "failed" or job.report is None:
            raise RagError(job.error or "The ingestion job failed.")
        return job.report.to_report(local)

    def ask_stream(self, question: str, collection: str | None = None, *, documents: list[str] | None = None,
                   history: list[str] | None = None, top_k: int | None = None, reranker: str | None = None,
                   answerer: str | None = None) -> RemoteAnswer:
        name = collection or self.settings.default_collection
        body = {"question": question, "top_k": top_k, "reranker": reranker, "answerer": answerer,
                "documents": list(documents) if documents else None,
                "previous": list(history) if history else None}
        response = self._send("POST", f"/api/v1/collections/{_quoted(name)}/ask",
                              json={k: v for k, v in body.items() if v is not None})
        out = AnswerOut.model_validate(self._checked(response).json())
        trace = Trace(question=question, collection=name, request_id=out.request_id)
        trace.standalone_question = out.standalone_question
        trace.searched = out.searched
        return RemoteAnswer(out.to_answer(), trace)

    def list_documents(self, collection: str) -> list[DocumentInfo]:
        response = self._send("GET", f"/api/v1/collections/{_quoted(collection)}/documents")
        return [d.to_info() for d in DocumentsOut.model_validate(self._checked(response).json()).documents]

    def delete_document(self, collection: str, name_or_id: str) -> int:
        response = self._send("DELETE", f"/api/v1/collections/{_quoted(collection)}/documents/"
                                         f"{_quoted(name_or_id, safe='/')}")
        return DocumentDeletedOut.model_validate(self._checked(response).json()).deleted_chunks

    def list_collections(self) -> list[CollectionSummary]:
        response = self._send("GET", "/api/v1/collections")
        return [CollectionSummary(c.name, c.documents, c.chunks)
                for c in CollectionsOut.model_validate(self._checked(response).json()).collections]

    def create_collection(self, name: str) -> None:
        self._checked(self._send("POST", "/api/v1/collections", json={"name": name}))

    def delete_collection(self, name: str) -> None:
        self._checked(self._send("DELETE", f"/api/v1/collections/{_quoted(name)}"))

    def close(self) -> None:
        self._http.close()

    # HTTP
    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            return self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise RagError(f"The server at {self.url} did not answer ({type(exc).__name__}): is `rag serve` "
                           "still running? Unset RAG_SERVER_URL to use the store directly.") from exc

    def _checked(self, response: httpx.Response) -> httpx.Response:
        """The response when it succeeded, else a RagError with the server's message (the CLI's own)."""
        if response.is_success:
            return response
        try:
            detail = response.json().get("detail")
        except ValueError:
            detail = None
        if response.status_code == 401:
            detail = (f"The server at {self.url} needs an API key: set RAG_SERVER_API_KEY "
                      "(or RAG_API_KEYS) to one of its keys.")
        raise RagError(detail if isinstance(detail, str) and detail else
                       f"The server at {self.url} answered {response.status_code} {response.reason_phrase}.")

    def _wait(self, job: JobOut, local: list[str], progress: ProgressCallback | None) -> JobOut:
        """Poll the job until it ends, telling `progress` which local file is being ingested."""
        told = -1
        while job.status in ("queued", "running"):
            if progress is not None and job.files_done != told and job.files_done < len(local):
                told = job.files_done
                progress({"event": "start", "file": local[told], "index": told + 1, "total": len(local)})
            time.sleep(JOB_POLL_S)
            job = JobOut.model_validate(self._checked(self._send("GET", f"/api/v1/jobs/{job.id}")).json())
        return job


def _quoted(text: str, safe: str = "") -> str:
    return quote(text, safe=safe)


class ServerRecord:
    """RAG_HOME/server.json while `rag serve` runs: where the `rag` command of the same RAG_HOME finds it."""

    FILE = "server.json"

    def __init__(self, home: Path, url: str, instance: str) -> None:
        self.path = home / self.FILE
        self.url = url
        self.instance = instance

    def write(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(json.dumps({"url": self.url, "instance": self.instance, "pid": os.getpid()}))

    def remove(self) -> None:
        """Remove the record when it is still this server's."""
        with suppress(OSError, ValueError):
            if json.loads(self.path.read_text()).get("instance") == self.instance:
                self.path.unlink()

    @classmethod
    def read(cls, home: Path) -> dict[str, Any] | None:
        """The record of the server of this RAG_HOME, if one wrote it (it may have stopped since)."""
        try:
            data = json.loads((home / cls.FILE).read_text())
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) and data.get("url") and data.get("instance") else None


def server_url(settings: Settings) -> tuple[str, str | None] | None:
    """Where a server is, and the instance id it must answer with (None: any): RAG_SERVER_URL, else
    RAG_HOME/server.json written by `rag serve`."""
    if settings.server_url:
        return settings.server_url, None
    record = ServerRecord.read(settings.home)
    return (record["url"], record["instance"]) if record else None


def answers(url: str, instance: str | None, transport: httpx.BaseTransport | None = None) -> bool:
    """True when /health at `url` answers (with `instance`, when given)."""
    try:
        with httpx.Client(timeout=HEALTH_TIMEOUT_S, transport=transport) as http:
            response = http.get(f"{url.rstrip('/')}/health")
        data = response.json() if response.status_code == 200 else None
    except (httpx.HTTPError, ValueError):
        return False
    return isinstance(data, dict) and data.get("status") == "ok" and (instance is None or
                                                                     data.get("instance") == instance)


def connect(settings: Settings | None = None) -> Any:
    """A RemoteService when a server answers, else the process's own RagService (which opens the store)."""
    settings = settings or Settings()
    found = server_url(settings)
    if found is not None and answers(*found):
        key = settings.server_api_key.get_secret_value() if settings.server_api_key else None
        if key is None:
            try:
                key = ApiKeys.from_setting(settings.api_keys).first_plain
            except ValueError:
                key = None
        return RemoteService(found[0], settings, api_key=key)
    from rag.service import RagService

    return RagService(settings, source="cli")
