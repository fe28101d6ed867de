"""A cited PDF page as a picture: the page rendered by PDFium, and where the cited passage sits on it.

The passage is found from PDFium's own characters: the page's characters are read one by one (each
index is a PDFium character index), the chunk's text is matched against them ignoring whitespace
(PDF line breaks and generated spaces differ between extractions), nearest to the chunk's stored
offset, and the matched characters' boxes are merged into one box per line. Boxes are fractions of
the rendered page, so they fit the picture at any display width.

PDFium is not thread-safe and the ingestion pipeline uses it too, so rendering and locating run in a
separate worker process (`PageRenderer.submit`); a page's picture is cached on disk per (document
hash, page, width), which makes reopening a card instant.
"""

from __future__ import annotations

import multiprocessing
import os
import re
import threading
from collections.abc import Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_WIDTH = 900  # pixels: a page of 10-12 pt text stays readable at this width
_DEVICE = 10_000  # device units per page side for PDFium's integer page-to-device mapping
_HASH = re.compile(r"^[0-9a-f]{16,128}$")


@dataclass(frozen=True)
class Box:
    """A rectangle on a rendered page, each side a fraction (0..1) of the page's width or height."""

    left: float
    top: float
    width: float
    height: float

    def overlaps(self, other: Box) -> bool:
        """True when the two rectangles share some area."""
        return (self.left < other.left + other.width and other.left < self.left + self.width
                and self.top < other.top + other.height and other.top < self.top + self.height)


@dataclass
class PageView:
    """A rendered page (PNG file) and the boxes of the cited passage and of its supporting sentence.

    `located` is False when the passage could not be found on the page (the card then shows text)."""

    image: Path
    width: int
    height: int
    passage: list[Box] = field(default_factory=list)
    sentence: list[Box] = field(default_factory=list)

    @property
    def located(self) -> bool:
        return bool(self.passage)


def page_image_path(cache_dir: Path, sha256: str, page: int, width: int) -> Path:
    """Where the picture of one page of one document version at one width is cached."""
    if not _HASH.match(sha256):
        raise ValueError(f"not a document hash: {sha256!r}")
    return Path(cache_dir) / "pages" / sha256 / f"p{int(page)}-w{int(width)}.png"


def render_page_view(pdf: str | Path, sha256: str, page: int, cache_dir: str | Path, width: int = DEFAULT_WIDTH,
                     passage: str = "", start: int = 0, sentence: str = "") -> PageView:
    """Render page `page` (1-based) of `pdf` at `width` pixels (cached) and locate `passage` on it
    (nearest to page-text offset `start`) and `sentence` inside the passage. Runs PDFium in this process:
    call it through `PageRenderer` from a server."""
    import pypdfium2 as pdfium

    target = page_image_path(Path(cache_dir), sha256, page, width)
    document = pdfium.PdfDocument(str(pdf))
    try:
        if not 1 <= page <= len(document):
            raise ValueError(f"page {page} is outside the document's {len(document)} pages")
        handle = document[page - 1]
        try:
            page_w, page_h = handle.get_size()
            scale = width / page_w
            if target.is_file():
                from PIL import Image

                with Image.open(target) as cached:
                    size = cached.size
            else:
                image = handle.render(scale=scale).to_pil()
                size = image.size
                target.parent.mkdir(parents=True, exist_ok=True)
                partial = target.with_name(f".{target.name}.{os.getpid()}.tmp")
                image.save(partial, format="PNG")  # optimize=True: 4-5x slower for 2 % fewer bytes
                partial.replace(target)  # atomic: a reader never sees half a picture
            passage_boxes, sentence_boxes = _locate(handle, passage, start, sentence)
        finally:
            handle.close()
    finally:
        document.close()
    return PageView(target, size[0], size[1], passage_boxes, sentence_boxes)


def _page_chars(textpage) -> list[str]:  # noqa: ANN001
    """The page's characters by PDFium index ("" for one PDFium reports as none)."""
    import pypdfium2.raw as pdfium_c

    chars = []
    for index in range(textpage.count_chars()):
        code = pdfium_c.FPDFText_GetUnicode(textpage, index)
        chars.append(chr(code) if 0 < code < 0x110000 and not 0xD800 <= code < 0xE000 else "")
    return chars


def _visible(chars: Sequence[str]) -> tuple[str, list[int]]:
    """The characters without whitespace, and each one's PDFium index."""
    kept = [(c, i) for i, c in enumerate(chars) if c and not c.isspace()]
    return "".join(c for c, _ in kept), [i for _, i in kept]


def _squeezed(text: str) -> str:
    return "".join(text.split())


def _find_nearest(haystack: str, needle: str, near: int) -> int:
    """The start of the occurrence of `needle` in `haystack` nearest to `near`, or -1."""
    best, at = -1, haystack.find(needle)
    while at >= 0:
        if best < 0 or abs(at - near) < abs(best - near):
            best = at
        at = haystack.find(needle, at + 1)
    return best


def _aligned(visible: str, wanted: str, min_block: int = 6, min_share: float = 0.6) -> tuple[int, int] | None:
    """Where a passage whose text differs a little from the page's characters (a table's cells joined
    differently, a ligature, OCR'd words) lies: the span of its matching blocks of at least `min_block`
    characters, when they cover `min_share` of it; None otherwise."""
    from difflib import SequenceMatcher

    matcher = SequenceMatcher(None, visible, wanted, autojunk=False)
    blocks = [b for b in matcher.get_matching_blocks() if b.size >= min_block]
    if not blocks or sum(b.size for b in blocks) < min_share * len(wanted):
        return None
    return blocks[0].a, blocks[-1].a + blocks[-1].size


