"""Citation check: every [n] must name a given source, and every answer sentence must be
supported by the source(s) it cites.

Also home of the text evidence both the check and the extractive answerer use: sentence
splitting that copes with PDF line wraps and table rows, content terms, and cached
sentence embeddings.
"""

from __future__ import annotations

import re
import threading
import weakref
from collections import OrderedDict
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from core.citations import MARKER
from core.language import (
    WORD,
    code_term,
    full_form,
    sentence_tokenizer,
    spelled_out,
    stemmer,
    stopwords,
)
from core.markup import SETEXT_UNDERLINE, THEMATIC_BREAK, readable, setext_level
from core.settings import get_settings
from core.types import Answer, Citation, ScoredChunk

# An answer sentence is supported when SUPPORT_EMBED_WEIGHT * cosine to the best sentence of a
# cited chunk + (1 - weight) * share of its content terms found in that chunk (numbers count
# double, and missing numbers cut the score) reaches SUPPORT_THRESHOLD. Chosen on the sample set
# (the 21 answerable questions of data/questions.jsonl, each against the chunk that holds its
# answer, default ingestion): the gold sentence scores 0.91-1.0 and the bare gold answer
# ("R290 (propane)") 0.61-1.0; another question's gold sentence cited against the chunk scores
# 0-0.27, and the gold sentence with every digit changed 0.26-0.46. 0.5 lies in the gap.
SUPPORT_EMBED_WEIGHT = 0.5
SUPPORT_THRESHOLD = 0.5
MISSING_NUMBER_PENALTY = 0.5  # all of a claim's numbers missing from the chunk halves its support
# A claim of at least this many words that its chunk holds word for word (case and punctuation
# aside) is a quote: fully supported, no embedding needed. Extractive answers are made of quotes,
# and embedding every sentence of the cited chunks was most of their check's time.
QUOTE_MIN_WORDS = 4
NUMBER_WEIGHT = 2.0  # a wrong or invented number is the costliest error: its terms count double

_LEADING_MARKERS = re.compile(r"^(?:\s*\[\d+(?:\s*,\s*\d+)*\])+")
_TOKEN = WORD
_POSSESSIVE = re.compile(r"['’]s$", re.IGNORECASE)
TERMINAL = (".", "!", "?", ":", ";")
_WRAPPED_LINE_CHARS = 50  # a line this long that ends mid-sentence was wrapped by the page layout
LABEL_WORDS = 3  # a line this short without punctuation is a table label: read it with the next
_FENCE = re.compile(r"^\s*(```|~~~)")
# Markdown's block markers: headings, bullets, quotes, and admonitions ("!!! note", ":::tip").
_MARKUP_PREFIX = re.compile(r"^\s*(?:#{1,6}\s+|[-*+]\s+|>\s*|:{3,}\s*|!{3}\s*|\?{3}\+?\s*)")
_MARKDOWN_IMAGE = re.compile(r"!\[[^\[\]\n]*\]\([^()\n]*\)")  # "![Billing settings](images/billing.png)"
# A line wholly in bold: Markdown's FAQ question or pseudo-heading ("**Can I return an item?**",
# "**Step 1: Install**") unless it ends a statement ("**Back up your data first.**" is a sentence).
_BOLD_LINE = re.compile(r"^\s*(\*\*|__)(?=\S)((?:(?!\1).)+?)(?<=\S)\1\s*$")
_LINK_DEFINITION = re.compile(r"^ {0,3}\[[^\[\]\n]+\]:\s*\S+")
_MARKDOWN_HEADING = re.compile(r"^\s*#{1,6}\s+\S")
_NUMBERED_ITEM = re.compile(r"^\s*\d{1,2}[.)]\s+\S")  # "1. Open ...", "2) Click ..."
_BULLET_ITEM = re.compile(r"^\s*[-*+•▪◦‣●]\s+\S")  # "- Open ...", "• Click ..."
_NUMBERED_HEADING = re.compile(r"^\d+(?:\.\d+)*\.?\s+[A-Z][^.!?:;]{0,60}$")  # "3.1 Placement"


# -- text -----------------------------------------------------------------------------------


def _punkt() -> Any:
    return sentence_tokenizer()


# Words that only shape a question ("how much", "what does X mean", "return something"): never evidence.
_QUESTION_WORDS = frozenset(
    "much many long often kind sort mean means meaning something anything thing things according".split()
)


