"""Uploaded files, as the Documents page and the API take them: one size limit and one message for a
file that is too large or of a type no reader takes, and where an upload is kept for re-ingesting."""

from __future__ import annotations

from pathlib import Path, PurePosixPath

from core.errors import ReaderError
from core.settings import Settings
from ingest.pipeline import normalise_source
from ingest.readers import file_type_of, size_limit_reason


def upload_limit_bytes(settings: Settings) -> int:
    """The per-file limit (RAG_MAX_FILE_MB) in bytes, as the ingestion pipeline applies it."""
    return int(settings.max_file_mb * 1024 * 1024)


def refusal(name: str, size: int, settings: Settings) -> str | None:
    """Why an upload is refused before ingestion (the reader's own words), or None when it is taken."""
    try:
        file_type_of(Path(name))
    except ReaderError as exc:
        return exc.reason
    return size_limit_reason(size, upload_limit_bytes(settings))


def safe_source(name: str) -> str | None:
    """An uploaded file's name as a source name: forward slashes, no empty, '.' or '..' parts and no
    leading '/'; None when nothing of it is left. Sub-folders stay (`rag ingest FOLDER` sends them)."""
    parts = [p for p in PurePosixPath(normalise_source(name.replace("\\", "/"))).parts
             if p not in ("/", ".", "..") and p.strip()]
    return "/".join(parts) or None


def kept_path(uploads_dir: Path, collection: str, source: str) -> Path:
    """Where an upload of `source` into `collection` is kept: uploads/<collection>/<source>."""
    folder = (uploads_dir / collection).resolve()
    target = (folder / source).resolve()
    # `source` comes from safe_source; this keeps even a crafted one inside the collection's folder.
    if folder not in target.parents:
        raise ValueError(f"upload name {source!r} leaves the uploads folder")
    return target


def save_upload(uploads_dir: Path, collection: str, name: str, data: bytes) -> Path:
    """Keep an uploaded file under uploads/<collection>/<base name> so it can be re-ingested later."""
    folder = uploads_dir / collection
    folder.mkdir(parents=True, exist_ok=True)
    # Only the base name: a browser-sent name must never climb out of the uploads folder.
    target = folder / Path(name.replace("\\", "/")).name
    target.write_bytes(data)
    return target
