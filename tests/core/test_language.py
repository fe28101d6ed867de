"""The language setting: one place for stopwords, stemming and the "latest" cue, offline."""

from __future__ import annotations

import pytest

from core.language import (
    LANGUAGES,
    asked,
    check_language,
    counted,
    full_form,
    latest_cue,
    overview_asked,
    respelled,
    searched_for,
    spelled_out,
    stemmer,
    stopwords,
)
from core.settings import Settings

pytestmark = pytest.mark.unit


def test_every_offered_language_has_stopwords_and_a_stemmer_without_a_download():
    for language in LANGUAGES:
        assert len(stopwords(language)) > 20, language
        assert stemmer(language).stem("x") is not None
    assert {"the", "and", "what", "s"} <= stopwords("english")
    assert {"der", "und", "nicht"} <= stopwords("german")
    assert "the" not in stopwords("german")


def test_english_is_the_list_and_stemmer_the_answer_checks_used_before():
    from llama_index.core.utils import globals_helper

    assert stopwords("english") == frozenset(globals_helper.stopwords)
    assert stemmer("english").stem("running") == "run"
    assert stemmer("german").stem("Häuser") == "haus"


def test_unknown_languages_are_refused_naming_the_choices():
    assert check_language(" German ") == "german"
    with pytest.raises(ValueError, match="Unknown language 'klingon': use one of arabic, danish"):
        check_language("klingon")
    with pytest.raises(ValueError, match="Unknown language 'klingon'"):
        Settings(language="klingon")


def test_the_setting_defaults_to_english_and_reads_rag_language(monkeypatch):
    assert Settings().language == "english"
    monkeypatch.setenv("RAG_LANGUAGE", "French")
    assert Settings().language == "french"


def test_only_english_has_a_measured_latest_cue():
    cue = latest_cue("english")
    assert cue is not None and cue.search("the most recent filing")
    assert latest_cue("french") is None


def test_the_answer_checks_and_bm25_follow_the_setting(monkeypatch):
    from answer import grounding
    from core.settings import get_settings
    from retrieval.sparse import Bm25Encoder

    monkeypatch.setenv("RAG_LANGUAGE", "german")
    get_settings.cache_clear()
    grounding._stemmer.cache_clear()
    grounding._stopwords.cache_clear()
    try:
        assert grounding._stemmer().stem("Häuser") == "haus"
        assert "und" in grounding._stopwords() and "the" not in grounding._stopwords()
    finally:
        grounding._stemmer.cache_clear()
        grounding._stopwords.cache_clear()
    german, english = Bm25Encoder(language="german"), Bm25Encoder()
    assert german.config["language"] == "german"
    # German stopwords go, English ones stay, and the other way round.
    assert len(german.encode_query("und die Häuser").indices) == 1
    assert len(english.encode_query("und die Häuser").indices) == 3
    with pytest.raises(ValueError, match="Unknown language"):
        Bm25Encoder(language="klingon")


# Questions as financial analysts' question sets put them: instructions to whoever answers around the
# question, fiscal years written "FY2018" or "FY22".
ANALYST_QUESTIONS = [
    ("What is the FY2018 capital expenditure amount (in USD millions) for 3M? Give a response to the question by "
     "relying on the details shown in the cash flow statement.",
     "What is the 2018 capital expenditure amount for 3M?"),
    ("Assume that you are a public equities analyst. Answer the following question by primarily using information "
     "that is shown in the balance sheet: what is the year end FY2018 net PPNE for 3M? Answer in USD billions.",
     "What is the year end 2018 net PPNE for 3M?"),
    ("What drove operating margin change as of FY22 for 3M? If operating margin is not a useful metric for a company "
     "like this, then please state that and explain why.",
     "What drove operating margin change as of 2022 for 3M?"),
    ("Based on the information provided primarily in the statement of income, what is AMD's FY2015 gross margin? "
     "Round your answer to two decimal places.",
     "What is AMD's 2015 gross margin?"),
    ("Does AMD have a healthy liquidity profile? Please utilize information provided primarily within the balance "
     "sheet.",
     "Does AMD have a healthy liquidity profile?"),
    ("Using the cash flow statement, answer the following question to the best of your abilities: how much cash "
     "did Block generate from operating activities in FY2020?",
     "How much cash did Block generate from operating activities in 2020?"),
    ("What is Adobe's change in operating income from FY2015 to FY2016 (in units of percents and round to one "
     "decimal place)? Give a solution to the question by using the income statement.",
     "What is Adobe's change in operating income from 2015 to 2016?"),
    ("We want to calculate a financial metric. Please help us compute it by basing your answers off of the cash "
     "flow statement. Here's the question: what is the FY2019 EBITDA less capex for Adobe?",
     "What is the 2019 EBITDA less capex for Adobe?"),
    # and as quiz questions generated from a passage put them
    ("According to the document, what are the two primary objectives of the work?",
     "What are the two primary objectives of the work?"),
    ("Based on the provided context, how did the author gain access to the IBM 1401?",
     "How did the author gain access to the IBM 1401?"),
]