@lru_cache(maxsize=1)
def _stopwords() -> frozenset[str]:
    return stopwords(get_settings().language) | _QUESTION_WORDS


@lru_cache(maxsize=1)
def _stemmer() -> Any:
    return stemmer(get_settings().language)


def warm_up() -> None:
    """Load what answers read text with (sentence splitter, stopwords, stemmer, token counter)
    now instead of on the first question: seconds the first person to ask would wait."""
    from core.tokens import get_encoding

    _punkt()
    _stopwords()
    _stemmer()
    get_encoding()


def _clean_line(line: str) -> str:
    """A line without its Markdown block marker ("## ", "- ", "> ") and images: a picture is no
    sentence, and neither is a link's definition ("[docs]: https://example.com/docs") or a rule
    ("---"). A line wholly in bold loses its markers: it is a heading ("**How long does delivery
    take?**"). Inline markup reads as its text (`readable`: "[use pinning](https://...)" is "use
    pinning")."""
    if "![" in line:
        line = _MARKDOWN_IMAGE.sub(" ", line)
    if _LINK_DEFINITION.match(line) or THEMATIC_BREAK.match(line):
        return ""
    bold = _BOLD_LINE.match(line)
    if bold:
        line = bold.group(2)
    return " ".join(readable(_MARKUP_PREFIX.sub("", line)).split())


# A table row as PDF text gives it: a label, then figures ("Total net sales 117,154 123,945",
# "Effective tax rate 15.7 % 10.8 %"). Dates ("December 31, 2022") and years are headers, not rows.
_FIGURE = re.compile(r"^[$€£¥]?\(?[-+]?[$€£¥]?\d[\d,]*(?:\.\d+)?%?\)?%?$|^[$€£¥%)—–-]$")
_UNIT = re.compile(r"^(?:°[CF]|[°µ]?[A-Za-z]{1,3}(?:\([A-Z]\))?)$")  # "kW", "dB(A)", "°C", "mm"
_YEAR_OR_DAY = re.compile(r"^(?:(?:19|20)\d\d|\d{1,2},)$")
_PIPE_ROW = re.compile(r"^\s*\|.*\|\s*$")
_PIPE_RULE = re.compile(r"^[\s|:\-+]+$")
_HEADER_LINES = 5  # a table's column header: at most this many short lines above its first row
_HEADER_WORDS = 25


def pipe_row(text: str) -> bool:
    """Whether a line is a Markdown table row ("| Team | $29/month | 10 |")."""
    return bool(_PIPE_ROW.match(text))


def figure_row(line: str) -> bool:
    """Whether a line is a table row of a label followed by figures ("Net income $ 29,998 $ 34,630")."""
    tokens = line.split()
    end = len(tokens)
    if end > 2 and _UNIT.match(tokens[-1]) and any(ch.isdigit() for ch in tokens[-2]):
        end -= 1  # "Rated heating capacity 9.2 kW": the unit follows the figure
    while end > 0 and _FIGURE.match(tokens[end - 1]):
        end -= 1
    figures = [t for t in tokens[end:] if any(ch.isdigit() for ch in t) and _FIGURE.match(t)]
    label = " ".join(tokens[:end])
    return (
        bool(figures)
        and any(ch.isalpha() for ch in label)
        and "|" not in label
        and not label.endswith((".", "!", "?"))
        and not all(_YEAR_OR_DAY.match(t) for t in figures)
    )


_SENTENCE_END_INSIDE = re.compile(r"[.!?;](?=\s)")
_LABEL_WORDS = 12  # a row's label that wraps ("Income before provision for income taxes and") is short


def _prose(text: str) -> bool:
    """Whether a block a line continues is prose: a sentence ends inside it, or it is longer than a
    row's label. "... a batch size of 128. The index" then "of 21 million passages takes 18 GB,
    against 72 GB" is a sentence wrapped by the layout, not a table row ending in figures."""
    return len(text.split()) > _LABEL_WORDS or bool(_SENTENCE_END_INSIDE.search(text))


def _name_line(line: str) -> bool:
    """A line of one or two capitalised words without punctuation ("Abstract", "References"): a
    heading under a long title line, not the end of a sentence the page wrapped (a paragraph's last
    line ends with its full stop)."""
    words = line.split()
    return len(words) <= 2 and words[0][:1].isupper() and not line.endswith(TERMINAL) and not figure_row(line)


