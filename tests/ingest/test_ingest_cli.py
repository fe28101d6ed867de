"""`rag ingest`, `rag docs`, `rag collections` as a person uses them (real Qdrant Edge store)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rag.cli import app
from tests.conftest import SAMPLES

pytestmark = pytest.mark.integration

runner = CliRunner()


def rag(*args: str) -> tuple[int, dict]:
    result = runner.invoke(app, [*args, "--json"])
    try:
        data = json.loads(result.stdout.strip().splitlines()[-1])
    except (json.JSONDecodeError, IndexError):
        raise AssertionError(f"no JSON from rag {args}: {result.stdout!r} {result.exception!r}") from None
    return result.exit_code, data


@pytest.fixture
def corpus(tmp_path) -> Path:
    folder = tmp_path / "docs"
    folder.mkdir()
    for name in ("support-contact.txt", "warranty-faq.md", "firmware-release-notes.html"):
        shutil.copy(SAMPLES / "documents" / name, folder / name)
    return folder


def by_name(data: dict) -> dict[str, dict]:
    return {Path(f["path"]).name: f for f in data["files"]}


def test_ingest_twice_skips_unchanged(corpus):
    code, first = rag("ingest", str(corpus), "--collection", "t1")
    assert code == 0
    assert {f["status"] for f in first["files"]} == {"ingested"}
    assert first["chunks_added"] == sum(f["chunks"] for f in first["files"]) > 0
    assert set(first) >= {"files", "chunks_added", "seconds"}
    assert set(first["files"][0]) == {"path", "status", "pages", "chunks", "error"}

    code, second = rag("ingest", str(corpus), "--collection", "t1")
    assert code == 0
    assert {f["status"] for f in second["files"]} == {"skipped"}
    assert second["chunks_added"] == 0

    _, listing = rag("docs", "list", "--collection", "t1")
    docs = {d["source"]: d for d in listing["documents"]}
    assert set(docs) == {"support-contact.txt", "warranty-faq.md", "firmware-release-notes.html"}
    assert sum(d["chunks"] for d in docs.values()) == first["chunks_added"]
    assert all(d["chunker"] == "sentence" and d["ingested_at"] for d in docs.values())


def test_changed_file_replaces_only_its_chunks(corpus):
    from rag.service import RagService

    rag("ingest", str(corpus), "--collection", "t2")
    service = RagService()
    before = {p.id: p.payload["source"] for p in service.store.scroll("t2")}
    service.close()

    target = corpus / "support-contact.txt"
    target.write_text(target.read_text() + "\nNew: the support line now also answers on Sundays from 10:00 to 14:00.\n")
    code, data = rag("ingest", str(corpus), "--collection", "t2")
    assert code == 0
    statuses = {name: f["status"] for name, f in by_name(data).items()}
    assert statuses == {"support-contact.txt": "ingested", "warranty-faq.md": "skipped",
                        "firmware-release-notes.html": "skipped"}

    service = RagService()
    after = {p.id: (p.payload["source"], p.text) for p in service.store.scroll("t2")}
    service.close()
    unchanged_before = {i for i, s in before.items() if s != "support-contact.txt"}
    unchanged_after = {i for i, (s, _) in after.items() if s != "support-contact.txt"}
    assert unchanged_before == unchanged_after  # the other documents' points were not touched
    old_ids = {i for i, s in before.items() if s == "support-contact.txt"}
    new = {i: t for i, (s, t) in after.items() if s == "support-contact.txt"}
    assert not old_ids & set(new)  # every old chunk of the changed file is gone
    assert any("Sundays" in t for t in new.values())
    assert by_name(data)["support-contact.txt"]["chunks"] == len(new)


def test_delete_document_and_collections(corpus):
    rag("ingest", str(corpus), "--collection", "t3")
    code, data = rag("docs", "delete", "warranty-faq.md", "--collection", "t3")
    assert code == 0 and data["deleted_chunks"] > 0
    _, listing = rag("docs", "list", "--collection", "t3")
    assert "warranty-faq.md" not in {d["source"] for d in listing["documents"]}
    code, data = rag("docs", "delete", "warranty-faq.md", "--collection", "t3")
    assert code == 2 and "No document" in data["error"]

    code, _ = rag("collections", "create", "empty-one")
    assert code == 0
    _, cols = rag("collections", "list")
    counts = {c["name"]: (c["documents"], c["chunks"]) for c in cols["collections"]}
    assert counts["empty-one"] == (0, 0)
    assert counts["t3"][0] == 2 and counts["t3"][1] > 0
    code, _ = rag("collections", "delete", "empty-one")
    assert code == 0
    _, cols = rag("collections", "list")
    assert "empty-one" not in {c["name"] for c in cols["collections"]}
    code, data = rag("collections", "delete", "empty-one")
    assert code == 2 and "No collection" in data["error"]


def test_bad_files_fail_alone_and_keep_earlier_data(corpus, tmp_path, monkeypatch):
    from pypdf import PdfWriter

    rag("ingest", str(corpus), "--collection", "t4")
    _, before = rag("docs", "list", "--collection", "t4")

    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "corrupt.pdf").write_bytes(b"%PDF-1.7\n1 0 obj <<>> garbage garbage\n%%EOF")
    writer = PdfWriter()
    writer.add_blank_page(200, 200)
    writer.encrypt("secret")
    with open(bad / "locked.pdf", "wb") as fh:
        writer.write(fh)
    (bad / "empty.txt").write_bytes(b"")
    (bad / "binary.txt").write_bytes(bytes(range(256)) * 20)
    (bad / "sheet.xlsx").write_bytes(b"PK\x03\x04 not supported")
    (bad / "huge.txt").write_text("big text. " * 30_000)
    good = bad / "fine.md"
    good.write_text("# Fine\n\nThis file is fine and mentions the blue pelican.\n")

    monkeypatch.setenv("RAG_MAX_FILE_MB", "0.1")
    from core.settings import get_settings

    get_settings.cache_clear()
    paths = [str(p) for p in sorted(bad.iterdir())]
    code, data = rag("ingest", *paths, "--collection", "t4")
    assert code == 1
    files = by_name(data)
    assert files["fine.md"]["status"] == "ingested"
    errors = {name: f["error"] for name, f in files.items() if f["status"] == "failed"}
    assert set(errors) == {"corrupt.pdf", "locked.pdf", "empty.txt", "binary.txt", "sheet.xlsx", "huge.txt"}
    assert len(set(errors.values())) == len(errors)  # each failure has its own reason
    assert "encrypt" in errors["locked.pdf"].lower()
    assert "empty" in errors["empty.txt"].lower()
    assert "binary" in errors["binary.txt"].lower()
    assert ".pdf" in errors["sheet.xlsx"]  # names the supported types
    assert "limit" in errors["huge.txt"].lower() or "large" in errors["huge.txt"].lower()

    _, after = rag("docs", "list", "--collection", "t4")
    earlier = {d["source"]: d["chunks"] for d in before["documents"]}
    now = {d["source"]: d["chunks"] for d in after["documents"]}
    assert {k: now[k] for k in earlier} == earlier
    assert "fine.md" in now


def test_invalid_chunk_settings_are_refused(corpus):
    code, data = rag("ingest", str(corpus), "--collection", "t5", "--chunk-size", "50", "--chunk-overlap", "50")
    assert code == 2 and "overlap" in data["error"].lower()
    code, data = rag("ingest", str(corpus), "--collection", "t5", "--chunker", "magic")
    assert code == 2 and "sentence" in data["error"]
