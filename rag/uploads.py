"""Uploaded files, as the Documents page and the API take them: one size limit and one message for a
file that is too large or of a type no reader takes, and where an upload is kept for re-ingesting."""

from __future__ import annotations

import unicodedata
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


def clean_name(name: str) -> str:
    """A file name as it may be shown and stored: control characters (a newline, a tab) become one
    space, format characters (right-to-left marks and overrides, zero-width ones) are dropped, so a
    name can neither break a line of output nor display as something it is not."""
    kept = []
    for ch in name:
        category = unicodedata.category(ch)
        if category == "Cc":
            kept.append(" ")
        elif category != "Cf":
            kept.append(ch)
    return "".join(kept).strip()


# Browsers and httpx send a multipart file name with these three characters percent-encoded (the
# HTML form encoding); the server undoes it so an upload is named as `rag ingest` names the file.
_FORM_ESCAPES = {"%0A": "\n", "%0D": "\r", "%22": '"'}


def _form_decoded(name: str) -> str:
    for escape, char in _FORM_ESCAPES.items():
        name = name.replace(escape, char)
    return name


def safe_source(name: str) -> str | None:
    """An uploaded file's name as a source name: forward slashes, no empty, '.' or '..' parts and no
    leading '/', no control or format characters (clean_name); None when nothing of it is left.
    Sub-folders stay (`rag ingest FOLDER` sends them)."""
    name = _form_decoded(name)
    parts = [clean_name(p) for p in PurePosixPath(normalise_source(name.replace("\\", "/"))).parts
             if p not in ("/", ".", "..")]
    parts = [p for p in parts if p and p not in (".", "..")]
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
    # Only the base name, cleaned: a browser-sent name must never climb out of the uploads folder.
    base = clean_name(PurePosixPath(name.replace("\\", "/")).name)
    if base in ("", ".", ".."):
        raise ValueError(f"no usable file name in {name!r}")
    target = folder / base
    target.write_bytes(data)
    return target