def _full_width(line: str) -> bool:
    return len(line) >= _WRAPPED_LINE_CHARS and not (line.startswith("(") and line.endswith(")"))


def _list_items(lines: list[str]) -> set[int]:
    """Positions of list items: a numbered or bulleted line whose nearest non-blank neighbour is
    one of the same kind ("1. Open the sign-in page", "2. Click Forgot password"; "- Open
    Settings", "- Choose Account"). A numbered line alone between prose is a section heading
    ("3.1 Placement"). Each item stays one unit: a bullet is never the wrapped end of the line
    above it."""
    filled = [i for i, line in enumerate(lines) if line.strip()]
    items: set[int] = set()
    for pattern in (_NUMBERED_ITEM, _BULLET_ITEM):
        marked = [bool(pattern.match(line)) for line in lines]
        items.update(
            i for k, i in enumerate(filled)
            if marked[i] and ((k > 0 and marked[filled[k - 1]]) or (k + 1 < len(filled) and marked[filled[k + 1]]))
        )
    return items


def _kind(raw: str, line: str, item: bool = False) -> str:
    if item:
        return "item"
    if _MARKDOWN_HEADING.match(raw) or _NUMBERED_HEADING.match(line) or (
            _BOLD_LINE.match(raw) and not line.endswith((".", "!"))):
        return "heading"
    if "\t" in raw.strip() or _PIPE_ROW.match(raw) or figure_row(line):
        return "row"
    return "text"


def _lines(text: str) -> list[tuple[str, str]]:
    """(line, kind) with the lines the page layout wrapped joined again; kind is "text", "item" (a
    numbered or bulleted list's step), "heading", "row" (a table row: tab- or pipe-separated, or a
    label with figures) or "code" (a line of a fenced code block)."""
    blocks: list[tuple[str, str]] = []
    in_fence = False
    last = ""  # the previous line as the page gave it (a block may hold several)
    raw_lines = text.splitlines()
    items = _list_items(raw_lines)
    for position, raw in enumerate(raw_lines):
        if _FENCE.match(raw):
            in_fence = not in_fence
            blocks.append(("", "text"))
            continue
        if in_fence:  # a line of code as written: never joined, split or read as markup
            blocks.append((" ".join(raw.split()), "code"))
            continue
        line, previous_line, last = _clean_line(raw), last, _clean_line(raw)
        if _PIPE_RULE.match(raw) and "-" in raw and "|" in raw:
            continue  # the |---|---| line under a Markdown table's header
        if blocks and position and setext_level(raw, raw_lines[position - 1]) and blocks[-1][1] in ("text", "heading"):
            blocks[-1] = (blocks[-1][0], "heading")  # "Can I star docs for everyone?" over "-----"
            continue
        if SETEXT_UNDERLINE.match(raw):
            blocks.append(("", "text"))  # a rule under a blank line, a list or a long paragraph
            continue
        if not line:
            blocks.append(("", "text"))
            continue
        kind = _kind(raw, line, position in items)
        previous, previous_kind = blocks[-1] if blocks else ("", "text")
        # Headings and rows stand alone; other lines ending mid-sentence continue on the next
        # line when it starts in lower case or, unless it is a row, when the line before filled
        # the page width (a whole parenthesis, "(In millions)", is complete). A PDF row whose label wrapped ("Income before provision for income taxes and",
        # "equity income 35,623 41,241") is joined by the lower-case rule and stays a row.
        tabbed = "\t" in raw.strip() or bool(_PIPE_ROW.match(raw))
        wrapped = (
            previous
            and previous_kind in ("text", "item")
            and kind not in ("heading", "item")
            and not tabbed
            and not previous.endswith(TERMINAL)
            # a list item goes on in lower case or indented: "- Open the page" then "To check it:" is prose
            and (line[0].islower() or (kind == "text" and _full_width(previous_line) and not _name_line(line)
                                       and (previous_kind == "text" or raw[:1].isspace())))
        )
        if wrapped:
            joined = f"{previous} {line}"
            blocks[-1] = (joined, previous_kind if previous_kind == "item"
                          else "row" if kind == "row" and figure_row(joined) and not _prose(previous) else "text")
        else:
            blocks.append((line, kind))
    return [(b, k) for b, k in blocks if b]


def _sentences(text: str) -> list[tuple[str, str]]:
    """(sentence, kind): text blocks split into sentences; headings and rows kept whole."""
    result: list[tuple[str, str]] = []
    for block, kind in _lines(text):
        if kind != "text":
            result.append((block, kind))
            continue
        result.extend((s, kind) for s in prose_sentences(block))
    return result


