"""Ingestion jobs of the API: uploads are ingested in the background, one job at a time, and
`GET /api/v1/jobs/{id}` reports their progress and, once done, every file's result."""

from __future__ import annotations

import logging
import shutil
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from core.errors import RagError
from ingest.pipeline import ChunkingOptions, FileResult
from rag.schemas import FileResultOut, IngestReportOut, JobOut
from rag.service import RagService
from rag.uploads import kept_path

logger = logging.getLogger(__name__)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass
class UploadedFile:
    """One file of an upload: its source name, where it waits, or why it was refused."""

    source: str
    staged: Path | None = None
    refused: str | None = None


@dataclass
class IngestJob:
    """One upload's ingestion; changed only by the job's own thread, read by anyone."""

    id: str
    collection: str
    files: list[UploadedFile]
    options: ChunkingOptions
    password: str | None = None
    status: str = "queued"
    files_done: int = 0
    current: str | None = None
    report: IngestReportOut | None = None
    error: str | None = None
    created_at: str = field(default_factory=_now)
    finished_at: str | None = None

    def view(self) -> JobOut:
        """The job as the API shows it."""
        return JobOut(id=self.id, collection=self.collection, status=self.status,  # type: ignore[arg-type]
                      files_total=len(self.files), files_done=self.files_done, current=self.current,
                      report=self.report, error=self.error, created_at=self.created_at,
                      finished_at=self.finished_at)


class IngestJobs:
    """Runs upload jobs on one worker thread (the service ingests one call at a time anyway) and keeps
    the last `keep` of them in memory: a restart forgets them, the documents stay."""

    def __init__(self, staging_dir: Path, *, keep: int = 200,
                 on_failure: Callable[[IngestJob], None] | None = None) -> None:
        self.staging_dir = staging_dir
        self.keep = keep
        self.on_failure = on_failure
        self._jobs: OrderedDict[str, IngestJob] = OrderedDict()
        self._lock = threading.Lock()
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ingest-job")

    def new_staging_folder(self) -> tuple[str, Path]:
        """A fresh job id and the folder its uploads wait in."""
        job_id = uuid.uuid4().hex
        folder = self.staging_dir / job_id
        folder.mkdir(parents=True, exist_ok=True)
        return job_id, folder

    def submit(self, job: IngestJob, service: Callable[[], RagService]) -> IngestJob:
        """Queue a job; it runs on the worker thread against the process's service."""
        with self._lock:
            self._jobs[job.id] = job
            while len(self._jobs) > self.keep:
                oldest = next(iter(self._jobs.values()))
                if oldest.status in ("queued", "running"):
                    break
                self._jobs.popitem(last=False)
        self._worker.submit(self._run, job, service)
        return job

    def get(self, job_id: str) -> IngestJob | None:
        with self._lock:
            return self._jobs.get(job_id)

    def close(self) -> None:
        """Stop taking jobs; the running one finishes."""
        self._worker.shutdown(wait=True, cancel_futures=True)

    def _run(self, job: IngestJob, service_of: Callable[[], RagService]) -> None:
        job.status = "running"
        accepted = [f for f in job.files if f.staged is not None]
        sources = {f.staged: f.source for f in accepted if f.staged is not None}

        def progress(event: dict[str, Any]) -> None:
            name = sources.get(Path(event.get("file", "")), event.get("file"))
            if event.get("event") == "start":
                job.current = name
            elif event.get("event") == "done":
                job.files_done += 1
                job.current = None

        try:
            service = service_of()
            report = service.ingest(list(sources), job.collection, job.options, progress=progress,
                                    sources=dict(sources), password=job.password) if sources else None
            job.report = self._merge(job, report.files if report else [],
                                     report.chunks_added if report else 0, report.seconds if report else 0.0)
            self._keep_uploads(job, service)
            job.status = "done"
        except (RagError, ValueError) as exc:
            job.error, job.status = str(exc), "failed"
        except Exception as exc:  # the job reports it; the server goes on
            logger.exception("ingest job %s failed", job.id)
            job.error, job.status = f"{type(exc).__name__}: {exc}", "failed"
        finally:
            job.current = None
            job.finished_at = _now()
            shutil.rmtree(self.staging_dir / job.id, ignore_errors=True)
            if job.status == "failed" and self.on_failure is not None:
                self.on_failure(job)

    @staticmethod
    def _merge(job: IngestJob, results: list[FileResult], chunks_added: int, seconds: float) -> IngestReportOut:
        """Every uploaded file's result, in upload order: the refused ones and the pipeline's."""
        by_staged = {r.path: r for r in results}
        files = []
        for f in job.files:
            if f.staged is None:
                files.append(FileResultOut(path=f.source, status="failed", error=f.refused))
            else:
                result = by_staged.get(str(f.staged))
                files.append(FileResultOut.from_result(result, f.source) if result is not None else
                             FileResultOut(path=f.source, status="failed", error="not ingested"))
        return IngestReportOut(files=files, chunks_added=chunks_added, seconds=round(seconds, 3))

    @staticmethod
    def _keep_uploads(job: IngestJob, service: RagService) -> None:
        """Keep each ingested file where the Documents page looks for it to re-ingest (last one wins)."""
        for f in job.files:
            if f.staged is None or not f.staged.is_file():
                continue
            target = kept_path(service.settings.uploads_dir, job.collection, f.source)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(str(f.staged), target)
