"""HTML files: the visible text only, blocks on their own lines, headings marked and written as
Markdown writes them ("## Steps"), list items with their markers, <pre> blocks fenced."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from bs4 import (
    BeautifulSoup,
    Comment,
    Declaration,
    Doctype,
    NavigableString,
    PageElement,
    ProcessingInstruction,
    Tag,
)
from bs4.element import CData

from core.errors import ReaderError
from core.types import HeadingMark, Page
from ingest.readers.base import HeadingTrail, ReadResult, mend_characters
from ingest.readers.text import decode_text

# Markup that a reader of the page does not see as content.
DROPPED_TAGS = frozenset(
    {
        "script",
        "style",
        "noscript",
        "template",
        "nav",
        "header",
        "footer",
        "aside",
        "svg",
        "form",
        "head",
        "iframe",
        "object",
        "canvas",
        "button",
        "select",
        "dialog",
    }
)
BLOCK_TAGS = frozenset(
    {
        "address",
        "article",
        "blockquote",
        "body",
        "caption",
        "dd",
        "details",
        "div",
        "dl",
        "dt",
        "fieldset",
        "figcaption",
        "figure",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "hr",
        "html",
        "li",
        "main",
        "ol",
        "p",
        "pre",
        "section",
        "summary",
        "table",
        "tbody",
        "thead",
        "tfoot",
        "tr",
        "ul",
    }
)
CELL_TAGS = frozenset({"td", "th"})
FENCE = "```"
HEADING_LEVELS = {f"h{n}": n for n in range(1, 7)}
_NOT_CONTENT = (Comment, Declaration, Doctype, ProcessingInstruction, CData)
_SPACES = re.compile(r"\s+")


def _visible_strings(tag: Tag) -> list[str]:
    """The text runs under `tag` that the reader walk would keep."""
    kept: list[str] = []
    for run in tag.find_all(string=True):
        if isinstance(run, _NOT_CONTENT):
            continue
        for parent in run.parents:
            if parent is tag:
                kept.append(str(run))
                break
            if parent.name in DROPPED_TAGS or parent.has_attr("hidden"):
                break
    return kept


def _start(ordered: Tag) -> int:
    """The number of an <ol>'s first item (its `start`, else 1)."""
    try:
        return int(str(ordered.get("start") or 1))
    except ValueError:
        return 1


class _TextBuilder:
    """Appends text runs, putting at most one separator (newline > tab > space) between them."""

    _RANK = {"": 0, " ": 1, "\t": 2, "\n": 3}

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.length = 0
        self._separator = ""
        self._heading: tuple[str, ...] | None = None
        self._marker = ""
        self.headings: list[HeadingMark] = []

    def separate(self, separator: str) -> None:
        """Ask for `separator` before the next text, unless a stronger one is already pending."""
        if self._RANK[separator] > self._RANK[self._separator]:
            self._separator = separator

    def heading(self, path: tuple[str, ...]) -> None:
        """Mark the next text emitted as the start of a heading."""
        self._heading = path

    def marker(self, marker: str) -> None:
        """Put a list item's marker ("- ", "3. ") before the next text emitted."""
        self._marker = marker

    def text(self, run: str, *, preformatted: bool = False) -> None:
        """Append a text run; whitespace is collapsed unless it is preformatted."""
        run = mend_characters(run)
        if not preformatted:
            if run[:1].isspace():
                self.separate(" ")
            trailing_space = run[-1:].isspace()
            run = _SPACES.sub(" ", run).strip()
        else:
            trailing_space = False
        if not run:
            return
        if self.length and self._separator:
            self._emit(self._separator)
        self._separator = " " if trailing_space else ""
        if self._heading is not None:
            self.headings.append(HeadingMark(offset=self.length, path=self._heading))
            self._heading = None
        if self._marker:
            self._emit(self._marker)
            self._marker = ""
        self._emit(run)

    def line(self, text: str) -> None:
        """A line of its own, such as the fence around a <pre> block's text."""
        self.separate("\n")
        if self.length:
            self._emit(self._separator)
        self._separator = ""
        self._emit(text)
        self.separate("\n")

    def _emit(self, piece: str) -> None:
        self.parts.append(piece)
        self.length += len(piece)

    def result(self) -> str:
        return "".join(self.parts)


class HtmlReader:
    """Reads an .html file as one page of visible text; the <title> becomes the document title."""

    def read(self, path: Path) -> list[Page]:
        """The visible text as page 1, with heading marks."""
        return self.load(path).pages

    def load(self, path: Path) -> ReadResult:
        """The visible text as page 1, the title, and the detected encoding."""
        markup, encoding = decode_text(Path(path).read_bytes(), path)
        soup = BeautifulSoup(markup, "lxml")
        if soup.find() is None:
            raise ReaderError(
                str(path), "no HTML markup found: check that the file is an HTML page"
            )
        title_tag = soup.find("title")
        title = _SPACES.sub(" ", title_tag.get_text()).strip() if title_tag else ""
        builder = _TextBuilder()
        self._walk(soup, builder, HeadingTrail(), preformatted=False)
        if not title and builder.headings:
            title = builder.headings[0].path[-1]
        return ReadResult(
            pages=[Page(number=1, text=builder.result(), headings=builder.headings)],
            title=title or None,
            metadata={"encoding": encoding},
        )

    def _walk(
        self, node: Tag, builder: _TextBuilder, trail: HeadingTrail, *, preformatted: bool
    ) -> None:
        """Visit the tree in document order with a stack of its own: markup nested thousands of
        levels deep must not exhaust Python's recursion limit."""
        # Each entry: an iterator over one element's children, whether it is inside <pre>, and the
        # separator to ask for once those children are done ("" for none).
        stack: list[tuple[Iterator[PageElement], bool, str]] = [(iter(node.children), preformatted, "")]
        numbered: dict[int, int] = {}  # id of an <ol> -> the number of its next item
        while stack:
            children, pre, closing = stack[-1]
            child = next(children, None)
            if child is None:
                stack.pop()
                if closing == FENCE:
                    builder.line(FENCE)
                elif closing:
                    builder.separate(closing)
                continue
            if isinstance(child, NavigableString):
                if not isinstance(child, _NOT_CONTENT):
                    builder.text(str(child), preformatted=pre)
                continue
            if not isinstance(child, Tag):
                continue
            name = child.name.lower()
            if name in DROPPED_TAGS or child.has_attr("hidden"):
                continue
            if name == "br":
                builder.separate("\n")
                continue
            separator = "\n" if name in BLOCK_TAGS else "\t" if name in CELL_TAGS else ""
            if separator:
                builder.separate(separator)
            if name == "li":  # a list's items keep their markers: "- Open Settings", "2. Choose Account"
                parent = child.parent
                if parent is not None and parent.name == "ol":
                    number = numbered.setdefault(id(parent), _start(parent))
                    numbered[id(parent)] = number + 1
                    builder.marker(f"{number}. ")
                else:
                    builder.marker("- ")
            if name in HEADING_LEVELS:
                heading_text = _SPACES.sub(" ", " ".join(_visible_strings(child))).strip()
                if heading_text:  # written as Markdown writes it, "## Delete your account": a heading, not a sentence
                    builder.heading(trail.enter(HEADING_LEVELS[name], heading_text))
                    builder.marker("#" * HEADING_LEVELS[name] + " ")
            fenced = name == "pre" and not pre and bool("".join(_visible_strings(child)).strip())
            if fenced:  # a <pre> block reads as fenced code: kept line by line, never joined to prose
                builder.line(FENCE)
            stack.append((iter(child.children), pre or name == "pre", FENCE if fenced else separator))