# A question or exclamation inside a sentence ('select **Forgot password?** and enter your email',
# 'click "Why am I seeing this?" to learn more'): punkt ends the sentence at its "?", and the rest
# ("** and enter your email.") was read and quoted as a sentence of its own. A "?" or "!" followed
# by a word wholly in lower case ends no sentence ("mRNA", "p53" may start one).
_ENDS_INSIDE = re.compile(r"[?!][*_`\"'”’)\]]*$")
_GOES_ON = re.compile(r"[*_`\"'”’)\]]*\s*[a-z]+(?=[\s,;:.!?]|$)")


def prose_sentences(text: str) -> list[str]:
    """The sentences of one line of prose, as an answer's sentences are read (rows not kept whole)."""
    spans: list[list[int]] = []
    for start, end in _punkt().span_tokenize(text):
        if spans and _ENDS_INSIDE.search(text[spans[-1][0]:spans[-1][1]]) and _GOES_ON.match(text[start:end]):
            spans[-1][1] = end
        else:
            spans.append([start, end])
    return [s for s in (text[a:b].strip() for a, b in spans) if s]


def split_sentences(text: str) -> list[str]:
    """The sentences of a text: PDF line wraps joined, table rows and headings kept apart."""
    return [s for s, _ in _sentences(text)]


@dataclass(frozen=True)
class TextUnit:
    """One sentence, heading or table row of a text, in reading order. A row's `header` holds
    the positions of the units that head it: the table's column header and its group label."""

    text: str
    kind: str = "text"  # "text", "item" (a numbered or bulleted step), "heading", "row" or "code"
    header: tuple[int, ...] = ()

    @property
    def words(self) -> int:
        return len(self.text.split())


def plain_label(text: str, kind: str) -> bool:
    """A short line that is neither a sentence nor a row: a column header or a group label."""
    return kind == "text" and len(text.split()) <= 8 and not text.endswith((".", "!", "?", ";"))


# Texts read once per process: the same chunks come back for related questions, and reading a
# chunk (sentences, rows, stemmed words) cost about as much as embedding its sentences in int8.
TEXT_CACHE = 8192


def text_units(text: str) -> list[TextUnit]:
    """The text's sentences, headings and table rows in order, each row with its header.

    A tab- or pipe-separated row's header is the first row of its table. A PDF row's header is
    the run of short lines just above its table ("Three Months Ended", "December 31,", "2022"),
    plus the nearest group label within the table ("Net sales:").
    """
    return list(_text_units(text))


@lru_cache(maxsize=TEXT_CACHE)
def _text_units(text: str) -> tuple[TextUnit, ...]:
    sentences = _sentences(text)
    units: list[TextUnit] = []
    for i, (sentence, kind) in enumerate(sentences):
        if kind != "row":
            units.append(TextUnit(sentence, kind))
            continue
        start = i
        group: int | None = None
        while start > 0:
            before, before_kind = sentences[start - 1]
            if before_kind == "row" or _PIPE_RULE.match(before):
                start -= 1
            elif before.endswith(":") and plain_label(before, before_kind):
                group = start - 1 if group is None else group
                start -= 1
            else:
                break
        header: list[int] = []
        if _PIPE_ROW.match(sentence) or "|" in sentence[:1]:
            header = [start] if start < i else []
        elif start < i and sentences[start][1] == "row" and not figure_row(sentences[start][0]):
            header = [start]  # a tab-separated table: its first row names the columns
        else:
            words = 0
            k = start - 1
            while k >= 0 and len(header) < _HEADER_LINES and plain_label(*sentences[k]):
                words += len(sentences[k][0].split())
                if words > _HEADER_WORDS:
                    break
                header.insert(0, k)
                k -= 1
        if group is not None and group not in header:
            header.append(group)
        units.append(TextUnit(sentence, kind, tuple(sorted(header))))
    return tuple(units)


