"""Document boosts after fusion: the name, code and recency plug-ins and the list that names them."""

from __future__ import annotations

import math

import pytest

from core.language import code_term
from core.settings import Settings
from core.types import ScoredChunk
from ingest.terms import document_codes, document_terms
from retrieval.boosts import (
    BOOST_NAMES,
    CodeAliases,
    FileNameWords,
    NameBoost,
    RecencyBoost,
    apply_boosts,
    asks_for_latest,
    build_boosts,
    code_aliases,
    distinguishing_codes,
    documents_of,
    name_codes,
    name_scores,
    name_words,
    recency_scores,
)

pytestmark = pytest.mark.unit


def chunk(cid: str, source: str, **payload: object) -> ScoredChunk:
    return ScoredChunk(id=cid, score=1.0, text=cid, payload={"source": source, "document_id": source, **payload})


def docs(*chunks: ScoredChunk) -> dict[str, dict]:
    return documents_of(chunks)


def ids(hits: list[ScoredChunk]) -> list[str]:
    return [h.id for h in hits]


# -- file names ---------------------------------------------------------------------------------


def test_name_words_come_from_folders_and_file_stem_not_the_title():
    payload = {"source": "reports/2023 Q1 INTC.pdf", "title": "Form 10-Q Intel Corporation"}
    assert name_words(payload) == {"reports", "2023", "q1", "intc"}
    assert name_words({"source": "how-to-reset-your-password.md"}) == {"reset", "password"}


def test_a_document_named_by_two_question_words_scores_highest():
    hits = docs(chunk("1", "2023 Q3 INTC.pdf"), chunk("2", "2023 Q1 INTC.pdf"),
                chunk("3", "2022 Q3 INTC.pdf"), chunk("4", "2023 Q1 AMZN.pdf"))
    scores = name_scores("What was Intel's R&D in Q1 2023?", hits)
    # Both Q1 filings share "q1" and "2023" with the question: the same IDF sum, the best score.
    assert scores["2023 Q1 INTC.pdf"] == 1.0 and scores["2023 Q1 AMZN.pdf"] == 1.0
    assert scores["2023 Q3 INTC.pdf"] == 0.0  # one shared word ("2023") is not a reference
    assert scores["2022 Q3 INTC.pdf"] == 0.0


# -- codes --------------------------------------------------------------------------------------


def test_document_codes_are_the_codes_on_many_of_its_pages():
    header = "Acme Inc. | Q2 2023 Form 10-Q | page"
    pages = [f"{header} {i}\nRevenue rose in the quarter." for i in range(1, 9)]
    pages[3] += " The AHP-12 unit is mentioned once. AHP-12 again, AHP-12 and AHP-12."
    pages[5] += " The AHP-9 is sold in Q3 and the AHP-9 again."
    assert document_codes(pages) == ["q2", "10q"]  # on every page; AHP-12 and AHP-9 on one (of 8) only
    # A short document (under 4 pages): codes used at least three times.
    assert document_codes(["The AHP-9 heats. The AHP-9 cools. The AHP-9 is quiet. R290 once."]) == ["ahp9"]
    assert document_codes([]) == [] and document_codes(["", "  "]) == []


def test_code_terms_compare_codes_however_written():
    assert code_term("10-Qs") == code_term("10-Q") == "10q"
    assert code_term("AHP-9's") == code_term("AHP9") == "ahp9"
    assert code_term("1990s") == "1990s" and code_term("COVID-19") == "covid19"


def test_document_terms_are_the_most_frequent_capitalised_words_per_1000_words():
    text = "Intel reported revenue. Intel's Mobileye grew. The revenue of Intel fell. " + "word " * 89
    terms = document_terms(text, limit=2)
    assert list(terms) == ["intel", "mobileye"]  # ties keep their first appearance
    assert terms["intel"] == pytest.approx(1000 * 3 / 100)
    assert "revenue" not in document_terms(text)  # lower-case words are not names
    assert document_terms("") == {}


def test_name_codes_are_capitalised_letter_words_of_the_file_stem():
    assert name_codes({"source": "filings/2023 Q1 INTC.pdf"}) == {"intc"}
    assert name_codes({"source": "2023_Q1_NVDA-10q.PDF"}) == {"nvda"}
    assert name_codes({"source": "aurora-ahp9-manual.pdf"}) == set()
    assert name_codes({"source": "1545.txt"}) == set()


def filing(cid: str, source: str, terms: dict[str, float]) -> ScoredChunk:
    return chunk(cid, source, doc_terms=terms)


FILINGS = [
    filing("1", "2023 Q1 INTC.pdf", {"gaap": 9.0, "intel": 5.0, "income": 3.0, "the": 4.0, "inc": 2.0}),
    filing("2", "2023 Q2 INTC.pdf", {"gaap": 8.0, "intel": 4.0, "income": 3.5, "the": 4.2, "inc": 2.1}),
    filing("3", "2023 Q1 AMZN.pdf", {"the": 4.1, "amazon": 2.0, "aws": 9.0, "inc": 1.9}),
    filing("4", "2023 Q2 AMZN.pdf", {"the": 4.0, "amazon": 1.8, "inc": 2.0, "intel": 0.1}),
]


