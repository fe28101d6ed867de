"""What a citation card shows beside the text: the stored chunk's place in its document (page, character
span, file hash) and the document's original file, looked up by the stored name under RAG_HOME.

A file is only ever found from what the store says about the cited chunk: its collection and source
name, inside the uploads folder (or the shipped samples folder), and only when its hash is still the
one that was ingested. Nothing from a request names a path.
"""

from __future__ import annotations

import hashlib
import mimetypes
import threading
from dataclasses import dataclass
from pathlib import Path

from core.errors import RagError
from core.settings import Settings
from core.types import Citation
from rag.service import RagService
from rag.uploads import kept_path


@dataclass(frozen=True)
class CitedSource:
    """The stored facts about one cited chunk and where its document's original file is kept (None: not kept)."""

    collection: str
    document_id: str
    source: str
    file_name: str
    file_type: str
    sha256: str
    page: int
    start: int
    end: int
    text: str
    original: Path | None

    @property
    def is_pdf(self) -> bool:
        return self.file_type == "pdf" or self.file_name.lower().endswith(".pdf")

    @property
    def mime(self) -> str:
        return mimetypes.guess_type(self.file_name)[0] or "application/octet-stream"


def cited_source(service: RagService, collection: str, citation: Citation) -> CitedSource | None:
    """The stored chunk of a citation with its document's original file; None when the chunk is gone."""
    if not citation.chunk_id:
        return None
    try:
        found = service.store.retrieve(collection, [citation.chunk_id])
    except (RagError, ValueError):
        return None
    if not found:
        return None
    payload = found[0].payload
    source = str(payload.get("source") or payload.get("file_name") or "")
    sha256 = str(payload.get("sha256") or "")
    return CitedSource(
        collection=collection, document_id=str(payload.get("document_id", "")), source=source,
        file_name=str(payload.get("file_name") or Path(source).name), file_type=str(payload.get("file_type", "")),
        sha256=sha256, page=int(payload.get("page") or citation.page or 1), start=int(payload.get("start") or 0),
        end=int(payload.get("end") or 0), text=str(payload.get("text") or citation.text),
        original=original_file(service.settings, collection, source, sha256),
    )


def original_file(settings: Settings, collection: str, source: str, sha256: str) -> Path | None:
    """The kept original of a stored document: uploads/<collection>/<source>, else the samples folder's
    <source>, when its content still has the stored hash; None otherwise."""
    if not source or not sha256:
        return None
    candidates = []
    try:
        candidates.append(kept_path(settings.uploads_dir, collection, source))
    except ValueError:
        pass
    samples = Path(settings.samples_dir).resolve()
    in_samples = (samples / source).resolve()
    if samples in in_samples.parents:
        candidates.append(in_samples)
    for path in candidates:
        if path.is_file() and file_sha256(path) == sha256:
            return path
    return None


_hashes: dict[tuple[str, int, int], str] = {}
_hashes_lock = threading.Lock()


def file_sha256(path: Path) -> str:
    """A file's sha256, remembered per (path, size, modification time) so a card does not hash it again."""
    stat = path.stat()
    key = (str(path), stat.st_size, stat.st_mtime_ns)
    with _hashes_lock:
        known = _hashes.get(key)
    if known is not None:
        return known
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    value = digest.hexdigest()
    with _hashes_lock:
        _hashes[key] = value
    return value