@pytest.mark.parametrize(("question", "searched"), ANALYST_QUESTIONS)
def test_a_question_is_searched_without_its_instructions_to_the_answerer(question, searched):
    assert asked(question) == searched


@pytest.mark.parametrize("question", [
    "What did the author work on before college?",
    # a request about the content stays, so do definitions
    "How have exchange rates affected NVIDIA? Please provide a breakdown for each reporting period.",
    "What is Amazon's days payable outstanding? DPO is defined as: 365 * average accounts payable / COGS.",
    "What is the EBITDA margin? Use operating income + depreciation and amortization.",
    # a question is never dropped, even when it starts like an instruction
    "I own an AHP-9. Please tell me how to reset it?",
    "According to Paul Graham, what message does New York send?",
    "what is the clinical manifestation similar to?",
    # sentences that only start like an instruction
    "Express shipping to Norway. How long does it take?",
    "Round-trip time of the AHP-9 link. What limits it?",
    "Answers to the FAQ were updated. When did the warranty change?",
])
def test_questions_without_instructions_are_searched_as_asked(question):
    assert asked(question) == question


def test_short_quarters_and_percent_units_are_read_as_documents_write_them():
    assert asked("What was Intel's revenue in 1Q23 and in Q2'23?") == "What was Intel's revenue in Q1 2023 and in Q2 2023?"
    assert asked("What was the gross margin in Q3 FY22 (in %)?") == "What was the gross margin in Q3 2022?"
    assert asked("How many 4Q-ready units (in stock) are there?") == "How many 4Q-ready units (in stock) are there?"


def test_a_question_that_is_all_instruction_stays_whole_and_other_languages_only_read_fiscal_years():
    assert asked("Answer in USD millions.") == "Answer in USD millions."
    assert asked("Quel est le chiffre d'affaires FY2018 ? Répondez en millions.", "french") == (
        "Quel est le chiffre d'affaires 2018 ? Répondez en millions.")


def test_line_item_abbreviations_are_read_spelled_out_and_names_with_an_ampersand_are_not():
    assert spelled_out("R&D and SG&A grew; PP&E, net; COGS; capex") == (
        "research and development and selling, general and administrative grew; property, plant and equipment, "
        "net; cost of goods sold (cost of sales); capital expenditures")
    assert spelled_out("AT&T and the S&P 500; R&Ds; steps") == "AT&T and the S&P 500; R&Ds; steps"
    assert spelled_out("R&D", "french") == "R&D"


def test_a_line_item_written_the_statements_way_or_the_analysts_way_is_read_with_one_name():
    assert spelled_out("Purchases of property, plant and equipment (1,577); Additions to property, plant, and "
                       "equipment; capex") == (
        "Purchases of property, plant and equipment (capital expenditures) (1,577); Additions to property, plant, "
        "and equipment (capital expenditures); capital expenditures")
    assert spelled_out("Net cash provided by (used in) operating activities 3,663; cash flow from operations") == (
        "Net cash provided by (used in) operating activities (operating cash flow) 3,663; cash flow from operations "
        "(operating cash flow)")
    assert spelled_out("Cost of revenue 2,544") == "Cost of revenue (cost of sales) 2,544"
    # property itself is not spent: the balance sheet's line stays as written
    assert spelled_out("Property, plant and equipment, net 9,331") == "Property, plant and equipment, net 9,331"
    assert spelled_out("Cost of revenue", "german") == "Cost of revenue"


def test_a_question_and_a_sentence_writing_one_line_item_two_ways_share_its_words():
    from answer.grounding import content_terms
    from retrieval.sentences import content_terms as reranker_terms

    for terms in (content_terms, reranker_terms):
        asked_terms = set(terms("What was Amazon's R&D expense?"))
        assert {"research", "develop"} <= asked_terms and "r" not in asked_terms
        assert asked_terms - set(terms("Research and development expense grew")) == {"amazon"}
        asked_terms = set(terms("What was the 2018 capital expenditure?"))
        assert asked_terms <= set(terms("Purchases of property, plant and equipment (1,577) in 2018"))