@lru_cache(maxsize=TEXT_CACHE)
def marked_headings(text: str) -> frozenset[str]:
    """The headings a text marks as such, as its units read them: Markdown's "## Steps" and
    underlined headings (and HTML's and Word's, which their readers write so) and FAQ questions
    wholly in bold; a numbered line
    ("3.1 Placement") is a heading by its look only."""
    if "#" not in text and "**" not in text and "__" not in text and "==" not in text and "--" not in text:
        return frozenset()
    found = set()
    lines = text.splitlines()
    for line, below in zip(lines, lines[1:] + [""], strict=True):
        if setext_level(below, line):
            found.add(_clean_line(line))
        elif _MARKDOWN_HEADING.match(line) or _BOLD_LINE.match(line):
            title = _clean_line(line)
            if _kind(line, title) == "heading":
                found.add(title)
    return frozenset(found)


def evidence_units(text: str, headings: bool = True) -> list[str]:
    """Sentences (headings too unless `headings=False`), plus table labels read with their value.

    Tables come out of PDFs as a label on one line and its value on the next ("E07",
    "High compressor discharge temperature"): neither answers alone, the pair does.
    """
    sentences = _sentences(text)
    units = [s for s, kind in sentences if headings or kind != "heading"]
    for (label, label_kind), (value, value_kind) in zip(sentences, sentences[1:], strict=False):
        is_label = len(label.split()) <= LABEL_WORDS and not label.endswith(TERMINAL)
        if is_label and "heading" not in (label_kind, value_kind) and not value.endswith(TERMINAL):
            units.append(f"{label} {value}")
    return units


def _normalise(token: str) -> str:
    if any(ch.isdigit() for ch in token):
        return code_term(token)  # "AHP-9" and "AHP9" are one model name, "10-Qs" are 10-Qs
    return _normalised(token.lower().replace("’", "'"), get_settings().language)


@lru_cache(maxsize=65536)
def _normalised(token: str, language: str) -> str:  # stemming: most of the answer step's non-model time
    return _stemmer().stem(full_form(token, language))


def content_terms(text: str) -> list[str]:
    """Normalised words of a text without stopwords; hyphenated words also give their parts."""
    return list(_content_terms(text, get_settings().language))


@lru_cache(maxsize=TEXT_CACHE)
def _content_terms(text: str, language: str) -> tuple[str, ...]:
    terms: list[str] = []
    stop = _stopwords()
    for token in _TOKEN.findall(spelled_out(text, language)):
        token = _POSSESSIVE.sub("", token)  # "AHP-9's" is "AHP-9"
        lowered = token.lower()
        if lowered in stop:
            continue
        terms.append(_normalise(token))
        if "-" in token and not any(ch.isdigit() for ch in token):
            terms.extend(_normalise(p) for p in token.split("-") if p.lower() not in stop)
    return tuple(terms)


def key_terms(text: str) -> set[str]:
    """Terms holding a digit (model names, codes, versions, amounts, years): they must match."""
    return {t for t in content_terms(text) if any(ch.isdigit() for ch in t)}


def weighted_containment(
    terms: list[str], pool: set[str], idf: dict[str, float] | None = None, best_of: int | None = None
) -> float:
    """Share of `terms` found in `pool`, each term weighted by its `idf` (default 1); terms
    with digits weigh NUMBER_WEIGHT times more. With `best_of`, the share is of the weight of
    the `best_of` heaviest terms (capped at 1): holding that much is holding all."""
    unique = set(terms)
    if not unique:
        return 0.0
    weight = {
        t: (idf.get(t, 1.0) if idf else 1.0) * (NUMBER_WEIGHT if any(ch.isdigit() for ch in t) else 1.0)
        for t in unique
    }
    total = sum(sorted(weight.values(), reverse=True)[:best_of]) if best_of else sum(weight.values())
    found = sum(weight[t] for t in unique if t in pool)
    return min(found / total, 1.0) if total else 0.0


def strip_markers(text: str) -> str:
    """The text without its [n] citation markers."""
    return " ".join(MARKER.sub("", text).split())


# -- embeddings -----------------------------------------------------------------------------


