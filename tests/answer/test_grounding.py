"""Citation check: missing sources, unsupported sentences, supporting sentences, grounded flag."""

from __future__ import annotations

import re
import zlib
from pathlib import Path

import numpy as np
import pytest

from answer.grounding import answer_sentences, split_sentences, text_units, verify
from core.types import NOT_FOUND_TEXT, Answer, Citation, ScoredChunk

pytestmark = pytest.mark.unit


class BagOfWordsEmbedder:
    """A deterministic stand-in for the sentence embedder: hashed word counts, normalised."""

    model_name = "bag-of-words"

    def __init__(self) -> None:
        self.calls = 0

    def embed(self, texts: list[str]) -> np.ndarray:
        self.calls += 1
        rows = np.zeros((len(texts), 512), dtype=np.float32)
        for row, text in zip(rows, texts, strict=True):
            for word in re.findall(r"\w+", text.lower()):
                row[zlib.crc32(word.encode()) % 512] += 1.0
            row /= max(float(np.linalg.norm(row)), 1e-9)
        return rows


MANUAL_P3 = (
    "3 Installation\n3.1 Placement\nLeave at least 300 mm between the back of the outdoor unit and the wall.\n"
    "Mount the outdoor unit at least 150 mm above the ground so that snow and melt water cannot block the coil.\n"
    "3.2 Electrical connection\nThe heat pump must be connected through a dedicated 16 A type C circuit breaker."
)
MANUAL_P4 = (
    "4 Operation\n4.2 Hot water\nThe legionella protection cycle heats the hot water tank to 60 °C every "
    "Sunday at 02:00."
)


def sources() -> list[ScoredChunk]:
    return [
        ScoredChunk("c3", 0.9, MANUAL_P3, {"file_name": "manual.pdf", "document_id": "m", "page": 3}),
        ScoredChunk("c4", 0.7, MANUAL_P4, {"file_name": "manual.pdf", "document_id": "m", "page": 4}),
    ]


@pytest.fixture
def embedder() -> BagOfWordsEmbedder:
    return BagOfWordsEmbedder()


def test_a_quoted_sentence_is_supported_and_its_citation_filled(embedder):
    answer = Answer(text="The heat pump must be connected through a dedicated 16 A type C circuit breaker. [1]")
    checked = verify(answer, sources(), embedder)
    assert checked.grounded
    assert checked.unsupported_sentences == []
    [citation] = checked.citations
    assert (citation.n, citation.chunk_id, citation.document, citation.page) == (1, "c3", "manual.pdf", 3)
    assert citation.text == MANUAL_P3
    assert citation.supporting_sentence.startswith("The heat pump must be connected")
    assert citation.support > 0.9


def test_quotes_are_checked_without_the_model_and_paraphrases_with_it(embedder):
    quoted = Answer(text=(
        "Leave at least 300 mm between the back of the outdoor unit and the wall. [1] "
        "The legionella protection cycle heats the hot water tank to 60 °C every Sunday at 02:00. [2]"
    ))
    checked = verify(quoted, sources(), embedder)
    assert embedder.calls == 0
    assert [c.support for c in checked.citations] == [1.0, 1.0]
    assert checked.grounded and checked.unsupported_sentences == []

    paraphrase = Answer(text="Keep 300 mm free behind the outdoor unit. [1]")
    checked = verify(paraphrase, sources(), embedder)
    assert embedder.calls > 0
    assert 0 < checked.citations[0].support < 1.0


def test_the_answerers_best_sentence_stays_highlighted_among_quotes_of_one_chunk(embedder):
    best = "Mount the outdoor unit at least 150 mm above the ground so that snow and melt water cannot block the coil."
    answer = Answer(
        text=f"Leave at least 300 mm between the back of the outdoor unit and the wall. [1] {best} [1]",
        citations=[Citation(1, "c3", "manual.pdf", 3, MANUAL_P3, 0.9, supporting_sentence=best)],
    )
    assert verify(answer, sources(), embedder).citations[0].supporting_sentence == best
    unnamed = Answer(text=answer.text)  # no sentence named: the first quote of the chunk
    assert verify(unnamed, sources(), embedder).citations[0].supporting_sentence.startswith("Leave at least")


