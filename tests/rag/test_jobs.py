"""Upload jobs outlive the server: their state is in SQLite under RAG_HOME, a finished job answers after a
restart, and one the server left queued or running is reported as interrupted."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import httpx
import pytest

from rag.jobs import JobStore
from rag.schemas import JobOut
from tests.rag.conftest import serving, wait_for_job
from tests.rag.serve_process import RagServeProcess
from tests.rag.test_api import TURBINE, upload

pytestmark = pytest.mark.integration


def test_a_finished_job_answers_after_a_restart(api_home: Path) -> None:
    with serving() as api:
        job = wait_for_job(api, upload(api, "energy", ("turbine.txt", TURBINE.encode()), ("x.exe", b"MZ")).json())
        assert job["status"] == "done"
    assert (api_home / "logs" / "jobs.sqlite").is_file()
    with serving() as api:
        again = api.get(f"/api/v1/jobs/{job['id']}")
        assert again.status_code == 200
        assert again.json() == job  # the same files, results and times as before the restart
        assert [f["status"] for f in again.json()["report"]["files"]] == ["ingested", "failed"]


def test_a_job_left_running_by_a_stopped_server_is_reported_interrupted(api_home: Path) -> None:
    # What a server killed mid-job leaves behind: the job stored as running, its files staged.
    store = JobStore(api_home / "logs" / "jobs.sqlite")
    store.save(JobOut(id="cut-short", collection="energy", status="running", files_total=3, files_done=1,
                      current="b.txt", created_at="2026-01-01T00:00:00+00:00"))
    store.close()
    staged = api_home / "uploads" / ".jobs" / "cut-short" / "1"
    staged.mkdir(parents=True)
    (staged / "b.txt").write_text("left over")
    with serving() as api:
        job = api.get("/api/v1/jobs/cut-short").json()
        assert job["status"] == "interrupted" and job["current"] is None and job["finished_at"]
        assert job["error"].startswith("The server stopped before this job finished (1 of 3 files done)")
        assert not (api_home / "uploads" / ".jobs" / "cut-short").exists()  # the staged files are gone
        # A job of this run is stored too, and the interrupted one stays as it is.
        fresh = wait_for_job(api, upload(api, "energy", ("turbine.txt", TURBINE.encode())).json())
        assert fresh["status"] == "done"
        assert api.get("/api/v1/jobs/cut-short").json() == job


def test_the_store_keeps_the_last_jobs_and_never_a_running_one(tmp_path: Path) -> None:
    store = JobStore(tmp_path / "jobs.sqlite")
    for n in range(5):
        store.save(JobOut(id=f"j{n}", collection="c", status="running" if n == 0 else "done", files_total=1,
                          files_done=0, created_at="2026-01-01T00:00:00+00:00"))
    store.save(JobOut(id="j2", collection="c", status="failed", files_total=1, files_done=0, error="why",
                      created_at="2026-01-01T00:00:00+00:00"))  # an update keeps its place
    store.prune(2)
    assert [j for j in ("j0", "j1", "j2", "j3", "j4") if store.get(j) is not None] == ["j0", "j3", "j4"]
    assert store.interrupt_unfinished() == ["j0"]
    assert store.get("j0").status == "interrupted" and store.get("j3").status == "done"


@pytest.mark.slow
def test_a_job_cut_short_by_a_killed_server_is_interrupted_after_the_restart(tmp_path: Path) -> None:
    """`rag serve` killed (SIGKILL) while it ingests an upload; the next `rag serve` reports the job."""
    home = tmp_path / "home"
    samples = tmp_path / "no_samples"
    samples.mkdir()
    words = ("turbine blade gearbox wind power grid storage battery inverter cable tower rotor nacelle "
             "maintenance inspection crew schedule report").split()
    files = [(f"report-{n}.txt", " ".join(f"{words[(n + i) % len(words)]}{i % 97}" for i in range(6000)).encode())
             for n in range(40)]
    first = RagServeProcess(home, tmp_path / "first.log", RAG_SAMPLES_DIR=str(samples)).start()
    try:
        parts = [("files", (name, data, "text/plain")) for name, data in files]
        job = httpx.post(f"{first.url}/api/v1/collections/energy/documents", files=parts, timeout=60).json()
        deadline = time.monotonic() + 120
        while job["status"] == "queued" or job["files_done"] == 0:
            assert time.monotonic() < deadline and job["status"] in ("queued", "running"), job
            time.sleep(0.05)
            job = httpx.get(f"{first.url}/api/v1/jobs/{job['id']}", timeout=10).json()
        assert job["status"] == "running" and 0 < job["files_done"] < len(files), job
        os.kill(first.process.pid, signal.SIGKILL)
        first.process.wait(timeout=30)
    finally:
        first.stop()
    second = RagServeProcess(home, tmp_path / "second.log", RAG_SAMPLES_DIR=str(samples)).start()
    try:
        after = httpx.get(f"{second.url}/api/v1/jobs/{job['id']}", timeout=10).json()
    finally:
        second.stop()
    assert after["status"] == "interrupted", after
    assert after["files_done"] >= job["files_done"] and after["files_total"] == len(files)
    assert "upload the files again" in after["error"]