class SentenceVectors:
    """Embeddings of short texts, cached per embedder: the answerer and the check embed the
    same source sentences, and the same chunks come back for similar questions."""

    def __init__(self, max_entries: int = 20_000) -> None:
        self.max_entries = max_entries
        self._caches: weakref.WeakKeyDictionary[Any, OrderedDict[str, np.ndarray]] = weakref.WeakKeyDictionary()
        self._lock = threading.Lock()

    def embed(self, embedder: Any, texts: list[str]) -> np.ndarray:
        """One normalised row per text, in order."""
        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        with self._lock:
            try:
                cache = self._caches.setdefault(embedder, OrderedDict())
            except TypeError:  # an embedder that cannot be weakly referenced: no cache
                cache = OrderedDict()
            missing = list(dict.fromkeys(t for t in texts if t not in cache))
        if missing:
            vectors = np.asarray(embedder.embed(missing), dtype=np.float32)
            with self._lock:
                for text, vector in zip(missing, vectors, strict=True):
                    cache[text] = vector
                while len(cache) > self.max_entries:
                    cache.popitem(last=False)
        with self._lock:
            rows = [cache[t] if t in cache else None for t in texts]
        if any(r is None for r in rows):  # evicted meanwhile by another thread: embed again
            return np.asarray(embedder.embed(texts), dtype=np.float32)
        return np.stack(rows)  # type: ignore[arg-type]


SENTENCE_VECTORS = SentenceVectors()


# -- the check ------------------------------------------------------------------------------


@dataclass
class ChunkEvidence:
    """A source's sentences, their vectors and its content terms."""

    sentences: list[str]
    vectors: np.ndarray
    terms: set[str]


@dataclass
class ClaimSupport:
    """How well one cited chunk supports one answer sentence."""

    score: float
    sentence: str


def chunk_evidence(chunk: ScoredChunk, embedder: Any) -> ChunkEvidence:
    """Sentences of a chunk with their (cached) embeddings."""
    sentences = evidence_units(chunk.text) or [chunk.text.strip() or " "]
    return ChunkEvidence(sentences, SENTENCE_VECTORS.embed(embedder, sentences), set(content_terms(chunk.text)))


def claim_support(claim: str, claim_vector: np.ndarray, evidence: ChunkEvidence) -> ClaimSupport:
    """Support of one claim by one chunk: cosine to its best sentence mixed with term containment."""
    similarities = evidence.vectors @ claim_vector
    best = int(np.argmax(similarities))
    cosine = max(float(similarities[best]), 0.0)
    terms = content_terms(claim)
    containment = weighted_containment(terms, evidence.terms)
    score = SUPPORT_EMBED_WEIGHT * cosine + (1 - SUPPORT_EMBED_WEIGHT) * containment
    numbers = {t for t in terms if any(ch.isdigit() for ch in t)}
    if numbers:
        # A number the chunk does not hold is an invented fact, however similar the wording.
        score *= 1 - MISSING_NUMBER_PENALTY * len(numbers - evidence.terms) / len(numbers)
    return ClaimSupport(round(min(score, 1.0), 4), evidence.sentences[best])


def answer_sentences(text: str) -> list[tuple[str, list[int]]]:
    """Each sentence of an answer with the source numbers it cites.

    A marker written after the full stop ("... R290. [1]") belongs to the sentence before it.
    """
    pieces: list[str] = []
    for sentence in split_sentences(text):
        leading = _LEADING_MARKERS.match(sentence)
        if leading and pieces:
            pieces[-1] = f"{pieces[-1]} {leading.group(0).strip()}"
            sentence = sentence[leading.end():].strip()
        if sentence:
            pieces.append(sentence)
    result = []
    for piece in pieces:
        numbers = [int(n) for group in MARKER.findall(piece) for n in re.split(r"\s*,\s*", group)]
        result.append((piece, list(dict.fromkeys(numbers))))
    return result


def _drop_markers(text: str, missing: set[int]) -> str:
    def keep(match: re.Match[str]) -> str:
        numbers = [n for n in re.split(r"\s*,\s*", match.group(1)) if int(n) not in missing]
        return f"[{', '.join(numbers)}]" if numbers else ""

    cleaned = MARKER.sub(keep, text)
    return re.sub(r"[ \t]+([.,;:!?])", r"\1", re.sub(r"[ \t]{2,}", " ", cleaned)).strip()


def _citation_for(n: int, chunk: ScoredChunk) -> Citation:
    return Citation(
        n=n, chunk_id=chunk.id, document=chunk.document, page=chunk.page, text=chunk.text,
        score=chunk.score, document_id=chunk.document_id,
    )


_WORD = re.compile(r"[^\W_]+")


def _word_string(text: str) -> str:
    return " " + " ".join(_WORD.findall(text.lower())) + " "