def test_an_invented_sentence_is_flagged(embedder):
    invented = "The outdoor unit can be painted any colour the owner likes"
    answer = Answer(text=f"Leave at least 300 mm between the back of the outdoor unit and the wall. [1] {invented}. [1]")
    checked = verify(answer, sources(), embedder)
    assert checked.unsupported_sentences == [f"{invented}."]
    assert checked.grounded  # the first sentence is supported


def test_a_changed_number_is_flagged(embedder):
    answer = Answer(text="The legionella protection cycle heats the hot water tank to 70 °C every Sunday at 03:30 [2].")
    checked = verify(answer, sources(), embedder)
    assert len(checked.unsupported_sentences) == 1
    assert not checked.grounded


def test_a_citation_to_a_missing_source_is_removed_and_reported(embedder):
    answer = Answer(
        text="The tank is heated to 60 °C every Sunday at 02:00 [2][7].",
        citations=[Citation(7, "ghost", "ghost.pdf", 1, "", 0.0)],
    )
    checked = verify(answer, sources(), embedder)
    assert [c.n for c in checked.citations] == [2]
    assert "[7]" not in checked.text and "[2]" in checked.text
    assert any("[7]" in w and "2 source" in w for w in checked.warnings)
    assert checked.citations[0].chunk_id == "c4"


def test_a_sentence_cited_to_the_wrong_source_is_unsupported(embedder):
    answer = Answer(text="The legionella protection cycle heats the hot water tank to 60 °C every Sunday at 02:00. [1]")
    checked = verify(answer, sources(), embedder)
    assert checked.unsupported_sentences
    assert not checked.grounded


def test_an_answer_without_citations_is_ungrounded(embedder):
    checked = verify(Answer(text="Leave at least 300 mm behind the unit."), sources(), embedder)
    assert not checked.grounded
    assert checked.citations == []


def test_abstained_answers_are_left_alone(embedder):
    answer = Answer(text=NOT_FOUND_TEXT, abstained=True)
    checked = verify(answer, sources(), embedder)
    assert checked.grounded and checked.abstained and checked.citations == []
    assert embedder.calls == 0


def test_a_providers_citation_without_marker_gets_its_support(embedder):
    answer = Answer(
        text="Mount the outdoor unit at least 150 mm above the ground.",
        citations=[Citation(1, "c3", "manual.pdf", 3, MANUAL_P3, 0.9)],
    )
    checked = verify(answer, sources(), embedder)
    assert checked.grounded
    assert checked.citations[0].supporting_sentence.startswith("Mount the outdoor unit")


def test_markers_after_the_full_stop_belong_to_the_sentence_before():
    parsed = answer_sentences("First fact. [1] Second fact [2]. Third fact. [1, 2]")
    assert [numbers for _, numbers in parsed] == [[1], [2], [1, 2]]


def test_pdf_line_wraps_are_joined_and_table_rows_kept_apart():
    text = (
        "The AHP-9 uses the natural refrigerant R290 (propane), so only an installer certified by Aurora may open the\n"
        "refrigerant circuit.\nProperty Value\nRated heating capacity (A7/W35) 9.2 kW\nSound power level 54 dB(A)"
    )
    assert split_sentences(text) == [
        "The AHP-9 uses the natural refrigerant R290 (propane), so only an installer certified by Aurora may "
        "open the refrigerant circuit.",
        "Property Value",
        "Rated heating capacity (A7/W35) 9.2 kW",
        "Sound power level 54 dB(A)",
    ]