def test_the_statement_an_instruction_points_to_is_searched_for_and_not_read_as_the_question():
    question = ("What is the FY2018 capital expenditure amount (in USD millions) for 3M? Give a response to the "
                "question by relying on the details shown in the cash flow statement.")
    assert asked(question) == "What is the 2018 capital expenditure amount for 3M?"
    assert searched_for(question) == "What is the 2018 capital expenditure amount for 3M? cash flow statement"
    assert searched_for("Answer the following question by primarily using information that is shown in the balance "
                        "sheet: what is the year end FY2018 net PPNE for 3M?") == (
        "What is the year end 2018 net PPNE for 3M? balance sheet")
    # Named in the question itself, a statement is searched for once; no instruction, nothing added.
    assert searched_for("What does the balance sheet show for cash? Use the balance sheet.") == (
        "What does the balance sheet show for cash?")
    assert searched_for("Which refrigerant does it use?") == "Which refrigerant does it use?"


SOURCES_WRITTEN = ["Carrageenan and zanamivir were given in a retrospective study of CEACAM1 receptors. The cancer "
                   "trial was stopped. Key limitations are listed. A refund is due. The thermal and thermos tests."]


@pytest.mark.parametrize(("question", "read"), [
    ("What is carageenan?", "What is carrageenan?"),
    ("Do Carageenan and Zanamavir help?", "Do Carrageenan and Zanamivir help?"),  # a capital stays one
    ("How many domains has CEAMCAM1?", "How many domains has CEACAM1?"),
    ("What are the restrospective studies and key limtations?", "What are the retrospective studies and key limitations?"),
])
def test_a_misspelt_word_is_read_as_the_sources_word_spelled_almost_like_it(question, read):
    assert respelled(question, SOURCES_WRITTEN) == read


@pytest.mark.parametrize("question", [
    "How do I cancel?",  # a word the dictionary knows is never another ("cancer")
    "Was it refunded?",  # the sources' word in another form: left as written
    "How many domains has CEAMCAM5?",  # another number is another name
    "Which thermas test?",  # as close to two different words: no guess
    "What is intranasal therapy?",  # nothing close
])
def test_a_word_is_left_as_written_when_no_one_source_word_is_its_likely_spelling(question):
    assert respelled(question, SOURCES_WRITTEN) == question
    assert respelled(question, SOURCES_WRITTEN, "german") == question


@pytest.mark.parametrize(("question", "read"), [
    ("What are the steps for mitigating the COVID -19 transmission?", "What are the steps for mitigating the COVID-19 transmission?"),
    ("How many covid 19 cases?", "How many COVID-19 cases?"),
    ("What is the similarity between IFITM 1 and IFITM 3?", "What is the similarity between IFITM1 and IFITM3?"),
])
def test_a_name_and_its_number_written_apart_are_read_as_the_sources_write_them(question, read):
    sources = ["Mitigating the spread of COVID-19 is a priority. IFITM1, IFITM2 and IFITM3 are similar."]
    assert respelled(question, sources) == read


@pytest.mark.parametrize("question", ["Does Windows 11 work?", "How many cases were there on 5 March?"])
def test_a_name_and_a_number_the_sources_also_write_apart_stay_apart(question):
    sources = ["Windows 11 and Windows-11 builds. As of 5 March 2020 there were 12 cases."]
    assert respelled(question, sources) == question


def test_a_number_word_counts_as_the_figure_a_question_asks_for():
    assert counted({"three", "point"}, {"3"}) == {"three", "point", "3"}
    assert counted({"twelv", "month"}, {"12", "2"}) == {"twelv", "month", "12"}
    assert counted({"three", "point"}, {"4"}) == {"three", "point"}  # another figure is not held
    assert counted({"three"}, {"3"}, "german") == {"three"}  # English number words only


@pytest.mark.parametrize("question", [
    "What is this paper about?", "What is the essay on cities about?", "Summarize the article.", "Can you summarize this?",
    "Summarize the essay on what the author worked on", "Give me a short summary of the report",
    "What is the main idea of the article?", "What are the key takeaways of this paper?", "What does the paper propose?",
    "What is the main contribution of the paper?", "tl;dr",
])
def test_a_question_about_what_a_text_is_about_is_an_overview(question):
    assert overview_asked(question)
    assert not overview_asked(question, "german")


@pytest.mark.parametrize("question", [
    "What is the warranty about?", "What does the paper say about dense retrieval?",
    "Summarize the risk factors to Apple's business", "What is the purpose of the magnetic filter?",
    "Summary of significant accounting policies?",
])
def test_a_question_about_one_thing_in_a_text_is_no_overview(question):
    assert not overview_asked(question)


def test_a_short_form_stands_for_its_word_in_english_only():
    assert full_form("docs") == "documents" and full_form("admin") == "administrator"
    assert full_form("dock") == "dock"
    assert full_form("docs", "german") == "docs"
