"""Documents: upload files into a collection, see and manage what it holds, manage collections."""

from __future__ import annotations

import math
import shutil
import tempfile
from pathlib import Path
from typing import Any

import streamlit as st

from ingest.readers import SUPPORTED_EXTENSIONS
from rag.uploads import kept_path, refusal, save_upload
from rag.web import escape_markdown, get_service, show_error, sidebar

CHUNKERS = ("sentence", "fixed", "recursive", "semantic")
STATUS_LABELS = {"ingested": "ingested", "skipped": "skipped (unchanged)", "failed": "failed"}


def supported_extensions() -> list[str]:
    """The file types the readers accept, without dots."""
    return [ext.lstrip(".") for ext in SUPPORTED_EXTENSIONS]


class IngestProgress:
    """Turns the pipeline's progress events into one bar per file and one overall bar."""

    def __init__(self, paths: list[Path]) -> None:
        self.overall = st.progress(0.0, text=f"0 of {len(paths)} files done")
        self.bars = {str(p): st.progress(0.0, text=f"{escape_markdown(p.name)}: waiting") for p in paths}
        self.total = len(paths)
        self.done = 0

    def __call__(self, event: dict[str, Any]) -> None:
        bar = self.bars.get(event.get("file", ""))
        name = escape_markdown(Path(event.get("file", "")).name)
        kind = event.get("event")
        if kind == "start" and bar is not None:
            bar.progress(0.3, text=f"{name}: reading, chunking and embedding...")
        elif kind == "stage" and bar is not None and "fraction" in event:
            bar.progress(min(max(float(event["fraction"]), 0.0), 1.0), text=f"{name}: {event.get('stage', '')}")
        elif kind == "done":
            self.done += 1
            status = STATUS_LABELS[event["result"].status]
            if bar is not None:
                bar.progress(1.0, text=f"{name}: {status}")
            self.overall.progress(self.done / max(self.total, 1), text=f"{self.done} of {self.total} files done")


def ingest_uploads(collection: str, files: list[Any], chunker: str, chunk_size: int, overlap: int) -> bool:
    """Save the uploads, ingest them with progress, keep the per-file results; False when ingestion failed."""
    service = get_service()
    rows: list[dict[str, Any]] = []
    saved: dict[Path, str] = {}
    # Uploads wait in a folder of their own; only the ones read become the kept copies (a broken
    # upload must not replace the kept file of a version still stored).
    staging = Path(tempfile.mkdtemp(prefix="uploads-", dir=service.settings.cache_dir))
    try:
        for upload in files:
            # The API's upload refuses the same files with the same words (rag/uploads.py).
            refused = refusal(upload.name, upload.size, service.settings)
            if refused:
                rows.append(_row(upload.name, "failed", error=refused))
                continue
            path = save_upload(staging, str(len(saved)), upload.name, upload.getvalue())
            saved[path] = path.name
        if saved:
            try:
                options = service.chunking_options(chunker, chunk_size, overlap)
                report = service.ingest(list(saved), collection, options, progress=IngestProgress(list(saved)),
                                        sources=saved)
            except Exception as exc:
                show_error(exc)
                return False
            for result in report.files:
                source = saved.get(Path(result.path), Path(result.path).name)
                rows.append(_row(source, result.status, result.pages, result.chunks, result.error))
                if result.status != "failed":
                    kept = kept_path(service.settings.uploads_dir, collection, source)
                    kept.parent.mkdir(parents=True, exist_ok=True)
                    shutil.move(result.path, kept)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    st.session_state["ingest_results"] = {"collection": collection, "rows": rows}
    return True


def _row(name: str, status: str, pages: int = 0, chunks: int = 0, error: str | None = None) -> dict[str, Any]:
    return {"file": name, "result": STATUS_LABELS.get(status, status), "pages": pages,
            "chunks": chunks, "reason": error or ""}


def source_file(collection: str, source: str) -> Path | None:
    """Where a stored document's file is kept: the saved upload, else the samples folder."""
    settings = get_service().settings
    for candidate in (settings.uploads_dir / collection / source, settings.samples_dir / source):
        if candidate.is_file():
            return candidate
    return None


def reingest(collection: str, source: str, chunker: str, chunk_size: int, overlap: int) -> None:
    """Chunk one stored document again with other settings, from its kept file."""
    path = source_file(collection, source)
    if path is None:
        st.error(f"The original file of {escape_markdown(source)} is not kept here: upload it again "
                 "with the chunker you want.")
        return
    service = get_service()
    try:
        options = service.chunking_options(chunker, chunk_size, overlap)
        report = service.ingest([path], collection, options, sources={path: source})
    except Exception as exc:
        show_error(exc)
        return
    result = report.files[0] if report.files else None
    if result is not None and result.status == "failed":
        st.error(f"Re-ingesting {escape_markdown(source)} failed: {escape_markdown(result.error or '')}")
    elif result is not None:
        st.success(f"{escape_markdown(source)}: {STATUS_LABELS[result.status]}, {result.chunks} chunks "
                   f"with the {chunker} chunker.")