def test_a_wrapped_sentence_ending_a_line_in_figures_is_no_table_row():
    # a paper's column: a line of prose that ends in "72 GB" looks like a row's label and figures
    text = ("We train for 40 epochs with a batch size of 128 and a learning rate of 2e-5. The index\n"
            "of 21 million Wikipedia passages takes 18 GB, against 72 GB\nfor the dense index.\n\n"
            "Income before provision for income taxes and\nequity income 35,623 41,241")
    assert [(u.kind, u.text) for u in text_units(text)] == [
        ("text", "We train for 40 epochs with a batch size of 128 and a learning rate of 2e-5."),
        ("text", "The index of 21 million Wikipedia passages takes 18 GB, against 72 GB for the dense index."),
        ("row", "Income before provision for income taxes and equity income 35,623 41,241"),  # a wrapped label
    ]
    title = "Sparse Retrieval with Learned Term Weights for Open-Domain Question Answering\nAbstract\nWe present it."
    assert [u.text for u in text_units(title)][:2] == [
        "Sparse Retrieval with Learned Term Weights for Open-Domain Question Answering", "Abstract"]


def test_adjacent_numbered_lines_are_list_steps_a_lone_one_is_a_heading():
    units = text_units("3.1 Placement\nThe unit stands on a flat base.\n\n1. Open the sign-in page\n"
                       "2. Enter the email address of your account and the code we sent to\n   your phone\n"
                       "Check your inbox.")
    assert [(u.kind, u.text) for u in units] == [
        ("heading", "3.1 Placement"),
        ("text", "The unit stands on a flat base."),
        ("item", "1. Open the sign-in page"),
        ("item", "2. Enter the email address of your account and the code we sent to your phone"),
        ("text", "Check your inbox."),
    ]


def test_bulleted_lines_are_list_steps_never_the_wrapped_end_of_the_line_above():
    # The line above each bullet is as long as a line the page layout wraps, and ends mid-sentence.
    units = text_units("If you forgot your password, reset it from the sign-in page of the app\n"
                       "- Go to the sign-in page and click Forgot password under the field\n"
                       "- Enter the email address of your account\n"
                       "  and the code we sent to your phone\n"
                       "• Open the email and follow its link\n"
                       "• Choose a new password\n\n"
                       "The link expires after an hour.\n- a lone dash line of prose")
    assert [(u.kind, u.text) for u in units] == [
        ("text", "If you forgot your password, reset it from the sign-in page of the app"),
        ("item", "Go to the sign-in page and click Forgot password under the field"),
        ("item", "Enter the email address of your account and the code we sent to your phone"),
        ("item", "• Open the email and follow its link"),
        ("item", "• Choose a new password"),
        ("text", "The link expires after an hour."),
        ("text", "a lone dash line of prose"),
    ]


def test_a_fenced_code_line_is_kept_as_written():
    units = text_units("To install it, run:\n\n```\npip install acme-cli\n# then check it\nacme --version. ok\n```\n"
                       "It prints the version.")
    assert [(u.kind, u.text) for u in units] == [
        ("text", "To install it, run:"),
        ("code", "pip install acme-cli"),
        ("code", "# then check it"),
        ("code", "acme --version. ok"),
        ("text", "It prints the version."),
    ]


def test_warm_up_loads_the_text_tools_before_the_first_question():
    from answer import grounding
    from core.language import sentence_tokenizer
    from core.tokens import get_encoding

    for loader in (sentence_tokenizer, grounding._stopwords, grounding._stemmer, get_encoding):
        loader.cache_clear()
    grounding.warm_up()
    assert all(loader.cache_info().currsize == 1
               for loader in (sentence_tokenizer, grounding._stopwords, grounding._stemmer, get_encoding))


def test_the_text_tools_load_without_llama_index():
    """Importing llama-index costs the server about a second at start: the sentence splitter, the
    stopwords and the token counter come from its data files, not from its modules."""
    import subprocess
    import sys

    code = ("import sys; from answer.grounding import warm_up, text_units; from retrieval.sentences import "
            "best_sentence_scores; warm_up(); text_units('One. Two.'); best_sentence_scores('one', ['One. Two.']); "
            "print('llama_index.core' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         cwd=Path(__file__).resolve().parents[2], check=True)
    assert out.stdout.strip().splitlines()[-1] == "False"
