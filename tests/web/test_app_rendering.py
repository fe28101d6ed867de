"""Document text is escaped before Streamlit sees it: markdown and HTML in documents stay literal."""

from __future__ import annotations

import html
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rag.web import escape_markdown, highlighted_html


def _unescape_markdown(text: str) -> str:
    """What CommonMark shows for backslash escapes and the hard line breaks the app adds."""
    return re.sub(r"\\([!-/:-@\[-`{-~])", r"\1", text.replace("  \n", "\n"))


@pytest.mark.unit
@given(st.text())
def test_escaped_markdown_shows_the_original_text(text: str) -> None:
    escaped = escape_markdown(text)
    assert _unescape_markdown(escaped) == text
    # No markdown or HTML control character is left unescaped.
    assert not re.search(r"(?<!\\)[<>*_`\[\]$:]", escaped.replace("\\\\", ""))


@pytest.mark.unit
def test_script_and_tags_in_a_chunk_stay_text() -> None:
    chunk = 'Code <b>XYZ</b> <script>alert(1)</script> <img src=x onerror="a()">.'
    body = highlighted_html(chunk, "Code <b>XYZ</b>")
    inner = re.sub(r"^<div[^>]*>|</div>$", "", body)
    assert "<script" not in inner and "<img" not in inner and "<b>" not in inner
    # Only our own <mark> tag remains once the escaped text is removed.
    assert re.findall(r"<(/?\w+)", inner) == ["mark", "/mark"]
    assert html.unescape(re.sub(r"</?mark[^>]*>", "", inner)) == chunk


@pytest.mark.unit
def test_supporting_sentence_is_found_in_markdown_as_written() -> None:
    chunk = "Starred docs live in **[My Shortcuts](https://coda.io/shortcuts)**. Pin docs for *everyone*."
    body = highlighted_html(chunk, "Starred docs live in My Shortcuts.")  # quoted as read (core/markup.py)
    marked = re.search(r"<mark[^>]*>(.*?)</mark>", body, re.S)
    assert marked is not None and html.unescape(marked.group(1)) == "Starred docs live in **[My Shortcuts"


@pytest.mark.unit
def test_supporting_sentence_is_found_across_line_breaks() -> None:
    chunk = "Intro. The turbine produces 4.2 megawatts at twelve metres\nper second. Outro."
    body = highlighted_html(chunk, "The turbine produces 4.2 megawatts at twelve metres per second.")
    marked = re.search(r"<mark[^>]*>(.*?)</mark>", body, re.S)
    assert marked is not None
    assert marked.group(1) == "The turbine produces 4.2 megawatts at twelve metres\nper second."


@pytest.mark.unit
def test_no_highlight_when_the_sentence_is_absent() -> None:
    assert "<mark" not in highlighted_html("Some text.", "Another sentence.")
    assert "<mark" not in highlighted_html("Some text.", "")


def test_a_pdf_line_end_hyphen_shows_as_a_hyphen():
    chunk = "Expenses for stock\x02based compensation rose. Other text."
    body = highlighted_html(chunk, "Expenses for stock\x02based compensation rose.")
    assert "\x02" not in body
    assert '<mark class="rag-support">Expenses for stock-based compensation rose.</mark>' in body
