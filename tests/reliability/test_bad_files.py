"""Bad files through the CLI, the API upload and the readers: each fails alone with its own clear
error or is read, the rest of the batch goes in, and what was stored before stays as it was."""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from core.errors import ReaderError
from ingest.readers import read_document
from rag.cli import app
from tests.conftest import REPO_ROOT, SAMPLES
from tests.reliability.bad_files import (
    FAIL,
    MANUAL,
    MAX_FILE_MB,
    READ,
    docx_bomb,
    stored_name,
    write_bad_files,
)

runner = CliRunner()


def rag(*args: str) -> tuple[int, dict]:
    result = runner.invoke(app, [*args, "--json"])
    try:
        return result.exit_code, json.loads(result.stdout.strip().splitlines()[-1])
    except (json.JSONDecodeError, IndexError):
        raise AssertionError(f"no JSON from rag {args}: {result.stdout!r} {result.exception!r}") from None


def stored_texts(collection: str) -> dict[str, str]:
    """Every stored document's chunk texts joined, by source name, read from the store itself."""
    from rag.service import RagService

    service = RagService()
    try:
        texts: dict[str, list[str]] = {}
        for chunk in service.store.scroll(collection):
            texts.setdefault(chunk.payload["source"], []).append(chunk.text)
        return {source: " ".join(" ".join(parts).split()) for source, parts in texts.items()}
    finally:
        service.close()


def check_outcomes(results: dict[str, dict], expected: dict, texts: dict[str, str]) -> None:
    """Each file failed with its own words or was read with its words in the store."""
    reasons = []
    for name, want in expected.items():
        result = results[name]
        if want.outcome == FAIL:
            assert result["status"] == "failed", f"{name!r} was {result['status']}, not failed"
            assert all(w.lower() in result["error"].lower() for w in want.words), f"{name!r}: {result['error']}"
            reasons.append(result["error"])
        else:
            assert result["status"] == "ingested", f"{name!r}: {result}"
            text = texts[stored_name(name)]
            assert all(" ".join(w.split()) in text for w in want.words), f"{name!r} lost words: {text[:300]}"
            assert not any(a in text for a in want.absent), f"{name!r} stored markup: {text[:300]}"
    assert len(set(reasons)) == len(reasons), "two files got the same error: each must name its own reason"


@pytest.mark.integration
def test_cli_batch_of_bad_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "batch"
    folder.mkdir()
    # Stored before: a good corrupt.pdf (the batch brings a broken one of the same name) and a note.
    shutil.copy(MANUAL, folder / "corrupt.pdf")
    shutil.copy(SAMPLES / "documents" / "support-contact.txt", folder / "support.txt")
    code, first = rag("ingest", str(folder), "--collection", "bad")
    assert code == 0 and {f["status"] for f in first["files"]} == {"ingested"}
    _, before = rag("docs", "list", "--collection", "bad")
    texts_before = stored_texts("bad")

    expected = write_bad_files(folder)
    (folder / "notes.xyz").write_text("a type no reader takes")
    monkeypatch.setenv("RAG_MAX_FILE_MB", MAX_FILE_MB)
    from core.settings import get_settings

    get_settings.cache_clear()
    code, data = rag("ingest", str(folder), "--collection", "bad")
    assert code == 1  # some failed
    results = {Path(f["path"]).name: f for f in data["files"]}
    assert results["notes.xyz"]["status"] == "skipped"
    assert "unsupported file type .xyz" in results["notes.xyz"]["error"]
    assert results["support.txt"]["status"] == "skipped" and results["support.txt"]["error"] is None
    texts = stored_texts("bad")
    check_outcomes(results, expected, texts)

    # What was stored before is unchanged: the good corrupt.pdf, its chunks and its hash.
    _, after = rag("docs", "list", "--collection", "bad")
    old = {d["source"]: d for d in before["documents"]}
    new = {d["source"]: d for d in after["documents"]}
    assert {k: new[k] for k in old} == old
    assert texts["corrupt.pdf"] == texts_before["corrupt.pdf"] and "9.2 kW" in texts["corrupt.pdf"]
    # Stored names hold no newline or right-to-left mark.
    assert "line break.txt" in new and "rtlmarktxt.md" in new
    assert not any(ch in name for name in new for ch in "\n\u200f\u202e")

    # The text output names each file on one line, markup and control characters escaped.
    shown = runner.invoke(app, ["ingest", str(folder), "--collection", "bad"]).stdout
    assert "skipped " in shown and "notes.xyz - unsupported file type .xyz" in " ".join(shown.split())
    squeezed = "".join(shown.split())  # rich wraps long lines at the terminal's width
    assert "line\\nbreak.txt" in squeezed and "rtl\\u200fmark\\u202etxt.md" in squeezed
    assert "\u200f" not in shown and "\u202e" not in shown