def chunking_inputs(prefix: str) -> tuple[str, int, int]:
    """Chunker, chunk size and overlap widgets, defaulting from the settings."""
    settings = get_service().settings
    left, middle, right = st.columns(3)
    index = CHUNKERS.index(settings.chunker) if settings.chunker in CHUNKERS else 0
    chunker = left.selectbox("Chunking strategy", CHUNKERS, index=index, key=f"{prefix}_chunker",
                             help="sentence: whole sentences up to the size; fixed: token windows; "
                                  "recursive: small chunks searched, larger parents given as context; "
                                  "semantic: splits where the topic changes")
    size = middle.number_input("Chunk size (tokens)", min_value=32, max_value=2048, value=settings.chunk_size,
                               step=16, key=f"{prefix}_size",
                               help="The embedder reads at most 256 word pieces: larger chunks are partly invisible.")
    overlap = right.number_input("Overlap (tokens)", min_value=0, max_value=512, value=settings.chunk_overlap,
                                 step=5, key=f"{prefix}_overlap")
    return chunker, int(size), int(overlap)


def upload_section(collection: str) -> None:
    """The upload form and the results of the last upload."""
    settings = get_service().settings
    extensions = supported_extensions()
    st.subheader("Upload")
    with st.form("upload", clear_on_submit=True):
        files = st.file_uploader(
            f"Files ({', '.join(extensions)}; at most {settings.max_file_mb:g} MB each)",
            type=extensions, accept_multiple_files=True, max_upload_size=math.ceil(settings.max_file_mb),
        )
        chunker, size, overlap = chunking_inputs("upload")
        submitted = st.form_submit_button("Ingest", type="primary", icon=":material/upload:")
    if submitted:
        if not files:
            st.warning("Choose one or more files first.")
        elif overlap >= size:
            st.error("The overlap must be smaller than the chunk size.")
        elif ingest_uploads(collection, files, chunker, size, overlap):
            # Run again so the sidebar counts and the document table include the new files.
            st.rerun()
    last = st.session_state.get("ingest_results")
    if last and last["rows"]:
        rows = last["rows"]
        counts = {label: sum(1 for r in rows if r["result"] == label) for label in STATUS_LABELS.values()}
        st.caption(f"Last upload into '{escape_markdown(last['collection'])}': "
                   + " · ".join(f"{n} {label}" for label, n in counts.items()))
        st.dataframe(rows, hide_index=True, key="ingest_results_table")


def documents_section(collection: str) -> None:
    """The collection's documents with delete and re-ingest."""
    service = get_service()
    st.subheader(f"Documents in '{collection}'")
    try:
        docs = service.list_documents(collection)
    except Exception as exc:
        show_error(exc)
        return
    if not docs:
        st.info("This collection has no documents yet: upload some above.")
        return
    st.dataframe(
        [{"name": d.source, "type": d.file_type, "pages": d.pages, "chunks": d.chunks, "chunker": d.chunker,
          "chunk size": d.chunker_settings.get("chunk_size", ""), "ingested at": d.ingested_at} for d in docs],
        hide_index=True, key="documents_table",
    )
    names = [d.source for d in docs]
    with st.expander("Delete a document"):
        name = st.selectbox("Document", names, key="delete_doc")
        if st.button("Delete document", key="delete_doc_button", icon=":material/delete:"):
            try:
                removed = service.delete_document(collection, name)
                st.session_state["flash"] = f"Deleted {name} ({removed} chunks)."
                st.rerun()
            except Exception as exc:
                show_error(exc)
    with st.expander("Re-ingest a document with another chunker"):
        name = st.selectbox("Document", names, key="reingest_doc")
        chunker, size, overlap = chunking_inputs("reingest")
        if st.button("Re-ingest", key="reingest_button", icon=":material/refresh:"):
            if overlap >= size:
                st.error("The overlap must be smaller than the chunk size.")
            else:
                with st.spinner(f"Re-ingesting {name}..."):
                    reingest(collection, name, chunker, size, overlap)


def collections_section(collection: str | None) -> None:
    """Create a collection; delete the chosen one."""
    service = get_service()
    st.subheader("Collections")
    left, right = st.columns(2)
    with left.form("create_collection", clear_on_submit=True):
        name = st.text_input("New collection name", max_chars=64)
        if st.form_submit_button("Create collection", icon=":material/add:"):
            name = name.strip()
            if not name:
                st.warning("Type a name first.")
            else:
                try:
                    service.create_collection(name)
                    st.session_state["collection"] = name
                    st.session_state["flash"] = f"Created collection {name}."
                    st.rerun()
                except Exception as exc:
                    show_error(exc)
    if collection:
        with right.container(border=True):
            st.write(f"Delete the collection **{escape_markdown(collection)}** and everything in it.")
            sure = st.checkbox("Yes, delete it", key="confirm_delete_collection")
            if st.button("Delete collection", disabled=not sure, icon=":material/delete_forever:"):
                try:
                    service.delete_collection(collection)
                    st.session_state.pop("collection", None)
                    st.session_state["flash"] = f"Deleted collection {collection}."
                    st.rerun()
                except Exception as exc:
                    show_error(exc)


choices = sidebar()
st.title("Documents")
flash = st.session_state.pop("flash", None)
if flash:
    st.success(escape_markdown(flash))
# With no collection yet, uploads go to the default one, which the pipeline creates.
upload_section(choices.collection or get_service().settings.default_collection)
if choices.collection is not None:
    documents_section(choices.collection)
collections_section(choices.collection)
