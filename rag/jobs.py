"""Ingestion jobs of the API: uploads are ingested in the background, one job at a time, and
`GET /api/v1/jobs/{id}` reports their progress and, once done, every file's result.

Every change of a job is written to SQLite (`RAG_HOME/logs/jobs.sqlite`), so a job's state outlives the
server: after a restart, finished jobs still answer, and one that was queued or running when the
server stopped is reported as interrupted.
"""

from __future__ import annotations

import logging
import shutil
import sqlite3
import threading
import uuid
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
    status: str = "queued"  # queued | running | done | failed (| interrupted, only as stored)
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


INTERRUPTED = ("The server stopped before this job finished ({done} of {total} files done): upload the "
               "files again (those already ingested are unchanged and skipped).")


class JobStore:
    """The jobs' last known state in SQLite, one row per job (its JobOut as JSON); thread-safe."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.Lock()
        self._connection: sqlite3.Connection | None = None
        with self._lock:
            self._db.execute("CREATE TABLE IF NOT EXISTS jobs (id TEXT PRIMARY KEY, seq INTEGER NOT NULL, "
                             "status TEXT NOT NULL, body TEXT NOT NULL)")
            self._db.execute("CREATE INDEX IF NOT EXISTS jobs_seq ON jobs(seq)")

    @property
    def _db(self) -> sqlite3.Connection:
        """The connection, opened on first use (again after close); call with the lock held."""
        if self._connection is None:
            self._connection = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=30)
            self._connection.execute("PRAGMA journal_mode=WAL")
        return self._connection

    def save(self, job: JobOut) -> None:
        """Write a job's state (a new job goes last)."""
        with self._lock:
            self._db.execute(
                "INSERT INTO jobs (id, seq, status, body) VALUES (?, (SELECT COALESCE(MAX(seq), 0) + 1 FROM jobs), "
                "?, ?) ON CONFLICT(id) DO UPDATE SET status = excluded.status, body = excluded.body",
                (job.id, job.status, job.model_dump_json()))

    def get(self, job_id: str) -> JobOut | None:
        with self._lock:
            row = self._db.execute("SELECT body FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return JobOut.model_validate_json(row[0]) if row else None

    def interrupt_unfinished(self) -> list[str]:
        """Mark the jobs a stopped server left queued or running as interrupted; their ids."""
        with self._lock:
            rows = self._db.execute("SELECT body FROM jobs WHERE status IN ('queued', 'running')").fetchall()
        stopped = []
        for (body,) in rows:
            job = JobOut.model_validate_json(body)
            self.save(job.model_copy(update={
                "status": "interrupted", "current": None, "finished_at": _now(),
                "error": INTERRUPTED.format(done=job.files_done, total=job.files_total)}))
            stopped.append(job.id)
        return stopped

    def prune(self, keep: int) -> None:
        """Forget all but the last `keep` jobs (never a queued or running one)."""
        with self._lock:
            self._db.execute("DELETE FROM jobs WHERE status NOT IN ('queued', 'running') AND seq <= "
                             "(SELECT COALESCE(MAX(seq), 0) FROM jobs) - ?", (keep,))

    def close(self) -> None:
        with self._lock:
            if self._connection is not None:
                self._connection.close()
                self._connection = None


class IngestJobs:
    """Runs upload jobs on one worker thread (the service ingests one call at a time anyway), keeps the
    live ones in memory and every job's state in a JobStore: the last `keep` answer after a restart."""

    def __init__(self, staging_dir: Path, store_path: Path, *, keep: int = 1000,
                 on_failure: Callable[[IngestJob], None] | None = None) -> None:
        self.staging_dir = staging_dir
        self.keep = keep
        self.on_failure = on_failure
        self.store = JobStore(store_path)
        # A server that stopped mid-job left it queued or running, and maybe its staged files.
        for job_id in self.store.interrupt_unfinished():
            logger.warning("ingest job %s was interrupted by a server stop", job_id)
        if staging_dir.is_dir():
            for leftover in staging_dir.iterdir():
                shutil.rmtree(leftover, ignore_errors=True)
        self._live: dict[str, IngestJob] = {}
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
            self._live[job.id] = job
        self._save(job)
        self.store.prune(self.keep)
        self._worker.submit(self._run, job, service)
        return job

    def get(self, job_id: str) -> JobOut | None:
        """A job as the API shows it: a live one as it is now, else as last stored."""
        with self._lock:
            live = self._live.get(job_id)
        return live.view() if live is not None else self.store.get(job_id)

    def close(self) -> None:
        """Stop taking jobs; the running one finishes, the queued ones are stored as interrupted."""
        self._worker.shutdown(wait=True, cancel_futures=True)
        self.store.interrupt_unfinished()
        self.store.close()

    def _save(self, job: IngestJob) -> None:
        try:
            self.store.save(job.view())
        except sqlite3.Error:  # the job goes on; only what a restart would show is lost
            logger.exception("could not store the state of ingest job %s", job.id)

    def _run(self, job: IngestJob, service_of: Callable[[], RagService]) -> None:
        job.status = "running"
        self._save(job)
        accepted = [f for f in job.files if f.staged is not None]
        sources = {f.staged: f.source for f in accepted if f.staged is not None}

        def progress(event: dict[str, Any]) -> None:
            name = sources.get(Path(event.get("file", "")), event.get("file"))
            if event.get("event") == "start":
                job.current = name
            elif event.get("event") == "done":
                job.files_done += 1
                job.current = None
            else:
                return
            self._save(job)

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
            self._save(job)
            with self._lock:
                self._live.pop(job.id, None)
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
        """Keep each ingested file where the Documents page looks for it to re-ingest (last one wins);
        a file that failed never replaces the kept copy of the version still stored."""
        statuses = [f.status for f in job.report.files] if job.report is not None else []
        for index, f in enumerate(job.files):
            if f.staged is None or not f.staged.is_file():
                continue
            if index >= len(statuses) or statuses[index] == "failed":
                continue
            target = kept_path(service.settings.uploads_dir, job.collection, f.source)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(str(f.staged), target)
