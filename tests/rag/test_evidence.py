"""A card's original file is found by the stored source name under RAG_HOME (or the samples folder),
only while it still has the ingested hash; `[n]` markers become links to their cards."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from core.settings import Settings
from rag.evidence import original_file
from rag.web import linked_answer_markdown, source_anchor

pytestmark = pytest.mark.unit


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_original_is_found_by_name_and_hash_inside_its_folders(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home", samples_dir=tmp_path / "samples")
    upload = settings.uploads_dir / "samples" / "report.pdf"
    upload.parent.mkdir(parents=True)
    upload.write_bytes(b"%PDF-1.4 first")
    (tmp_path / "samples").mkdir()
    (tmp_path / "samples" / "guide.txt").write_bytes(b"a guide")
    (tmp_path / "secret.txt").write_bytes(b"not yours")

    assert original_file(settings, "samples", "report.pdf", _sha(b"%PDF-1.4 first")) == upload.resolve()
    assert original_file(settings, "samples", "guide.txt", _sha(b"a guide")) == (tmp_path / "samples" / "guide.txt")
    # Another collection's folder, a climbing name or a stale hash finds nothing.
    assert original_file(settings, "manuals", "report.pdf", _sha(b"%PDF-1.4 first")) is None
    assert original_file(settings, "samples", "../secret.txt", _sha(b"not yours")) is None
    assert original_file(settings, "samples", "../../secret.txt", _sha(b"not yours")) is None
    assert original_file(settings, "samples", "report.pdf", _sha(b"an older version")) is None
    upload.write_bytes(b"%PDF-1.4 changed since")
    assert original_file(settings, "samples", "report.pdf", _sha(b"%PDF-1.4 first")) is None
    assert original_file(settings, "samples", "", "") is None


def test_markers_link_to_their_cards() -> None:
    text = "It makes 4.2 MW [1]. Blades [1, 2] and a stray [7]. Literal *stars*."
    linked = linked_answer_markdown(text, "c1-0", {1, 2})
    one, two = source_anchor("c1-0", 1), source_anchor("c1-0", 2)
    assert linked.count(f"[1](#{one})") == 2 and f"[2](#{two})" in linked
    assert "\\[7\\]" in linked and "#source-c1-0-7" not in linked  # no card, no link
    assert "\\*stars\\*" in linked  # the rest stays escaped text
    assert linked_answer_markdown("No markers here.", 0, {1}) == "No markers here\\."