def test_codes_in_file_names_answer_to_the_words_their_documents_use_most():
    aliases = code_aliases(docs(*FILINGS))
    # "gaap" does not start like INTC, "inc" is as common elsewhere, "income" is used less.
    assert aliases["2023 Q1 INTC.pdf"] == aliases["2023 Q2 INTC.pdf"] == {"intel"}
    assert aliases["2023 Q2 AMZN.pdf"] == {"amazon"}  # "aws" is not in every AMZN filing
    # A code every candidate shares, or documents without stored terms, give no alias.
    assert code_aliases({"a": {"source": "INTC a.pdf", "doc_terms": {"intel": 1.0}},
                         "b": {"source": "INTC b.pdf", "doc_terms": {"intel": 1.0}}}) == {}
    assert code_aliases({"a": {"source": "2023 INTC.pdf"}, "b": {"source": "2023 AMZN.pdf"}}) == {}


def test_faq_or_api_in_a_file_name_is_no_ticker_while_a_filings_code_is():
    """A code counts only where names alike hold different codes: the filings' tickers do, FAQ and
    API (one file each, shaped like no other) do not, however their documents use words of F or A."""
    help_desk = [
        filing("f", "FAQ.md", {"frequently": 6.0, "fan": 4.0, "the": 4.0}),
        filing("a", "API-guide.md", {"application": 7.0, "account": 3.0, "the": 4.1}),
        filing("w", "warranty-terms.md", {"the": 4.2, "warranty": 5.0}),
    ]
    candidates = docs(*help_desk, *FILINGS)
    assert distinguishing_codes(candidates) == {
        "FAQ.md": set(), "API-guide.md": set(),
        "2023 Q1 INTC.pdf": {"intc"}, "2023 Q2 INTC.pdf": {"intc"},
        "2023 Q1 AMZN.pdf": {"amzn"}, "2023 Q2 AMZN.pdf": {"amzn"},
    }
    aliases = code_aliases(candidates)
    assert "FAQ.md" not in aliases and "API-guide.md" not in aliases
    assert aliases["2023 Q1 INTC.pdf"] == {"intel"}
    # So one word of the question no longer lifts them; Intel still names its filings.
    assert not any(name_scores("How frequently should the application be updated?", candidates).values())
    assert name_scores("What did Intel report?", candidates)["2023 Q1 INTC.pdf"] == 1.0


def test_a_company_named_in_the_question_picks_its_coded_filing():
    scores = name_scores("What was Intel's R&D in Q1 2023?", docs(*FILINGS))
    assert scores["2023 Q1 INTC.pdf"] == 1.0
    # The Q1 Amazon filing matches "q1" and "2023", the Q2 Intel one "intel" and "2023": each a
    # share of the best sum, raised to the 4th power.
    share = (math.log(2) + math.log(3)) / (math.log(2) + 2 * math.log(3))
    assert scores["2023 Q1 AMZN.pdf"] == pytest.approx(share**4)
    assert scores["2023 Q2 INTC.pdf"] == pytest.approx(share**4)
    # One alias is enough on its own: the company alone names all its filings equally.
    alone = name_scores("Has Amazon bought back shares?", docs(*FILINGS))
    assert alone["2023 Q1 AMZN.pdf"] == alone["2023 Q2 AMZN.pdf"] == 1.0
    assert alone["2023 Q1 INTC.pdf"] == 0.0


def test_code_weight_scales_what_an_alias_word_counts():
    half = name_scores("What was Intel's R&D in Q1 2023?", docs(*FILINGS),
                       (FileNameWords(), CodeAliases(weight=0.5)))
    # "intel" now counts half: the Q2 Intel filing falls below the Q1 Amazon one.
    assert half["2023 Q1 INTC.pdf"] == 1.0
    assert half["2023 Q2 INTC.pdf"] < half["2023 Q1 AMZN.pdf"]


# -- the plug-ins, on and off ---------------------------------------------------------------------


def test_names_on_lifts_the_document_the_question_names_off_keeps_the_fused_order():
    ranked = [chunk("a", "2023 Q3 NVDA.pdf"), chunk("b", "2023 Q2 NVDA.pdf"),
              chunk("c", "2022 Q3 NVDA.pdf"), chunk("d", "2023 Q1 NVDA.pdf")]
    query = "NVIDIA's Q1 2023 net income?"
    on = apply_boosts(query, ranked, build_boosts(["names"], name_boost=2.0, recency_boost=0.0), k=5)
    assert ids(on) == ["d", "a", "b", "c"]
    assert ids(apply_boosts(query, ranked, build_boosts([], name_boost=2.0, recency_boost=0.0), 5)) == list("abcd")
    assert apply_boosts(query, ranked, build_boosts(["names"], name_boost=0.0, recency_boost=0.0), 5) == ranked
    numbered = [chunk("x", "1545.txt"), chunk("y", "1546.txt")]
    assert apply_boosts("What is MERS?", numbered, build_boosts(BOOST_NAMES, name_boost=3.0, recency_boost=1.0),
                        5) == numbered