@pytest.mark.integration
def test_api_upload_batch_of_bad_files(api_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.rag.conftest import serving, wait_for_job

    monkeypatch.setenv("RAG_MAX_FILE_MB", MAX_FILE_MB)
    folder = tmp_path / "batch"
    expected = write_bad_files(folder)
    with serving() as api:
        first = wait_for_job(api, api.post("/api/v1/collections/bad/documents", files=[
            ("files", ("corrupt.pdf", MANUAL.read_bytes())),
            ("files", ("support.txt", (SAMPLES / "documents" / "support-contact.txt").read_bytes()))]).json())
        assert {f["status"] for f in first["report"]["files"]} == {"ingested"}
        before = api.get("/api/v1/collections/bad/documents").json()["documents"]

        uploads = [("files", (name, (folder / name).read_bytes())) for name in expected]
        uploads.append(("files", ("../../escape.txt", b"The climbing file names the osprey.")))
        response = api.post("/api/v1/collections/bad/documents", files=uploads)
        assert response.status_code == 202, response.text
        job = wait_for_job(api, response.json())
        assert job["status"] == "done", job
        results = {f["path"]: f for f in job["report"]["files"]}
        assert results["escape.txt"]["status"] == "ingested"
        # Names come back cleaned as the CLI cleans them (a newline, sent as %0A, becomes a space).
        assert "line break.txt" in results and "rtlmarktxt.md" in results
        by_original = {name: results[stored_name(name)] for name in expected}
        check_outcomes(by_original, expected, _texts_in_service("bad"))
        after = {d["source"]: d for d in api.get("/api/v1/collections/bad/documents").json()["documents"]}
        assert {d["source"]: after[d["source"]] for d in before} == {d["source"]: d for d in before}

    # Kept uploads: inside RAG_HOME/uploads/bad only, under cleaned names.
    kept = [p for p in (api_home / "uploads").rglob("*") if p.is_file()]
    assert kept and all(p.resolve().is_relative_to((api_home / "uploads" / "bad").resolve()) for p in kept)
    # A failed upload is not kept, and never replaces the kept copy of the version still stored.
    assert (api_home / "uploads" / "bad" / "corrupt.pdf").read_bytes() == MANUAL.read_bytes()
    assert not (api_home / "uploads" / "bad" / "bomb.docx").exists()
    assert not any(ch in p.name for p in kept for ch in "\n\u200f\u202e")
    assert not (api_home / "escape.txt").exists() and not (api_home / "uploads" / "escape.txt").exists()


def _texts_in_service(collection: str) -> dict[str, str]:
    """Stored chunk texts by source, read through the serving process's own service."""
    from rag.web import get_service

    texts: dict[str, list[str]] = {}
    for chunk in get_service().store.scroll(collection):
        texts.setdefault(chunk.payload["source"], []).append(chunk.text)
    return {source: " ".join(" ".join(parts).split()) for source, parts in texts.items()}


@pytest.mark.unit
def test_each_bad_file_by_itself(tmp_path: Path) -> None:
    """The readers' verdict on every file of the batch, alone (no store, no embedder)."""
    expected = write_bad_files(tmp_path)
    limit = int(float(MAX_FILE_MB) * 2**20)
    for name, want in expected.items():
        path = tmp_path / name
        if want.outcome == READ:
            text = " ".join(" ".join(page.text for page in read_document(path, max_bytes=limit).pages).split())
            assert all(w in text for w in want.words), (name, text[:200])
            assert not any(a in text for a in want.absent), (name, text[:200])
        else:
            with pytest.raises(ReaderError) as caught:
                read_document(path, max_bytes=limit)
            assert all(w.lower() in caught.value.reason.lower() for w in want.words), (name, caught.value.reason)


_READ_UNDER_LIMIT = """
import resource, sys
from pathlib import Path
limit = int(sys.argv[2]) * 2**20
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
from core.errors import ReaderError
from ingest.readers import read_document
try:
    read_document(Path(sys.argv[1]))
    print("read")
except ReaderError as exc:
    print("refused:", exc.reason)
# VmHWM: this process's own peak resident memory (ru_maxrss carries the parent's over exec).
peak_kb = next(line.split()[1] for line in open("/proc/self/status") if line.startswith("VmHWM:"))
print("peak_mb", int(peak_kb) // 1024)
"""


@pytest.mark.integration
@pytest.mark.parametrize("unpacked_mb, words", [(400, "too large when unpacked"), (60, "zip bomb")])
def test_docx_zip_bomb_is_refused_within_bounded_memory(tmp_path: Path, unpacked_mb: int, words: str) -> None:
    """A .docx of a few hundred KB that unpacks to hundreds of MB, read by a process whose address
    space is capped at 600 MB: refused, with little memory used (unguarded, python-docx runs out)."""
    bomb = tmp_path / "bomb.docx"
    docx_bomb(bomb, unpacked_mb)
    assert bomb.stat().st_size < 2**20
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    cap_mb = 600
    if soft != resource.RLIM_INFINITY and soft < cap_mb * 2**20:
        pytest.skip("this process already runs under a smaller address-space limit")
    done = subprocess.run([sys.executable, "-c", _READ_UNDER_LIMIT, str(bomb), str(cap_mb)], capture_output=True,
                          text=True, timeout=120, cwd=REPO_ROOT, env={**os.environ, "PYTHONPATH": str(REPO_ROOT)})
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.splitlines()
    assert lines[0].startswith("refused:") and words in lines[0], done.stdout
    assert int(lines[1].split()[1]) < 200, f"peak memory {lines[1]}: the bomb was unpacked"


@pytest.mark.integration
def test_upload_limits_are_the_servers_own(api_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Files per upload, size per file and types are checked by the server, whatever a client sends."""
    from rag.api import MAX_FILES
    from tests.rag.conftest import serving

    monkeypatch.setenv("RAG_MAX_FILE_MB", "0.01")
    with serving() as api:
        too_many = [("files", (f"n{i}.txt", b"x")) for i in range(MAX_FILES + 1)]
        response = api.post("/api/v1/collections/limits/documents", files=too_many)
        # Refused whole, as a problem: by the form parser's own cap (400) or the API's (413).
        assert response.status_code in (400, 413) and str(MAX_FILES) in response.json()["detail"]
        big = api.post("/api/v1/collections/limits/documents", files=[("files", ("big.txt", b"x" * 20_000))])
        assert big.status_code == 413 and "file too large" in big.json()["files"][0]["error"]
        typed = api.post("/api/v1/collections/limits/documents", files=[("files", ("run.exe", b"MZ"))])
        assert typed.status_code == 415
        assert api.get("/api/v1/collections").json()["collections"] == []  # nothing was taken
    assert not any(p.is_file() for p in (api_home / "uploads").rglob("*"))


@pytest.mark.integration
def test_documents_page_upload_of_bad_files(rag_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The same batch through the Documents page's uploader: each file its own row and reason."""
    from streamlit.testing.v1 import AppTest

    from rag.web import get_service
    from tests.web.conftest import APP_FILE, clear_streamlit_caches

    samples = tmp_path / "no_samples"
    samples.mkdir()
    monkeypatch.setenv("RAG_SAMPLES_DIR", str(samples))
    monkeypatch.setenv("RAG_MAX_FILE_MB", MAX_FILE_MB)
    clear_streamlit_caches()
    try:
        service = get_service()
        folder = tmp_path / "batch"
        expected = write_bad_files(folder)
        kept_good = service.settings.uploads_dir / "samples" / "corrupt.pdf"
        kept_good.parent.mkdir(parents=True)
        shutil.copy(MANUAL, kept_good)
        service.ingest([kept_good], "samples")  # stored and kept before: a good corrupt.pdf
        before = {d.source: (d.sha256, d.chunks) for d in service.list_documents("samples")}

        at = AppTest.from_file(str(APP_FILE), default_timeout=300)
        at.switch_page("pages/documents.py").run()
        at.file_uploader[0].set_value([(name, (folder / name).read_bytes(), "application/octet-stream")
                                       for name in expected])
        [ingest] = [b for b in at.button if b.label == "Ingest"]
        ingest.click().run()
        assert not at.exception, at.exception
        [table] = [d.value for d in at.dataframe if "result" in d.value.columns]
        rows = {row["file"]: row for row in table.to_dict("records")}
        results = {name: {"status": "ingested" if rows[stored_name(name)]["result"] == "ingested" else "failed",
                          "error": rows[stored_name(name)]["reason"]} for name in expected}
        texts: dict[str, list[str]] = {}
        for chunk in service.store.scroll("samples"):
            texts.setdefault(chunk.payload["source"], []).append(chunk.text)
        check_outcomes(results, expected, {s: " ".join(" ".join(t).split()) for s, t in texts.items()})
        after = {d.source: (d.sha256, d.chunks) for d in service.list_documents("samples")}
        assert {s: after[s] for s in before} == before
        kept = [p for p in service.settings.uploads_dir.rglob("*") if p.is_file()]
        assert not any(ch in p.name for p in kept for ch in "\n\u200f\u202e")
        assert kept_good.read_bytes() == MANUAL.read_bytes()  # the broken upload did not replace it
        assert not (service.settings.uploads_dir / "samples" / "bomb.docx").exists()  # failed: not kept
    finally:
        clear_streamlit_caches()


@pytest.mark.integration
def test_a_folders_unsupported_files_are_listed_the_same_through_a_server(api_home: Path, tmp_path: Path) -> None:
    """`rag ingest FOLDER` lists the files no reader takes as skipped, with the reason, whether it
    opens the store itself or uploads to a running server (the CLI as a client)."""
    from core.settings import Settings
    from rag.client import RemoteService
    from rag.service import RagService
    from tests.rag.conftest import serving

    folder = tmp_path / "mixed"
    (folder / "sub").mkdir(parents=True)
    (folder / "notes.md").write_text("# Notes\n\nThe osprey nests by the river.\n")
    (folder / "notes.xyz").write_text("no reader takes this")
    (folder / "sub" / "table.csv").write_text("a,b\n1,2\n")
    (folder / ".hidden").write_text("never listed")

    def summary(report) -> list[tuple[str, str, str | None]]:  # noqa: ANN001
        return sorted((Path(f.path).name, f.status, f.error) for f in report.files)

    direct = RagService()
    try:
        here = summary(direct.ingest([folder], "direct"))
    finally:
        direct.close()
    with serving() as api:
        remote = RemoteService("http://testserver", Settings())
        remote._http = api  # the app's own test client: the same HTTP calls, in process
        there = summary(remote.ingest([folder], "remote"))
    assert here == there
    assert [(name, status) for name, status, _ in here] == [
        ("notes.md", "ingested"), ("notes.xyz", "skipped"), ("table.csv", "skipped")]
    reasons = {name: error for name, _, error in here}
    assert reasons["notes.xyz"].startswith("unsupported file type .xyz") and ".md" in reasons["notes.xyz"]
    assert reasons["table.csv"].startswith("unsupported file type .csv")