class _Support:
    """Support of claims by chunks, computed when asked: a quote needs no model; otherwise the
    chunk's sentences and the claim are embedded (once each)."""

    def __init__(self, claims: list[tuple[str, list[int]]], chunks: dict[int, ScoredChunk], embedder: Any) -> None:
        self.claims = [claim for claim, _ in claims]
        self.chunks = chunks
        self.embedder = embedder
        self._words = {n: _word_string(chunk.text) for n, chunk in chunks.items()}
        self._evidence: dict[int, ChunkEvidence] = {}
        self._vectors: np.ndarray | None = None

    def quotes(self, text: str, n: int) -> bool:
        """Whether chunk `n` holds `text` word for word (at least QUOTE_MIN_WORDS words) and some
        claim quotes it."""
        words = _word_string(text)
        return (len(words.split()) >= QUOTE_MIN_WORDS and words in self._words[n]
                and any(words in _word_string(claim) for claim in self.claims))

    def of(self, index: int, n: int) -> ClaimSupport:
        claim = self.claims[index]
        words = _word_string(claim)
        if len(words.split()) >= QUOTE_MIN_WORDS and words in self._words[n]:
            return ClaimSupport(1.0, claim)
        if n not in self._evidence:
            self._evidence[n] = chunk_evidence(self.chunks[n], self.embedder)
        if self._vectors is None:
            self._vectors = SENTENCE_VECTORS.embed(self.embedder, self.claims)
        return claim_support(claim, self._vectors[index], self._evidence[n])


def verify(
    answer: Answer, sources: list[ScoredChunk], embedder: Any, threshold: float = SUPPORT_THRESHOLD
) -> Answer:
    """Check an answer's citations against its numbered sources (source [n] is sources[n-1]).

    Citations and markers naming a missing source are removed, with a warning. Each answer
    sentence is scored against the chunk(s) it cites (a sentence without a marker against all
    the cited chunks); those below `threshold` go to `unsupported_sentences`. Each citation
    gets its best supporting sentence and support. `grounded` is True when at least one
    citation is supported. Abstained answers are returned as they are.
    """
    if answer.abstained:
        answer.grounded = True
        return answer
    count = len(sources)
    sentences = answer_sentences(answer.text)
    cited_in_text = [n for _, numbers in sentences for n in numbers]
    missing = sorted({n for n in cited_in_text if not 1 <= n <= count} | {
        c.n for c in answer.citations if not 1 <= c.n <= count
    })
    if missing:
        shown = ", ".join(f"[{n}]" for n in missing)
        answer.warnings.append(
            f"The answer cited {shown}, but only {count} source(s) were given: removed those citations."
        )
        answer.text = _drop_markers(answer.text, set(missing))
        sentences = answer_sentences(answer.text)

    # One citation per valid source number, from the answerer's own list or made from the text.
    by_number = {c.n: c for c in answer.citations if 1 <= c.n <= count}
    for n in (n for _, numbers in sentences for n in numbers):
        by_number.setdefault(n, _citation_for(n, sources[n - 1]))
    citations = [by_number[n] for n in sorted(by_number)]
    answer.citations = citations
    if not citations:
        answer.grounded = False
        answer.unsupported_sentences = [strip_markers(s) for s, _ in sentences if strip_markers(s)]
        return answer

    claims = [(strip_markers(s), numbers or [c.n for c in citations]) for s, numbers in sentences]
    claims = [(claim, numbers) for claim, numbers in claims if claim]
    support = _Support(claims, {c.n: sources[c.n - 1] for c in citations}, embedder)
    best: dict[int, ClaimSupport] = {}
    unsupported: list[str] = []
    for index, (claim, numbers) in enumerate(claims):
        supports = {n: support.of(index, n) for n in numbers}
        if max(s.score for s in supports.values()) < threshold:
            unsupported.append(claim)
        for n, found in supports.items():
            if n not in best or found.score > best[n].score:
                best[n] = found
    for n in {c.n for c in citations} - best.keys():
        # A citation no marker points at (a provider's own citation list): its best claim counts.
        for index in range(len(claims)):
            found = support.of(index, n)
            if n not in best or found.score > best[n].score:
                best[n] = found
    for citation in citations:
        found = best.get(citation.n)
        if found is None:
            continue
        if found.score >= 1.0 and support.quotes(citation.supporting_sentence, citation.n):
            # Several quotes of one chunk tie: the sentence the answerer chose as best stays.
            citation.support = found.score
        else:
            citation.supporting_sentence, citation.support = found.sentence, found.score
    answer.unsupported_sentences = unsupported
    answer.grounded = any(c.support >= threshold for c in citations)
    return answer