def test_codes_on_lifts_the_filings_of_the_company_the_question_names():
    ranked = [FILINGS[2], FILINGS[3], FILINGS[0], FILINGS[1]]  # Amazon first, as fusion left them
    query = "What did Intel say about its foundry?"
    # The file names share no word with the question: names alone change nothing.
    names = build_boosts(["names"], name_boost=3.0, recency_boost=0.0)
    assert ids(apply_boosts(query, ranked, names, 5)) == ["3", "4", "1", "2"]
    both = build_boosts(["names", "codes"], name_boost=3.0, recency_boost=0.0)
    assert ids(apply_boosts(query, ranked, both, 5)) == ["1", "2", "3", "4"]
    codes_alone = build_boosts(["codes"], name_boost=3.0, recency_boost=0.0)
    assert ids(apply_boosts(query, ranked, codes_alone, 5)) == ["1", "2", "3", "4"]


def dated(cid: str, source: str, created: str | None) -> ScoredChunk:
    return chunk(cid, source, created=created)


def test_questions_asking_for_the_latest():
    assert asks_for_latest("What was the gross margin in the latest 10-Q?")
    assert asks_for_latest("In the MOST RECENT report, what changed?")
    assert not asks_for_latest("What was the gross margin in Q1 2023?")
    assert not asks_for_latest("Which is the lateststyle widget?")
    assert not asks_for_latest("Was ist der neueste Bericht?", "german")  # no cue measured but English


def test_recency_ranks_dated_documents_oldest_0_newest_1():
    chunks = docs(dated("a", "old.pdf", "2022-07-29"), dated("b", "mid.pdf", "2023-02-03"),
                  dated("c", "new.pdf", "2023-08-04"), dated("d", "new.pdf", "2023-08-04"),
                  dated("e", "notes.txt", None))
    assert recency_scores(chunks) == {"old.pdf": 0.0, "mid.pdf": 0.5, "new.pdf": 1.0}
    assert recency_scores(docs(dated("a", "x.pdf", "2023-01-01"), dated("b", "y.pdf", "2023-01-01"))) == {}


def test_recency_on_ranks_newer_documents_first_only_when_the_question_asks_for_the_latest():
    ranked = [dated("a", "2022.pdf", "2022-07-29"), dated("b", "2023a.pdf", "2023-02-03"),
              dated("c", "2023b.pdf", "2023-08-04")]
    recency = build_boosts(["recency"], name_boost=3.0, recency_boost=1.0)
    assert ids(apply_boosts("What did the latest filing say about debt?", ranked, recency, 5)) == ["c", "b", "a"]
    assert apply_boosts("What did the filing say about debt?", ranked, recency, 5) == ranked
    off = build_boosts(["names", "codes"], name_boost=3.0, recency_boost=1.0)
    assert apply_boosts("What did the latest filing say about debt?", ranked, off, 5) == ranked


# -- the list the settings name -----------------------------------------------------------------


def test_build_boosts_follows_the_named_order_and_joins_names_and_codes():
    boosts = build_boosts(["recency", "codes", "names"], name_boost=3.0, recency_boost=1.0, code_weight=0.5,
                          language="german")
    assert [type(b) for b in boosts] == [RecencyBoost, NameBoost]
    assert boosts[0] == RecencyBoost(1.0, "german")
    assert boosts[1] == NameBoost(3.0, (FileNameWords("german"), CodeAliases(0.5)), "german")
    assert build_boosts(["codes"], name_boost=3.0, recency_boost=1.0) == (NameBoost(3.0, (CodeAliases(),)),)
    assert build_boosts([], name_boost=3.0, recency_boost=1.0) == ()


def test_an_unknown_boost_name_is_refused_naming_the_valid_ones():
    with pytest.raises(ValueError, match="Unknown retrieval boost 'faq': use names, codes, recency"):
        build_boosts(["names", "faq"], name_boost=3.0, recency_boost=1.0)
    with pytest.raises(ValueError, match="Unknown retrieval boost 'title': use names, codes, recency"):
        Settings(retrieval_boosts="names,title")


def test_settings_name_the_boosts_comma_separated(monkeypatch):
    assert Settings().retrieval_boosts == ("names", "codes", "recency")
    monkeypatch.setenv("RAG_RETRIEVAL_BOOSTS", "Names, recency")
    assert Settings().retrieval_boosts == ("names", "recency")
    monkeypatch.setenv("RAG_RETRIEVAL_BOOSTS", "none")
    assert Settings().retrieval_boosts == ()
    assert set(BOOST_NAMES) == {"names", "codes", "recency"}
