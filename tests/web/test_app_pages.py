"""Each page of the web app renders without an exception, empty and with documents."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

PAGES = ["pages/documents.py", "pages/evaluation.py", "pages/monitoring.py", "pages/chat.py"]


def _texts(at) -> str:  # noqa: ANN001
    """Every message, caption and markdown text the run produced, joined, markdown escapes removed."""
    parts = [e.value for kind in ("info", "warning", "error", "success", "caption", "markdown")
             for e in getattr(at, kind)]
    return re.sub(r"\\(.)", r"\1", "\n".join(str(p) for p in parts))


@pytest.mark.integration
def test_every_page_renders_on_a_fresh_home(app) -> None:  # noqa: ANN001
    at = app.run()
    assert not at.exception, at.exception
    assert "no collection yet" in _texts(at).lower()
    assert at.chat_input[0].disabled  # nothing to ask yet
    for page in PAGES:
        at.switch_page(page).run()
        assert not at.exception, (page, at.exception)
        assert not at.error, (page, [e.value for e in at.error])


@pytest.mark.integration
def test_empty_collection_says_so_and_pages_still_render(app, service) -> None:  # noqa: ANN001
    service.create_collection("empty")
    at = app.run()
    assert not at.exception, at.exception
    assert at.sidebar.selectbox(key="collection_choice").value == "empty"
    assert "has no documents yet" in _texts(at)
    assert at.chat_input[0].disabled
    at.switch_page("pages/documents.py").run()
    assert not at.exception
    assert "no documents yet" in _texts(at)


@pytest.mark.integration
def test_documents_page_lists_ingested_files_and_deletes_one(app, service, tmp_path: Path) -> None:  # noqa: ANN001
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "alpha.txt").write_text("Alpha notes. The alpha valve opens at noon every day.\n")
    (folder / "beta.md").write_text("# Beta\n\nThe beta pump runs on solar power during summer.\n")
    report = service.ingest([folder], "work")
    assert [f.status for f in report.files] == ["ingested", "ingested"]

    at = app.switch_page("pages/documents.py").run()
    assert not at.exception, at.exception
    [table] = [d.value for d in at.dataframe if "ingested at" in d.value.columns]
    assert sorted(table["name"]) == ["alpha.txt", "beta.md"]
    assert list(table["chunks"]) == [d.chunks for d in service.list_documents("work")]

    at.selectbox(key="delete_doc").set_value("alpha.txt")
    at.button(key="delete_doc_button").click().run()
    assert not at.exception, at.exception
    assert [d.source for d in service.list_documents("work")] == ["beta.md"]
    assert "Deleted alpha.txt" in _texts(at)


@pytest.mark.integration
def test_collections_are_created_and_deleted_from_the_page(app, service) -> None:  # noqa: ANN001
    at = app.switch_page("pages/documents.py").run()
    at.text_input[0].input("reports")
    [create] = [b for b in at.button if b.label == "Create collection"]
    create.click().run()
    assert not at.exception, at.exception
    assert "reports" in [c.name for c in service.list_collections()]
    assert at.sidebar.selectbox(key="collection_choice").value == "reports"

    at.checkbox(key="confirm_delete_collection").check().run()
    [delete] = [b for b in at.button if b.label == "Delete collection"]
    delete.click().run()
    assert not at.exception, at.exception
    assert "reports" not in [c.name for c in service.list_collections()]


@pytest.mark.integration
def test_reingest_with_another_chunker_changes_the_stored_chunker(app, service, tmp_path: Path) -> None:  # noqa: ANN001
    uploads = service.settings.uploads_dir / "work"
    uploads.mkdir(parents=True)
    path = uploads / "gamma.txt"
    path.write_text(" ".join(f"Sentence number {i} talks about the gamma ray detector." for i in range(60)))
    service.ingest([path], "work", service.chunking_options("sentence", 200, 20), sources={path: "gamma.txt"})

    at = app.switch_page("pages/documents.py").run()
    at.selectbox(key="reingest_chunker").set_value("fixed")
    at.number_input(key="reingest_size").set_value(64)
    at.number_input(key="reingest_overlap").set_value(8)
    at.button(key="reingest_button").click().run()
    assert not at.exception, at.exception
    [doc] = service.list_documents("work")
    assert doc.chunker == "fixed"
    assert any("fixed chunker" in s.value for s in at.success)


@pytest.mark.integration
def test_upload_reports_each_file_ingested_failed_or_unchanged(app, service) -> None:  # noqa: ANN001
    good = ("notes.txt", b"The lighthouse keeper logs the weather every evening at six.", "text/plain")
    broken = ("broken.pdf", b"this is not a PDF at all", "application/pdf")
    at = app.switch_page("pages/documents.py").run()
    at.file_uploader[0].set_value([good, broken])
    [ingest] = [b for b in at.button if b.label == "Ingest"]
    ingest.click().run()
    assert not at.exception, at.exception
    [results] = [d.value for d in at.dataframe if "result" in d.value.columns]
    by_file = results.set_index("file")
    assert by_file.loc["notes.txt", "result"] == "ingested"
    assert by_file.loc["notes.txt", "chunks"] >= 1
    assert by_file.loc["broken.pdf", "result"] == "failed"
    assert by_file.loc["broken.pdf", "reason"]  # the reader's reason is shown
    assert "1 ingested · 0 skipped (unchanged) · 1 failed" in _texts(at)

    at.file_uploader[0].set_value([good])
    [ingest] = [b for b in at.button if b.label == "Ingest"]
    ingest.click().run()
    [results] = [d.value for d in at.dataframe if "result" in d.value.columns]
    assert list(results["result"]) == ["skipped (unchanged)"]
    assert [d.source for d in service.list_documents("samples")] == ["notes.txt"]