def _locate(handle, passage: str, start: int, sentence: str) -> tuple[list[Box], list[Box]]:  # noqa: ANN001
    """Boxes of the passage and of the sentence on an open page; empty lists when not found."""
    wanted = _squeezed(passage)
    if not wanted:
        return [], []
    textpage = handle.get_textpage()
    try:
        chars = _page_chars(textpage)
        visible, indices = _visible(chars)
        # The stored offset counts whitespace; scale it to the squeezed text for the nearest match.
        near = int(start * len(visible) / max(len(chars), 1))
        at = _find_nearest(visible, wanted, near)
        span = (at, at + len(wanted)) if at >= 0 else _aligned(visible, wanted)
        if span is None:
            return [], []
        passage_chars = indices[span[0]:span[1]]
        sentence_chars: list[int] = []
        short = _squeezed(sentence)
        if short:
            inner = visible.find(short, span[0], span[1])
            if inner >= 0:
                sentence_chars = indices[inner:inner + len(short)]
        mapper = _PageMapper(handle)
        return (_line_boxes(textpage, passage_chars, mapper), _line_boxes(textpage, sentence_chars, mapper))
    finally:
        textpage.close()


class _PageMapper:
    """Page coordinates (points, origin bottom-left) to fractions of the rendered page (origin top-left),
    through PDFium's own mapping so that crop boxes and page rotation are honoured."""

    def __init__(self, handle) -> None:  # noqa: ANN001
        import ctypes

        import pypdfium2.raw as pdfium_c

        self._c, self._ctypes, self._handle = pdfium_c, ctypes, handle

    def __call__(self, x: float, y: float) -> tuple[float, float]:
        dx, dy = self._ctypes.c_int(), self._ctypes.c_int()
        self._c.FPDF_PageToDevice(self._handle, 0, 0, _DEVICE, _DEVICE, 0, x, y, dx, dy)
        return dx.value / _DEVICE, dy.value / _DEVICE


def _line_boxes(textpage, chars: list[int], mapper: _PageMapper) -> list[Box]:  # noqa: ANN001
    """One box per line of the given characters. Lines are found in page space, where text runs left
    to right (a page's /Rotate only turns the picture): a character joins the current line while it
    sits at the line's height and to the right of the line's start. Each line is then mapped onto
    the rendered picture."""
    lines: list[list[float]] = []  # [left, bottom, right, top] in page points
    for index in chars:
        left, bottom, right, top = textpage.get_charbox(index, loose=True)
        if right <= left or top <= bottom:
            continue
        if lines:
            line = lines[-1]
            middle = (bottom + top) / 2
            if line[1] <= middle <= line[3] and left >= line[0] - 0.5:
                line[0], line[1] = min(line[0], left), min(line[1], bottom)
                line[2], line[3] = max(line[2], right), max(line[3], top)
                continue
        lines.append([left, bottom, right, top])
    boxes = []
    for left, bottom, right, top in lines:
        (x0, y0), (x1, y1) = mapper(left, top), mapper(right, bottom)
        x0, x1, y0, y1 = min(x0, x1), max(x0, x1), min(y0, y1), max(y0, y1)
        boxes.append(Box(round(x0, 5), round(y0, 5), round(x1 - x0, 5), round(y1 - y0, 5)))
    return boxes


class PageRenderer:
    """Renders cited pages in one worker process, so PDFium never runs beside the ingestion's PDFium
    in this process and a page is rendered while the answer is already shown. One per process."""

    def __init__(self, cache_dir: Path, width: int = DEFAULT_WIDTH) -> None:
        self.cache_dir = Path(cache_dir)
        self.width = width
        self._pool: ProcessPoolExecutor | None = None
        self._lock = threading.Lock()
        self._pending: dict[tuple, Future] = {}

    def submit(self, pdf: Path, sha256: str, page: int, passage: str = "", start: int = 0,
               sentence: str = "", width: int | None = None) -> Future:
        """Start rendering and locating (or join the same request already started); the future's
        result is a PageView, or the error that stopped it."""
        key = (str(pdf), sha256, page, passage, start, sentence, width or self.width)
        with self._lock:
            running = self._pending.get(key)
            if running is not None and not running.done():
                return running
            args = (render_page_view, str(pdf), sha256, page, str(self.cache_dir), width or self.width,
                    passage, start, sentence)
            try:
                future = self._worker().submit(*args)
            except BrokenProcessPool:  # the worker died (a PDF that crashed PDFium): start another
                self._pool = None
                future = self._worker().submit(*args)
            self._pending = {k: f for k, f in self._pending.items() if not f.done()}
            self._pending[key] = future
        return future

    def _worker(self) -> ProcessPoolExecutor:
        if self._pool is None:
            # spawn: the worker starts clean, without this process's threads or open stores.
            self._pool = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"))
        return self._pool

    def close(self) -> None:
        """Stop the worker process."""
        with self._lock:
            if self._pool is not None:
                self._pool.shutdown(wait=True, cancel_futures=True)
                self._pool = None
