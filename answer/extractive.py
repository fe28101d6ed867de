"""ExtractiveAnswerer: answers with the source sentences that best answer the question, each
cited, and abstains when none is close enough. No key, no network, no generated text.

Source text is only ever quoted: a sentence such as "ignore previous instructions" can appear
in an answer only when it is the best answer to the question asked.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache

import numpy as np

from answer.grounding import (
    LABEL_WORDS,
    SENTENCE_VECTORS,
    TERMINAL,
    TextUnit,
    content_terms,
    key_terms,
    marked_headings,
    pipe_row,
    plain_label,
    prose_sentences,
    text_units,
    weighted_containment,
)
from core.language import (
    as_shown,
    asked,
    counted,
    frame_question,
    overview_asked,
    persons,
    respelled,
)
from core.markup import readable
from core.settings import ABSTAIN_THRESHOLD, get_settings
from core.stages import AnswerStream, word_pieces
from core.types import NOT_FOUND_TEXT, Answer, Citation, ScoredChunk
from retrieval.boosts import name_words

# A sentence's relevance = COSINE_WEIGHT * cosine(question, sentence) + the rest * the share of
# the question's content words it holds (IDF-weighted over the sources' sentences, numbers
# count double), then adjusted below. A table row is read with its header for both parts.
# LEXICAL_TERMS and CONTEXT_CREDIT were chosen on the dev splits of docugami and COVID-QA
# (`rag eval --split dev`): without them one threshold could not serve the long analytical
# docugami questions and the short COVID-QA ones (answered at the pooled threshold: docugami
# 0.29 -> 0.44, COVID-QA 0.93 -> 0.91, same refusals of foreign and hard negatives).
COSINE_WEIGHT = 0.55
LEXICAL_TERMS = 4  # holding the question's 4 heaviest words is holding it: long questions add
# words no one sentence repeats
CONTEXT_CREDIT = 0.5  # question words found elsewhere in the source (its document name, the
# sentence before, its document's codes) count half: "Apple", "Q2 2023" are in the file name, "10-Q"
# in the page headers, not in each sentence
# A name the question uses ("Apple's", "NVIDIA", "MERS-CoV") that the sentence's chunk, its file name
# and its document's frequent names (`doc_terms`) all lack: the sentence is about something else.
# Firm when another source has the name, mild when none has it (the name may be the collection's
# subject, never written out).
MISSING_NAME_FLOOR = 0.7
NOWHERE_NAME_FLOOR = 0.85
MISSING_KEY_FLOOR = 0.5  # a source lacking the question's numbers/codes ("AHP-12", "2.4.0") keeps half
# (its document's `doc_codes`, the codes on many of its pages, count as held)
QUESTION_FACTOR = 0.8  # a sentence ending in "?" restates a question, it does not answer one
NOTHING_NEW_FACTOR = 0.7  # a sentence with no content word beyond the question's adds nothing
TITLE_FACTOR = 0.8  # a short line without a full stop or a new figure names a topic, it does not answer
TITLE_WORDS = 12
NAME_WORDS = 2  # a line of two words names something even with a full stop ("Apple Inc.")
WRONG_TYPE_FACTOR = 0.7  # "how much/when" needs a number the question lacks, "who" a new name, a price money
# A question naming a year or quarter ("Amazon's Q3 2022 10-Q") asks for the document of that
# period: a source whose file name names only other ones ("2023 Q3 AMZN.pdf") scores lower.
# Docugami dev (each question answered from one stored retrieval), factor 1 / 0.85 / 0.7 / 0.5:
# hard negatives refused at the default threshold 0.646 / 0.717 / 0.747 / 0.747, the same
# answerable questions answered; COVID-QA's numbered files name no period (README, "Answers
# without an LLM").
OTHER_PERIOD_FACTOR = 0.7
# Near ties go to the source retrieval ranked higher: a sentence of the n-th of k sources is ordered
# as if it scored RANK_TIE * (1 - (n - 1) / k) more (its score, the answer's confidence, is unchanged).
# Dev splits, 0 / 0.02 / 0.05: COVID-QA answers citing the passage that holds the answer 0.812 /
# 0.818 / 0.822, correct 0.288 / 0.291 / 0.296; docugami correct 0.165 / 0.165 / 0.153.
RANK_TIE = 0.02
KEEP_RATIO = 0.9  # further sentences must score within 90 % of the best one
REDUNDANT_COSINE = 0.85  # a sentence this close to one already chosen says the same
# Sentences and rows embedded per question: those holding most of the question's words. Embedding
# them is the answer step's cost (docugami: 46 per question at the median, 114 at p95). On the dev
# splits, with the sentence reranker ordering the sources, keeping 16, 20 or 24 of them gave the
# same figures, 12 one docugami question fewer answered (before that reranker, 16 lost one too).
EMBEDDED_PIECES = 16
MAX_WORDS = 80  # the passage: the best sentence with what completes it, then others while they fit

DEFAULT_THRESHOLD = ABSTAIN_THRESHOLD  # from the pooled dev splits: see core/settings.py


@dataclass
class Candidate:
    """One sentence (or table row, or label read with its value) of one source, scored."""

    n: int  # the source's number, 1-based
    text: str
    score: float
    vector: np.ndarray
    span: tuple[int, ...] = ()  # its positions among the source's text units


@dataclass
class _Source:
    """A source's text units, the terms of its text and those of its document's name."""

    units: list[TextUnit]
    terms: set[str]
    name_terms: set[str]
    # its document's frequent names (`doc_terms`) and the collection's subjects (retrieval/subjects.py)
    document_terms: set[str] = field(default_factory=set)
    document_codes: set[str] = field(default_factory=set)  # codes its document uses throughout (`doc_codes`)
    periods: tuple[frozenset[str], frozenset[str]] = (frozenset(), frozenset())  # its name's years, quarters
    lead: str = ""  # the heading the chunk starts under when its text does not hold it
    marked: frozenset[str] = frozenset()  # the headings its text marks as such (`marked_headings`)
    subjects: set[str] = field(default_factory=set)  # the collection's subjects alone

    def sections(self) -> list[str]:
        """Per unit, the marked heading it stands under ("" for none; a heading itself has none). A
        line that only looks like a heading ("12 Revenue" in a PDF) opens no section: on the filings
        reading sentences with such lines cost answers."""
        current, out = self.lead, []
        for unit in self.units:
            out.append("" if unit.kind == "heading" else current)
            if unit.kind == "heading" and unit.text in self.marked:
                current = unit.text
        return out

    def around(self, keys: set[str], names: set[str]) -> set[str]:
        """Terms a sentence of this source may lean on: the document name's, the codes its document
        uses throughout ("10-Q"), the collection's subjects among the question's `names` ("Coda" in
        Coda's help centre), and the text's except the question's codes and numbers, which the
        answering sentence itself must hold ("E07" on one table row does not make the page's other
        sentences about E07)."""
        return (self.terms - keys) | self.name_terms | self.document_codes | (self.subjects & names)


class ExtractiveAnswerer:
    """Answers with a short passage of the sources: the best-supported sentences, each with
    the neighbours that complete it, every sentence followed by [n]; or abstains.

    An `Answerer` (core/stages.py): `answer()` gives the whole Answer, `stream()` the same text
    in pieces and then the Answer.
    """

    name = "extractive"

    def __init__(
        self, embedder: object, max_sentences: int = 3, threshold: float | None = None, max_words: int = MAX_WORDS
    ) -> None:
        if max_sentences <= 0:
            raise ValueError(f"max_sentences must be > 0 (got {max_sentences})")
        if max_words <= 0:
            raise ValueError(f"max_words must be > 0 (got {max_words})")
        self.embedder = embedder
        self.max_sentences = max_sentences
        self.max_words = max_words
        self.threshold = DEFAULT_THRESHOLD if threshold is None else threshold

    def rank_sentences(self, question: str, sources: list[ScoredChunk]) -> list[Candidate]:
        """Every sentence of the sources scored for the question, best first (near ties: the source
        ranked higher first, see RANK_TIE)."""
        return self._rank(question, self._read(sources))

    @staticmethod
    def _read(sources: list[ScoredChunk]) -> list[_Source]:
        read = []
        for chunk in sources:
            subjects = set(content_terms(" ".join(chunk.payload.get("collection_terms") or ())))
            read.append(_Source(
                text_units(chunk.text), set(content_terms(chunk.text)), set(content_terms(chunk.document)),
                set(content_terms(" ".join(chunk.payload.get("doc_terms") or ()))) | subjects,
                set(chunk.payload.get("doc_codes") or ()), name_periods(chunk.payload), _lead(chunk),
                marked_headings(chunk.text), subjects))
        return read

    def _rank(self, question: str, sources: list[_Source]) -> list[Candidate]:
        pieces: list[tuple[int, str, str, tuple[int, ...]]] = []  # (n, quoted text, scored text, span)
        for n, source in enumerate(sources, start=1):
            seen: set[str] = set()
            sections = source.sections()
            for text, span in _scored_units(source.units):
                if text in seen:
                    continue
                seen.add(text)
                # A row is read with its table's header, a sentence with its section's heading
                # ("Two-step verification": "Turn it on under Profile > Security"); a short label
                # alone ("E07") is no sentence, the heading would make it look like one.
                unit = source.units[span[0]]
                header = " ".join(source.units[h].text for h in unit.header) or (
                    sections[span[0]] if len(span) > 1 or not plain_label(unit.text, unit.kind) else "")
                pieces.append((n, text, f"{header} {text}" if header else text, span))
        if not pieces or not question.strip():
            return []
        language = get_settings().language
        question = respelled(asked(question, language), (p[2] for p in pieces), language)
        question_terms = content_terms(question)
        question_set = set(question_terms)
        keys = key_terms(question)
        names = question_names(question) - keys
        named = set().union(*(s.terms | s.name_terms | s.document_terms for s in sources)) & names
        expects = expected_answer_type(question)
        periods = periods_of(question_set)
        unit_terms = [counted(set(content_terms(scored)), keys, language) for _, _, scored, _ in pieces]
        held = set().union(*unit_terms, *(s.terms | s.name_terms | s.document_terms for s in sources))
        question_terms, question_set, speaking = _about_the_text(question, question_terms, held, unit_terms,
                                                                 [p[2] for p in pieces])
        names -= speaking
        # The collection's own subject named in the question ("Coda" in Coda's help centre) is what
        # every source is about: a sentence that happens to write it is no likelier to answer.
        subjects = set().union(*(s.subjects for s in sources)) & names & question_set
        if subjects and question_set - subjects:
            question_terms = [t for t in question_terms if t not in subjects]
            question_set -= subjects
        idf = _idf(question_set, unit_terms)
        if len(pieces) > EMBEDDED_PIECES:  # embedding is the answer step's cost: the likeliest only
            lex = [weighted_containment(question_terms, terms | sources[p[0] - 1].name_terms, idf, LEXICAL_TERMS)
                   for p, terms in zip(pieces, unit_terms, strict=True)]
            keep = sorted(sorted(range(len(pieces)), key=lambda i: -lex[i])[:EMBEDDED_PIECES])
            pieces = [pieces[i] for i in keep]
            unit_terms = [unit_terms[i] for i in keep]
        vectors = SENTENCE_VECTORS.embed(self.embedder, [question] + [scored for _, _, scored, _ in pieces])
        cosines = vectors[1:] @ vectors[0]
        candidates = []
        for (n, text, _, span), terms, vector, cosine in zip(pieces, unit_terms, vectors[1:], cosines, strict=True):
            lexical = weighted_containment(question_terms, terms, idf, LEXICAL_TERMS)
            # The question's words its source holds elsewhere (the company or period in the
            # document name, the subject a sentence before) count for part.
            around = weighted_containment(question_terms, terms | sources[n - 1].around(keys, names), idf, LEXICAL_TERMS)
            lexical += CONTEXT_CREDIT * (around - lexical)
            score = COSINE_WEIGHT * max(float(cosine), 0.0) + (1 - COSINE_WEIGHT) * lexical
            if keys:  # a code the document uses throughout ("10-Q" in its page headers) is held too
                source = sources[n - 1]
                found = len(keys & (terms | source.terms | source.name_terms | source.document_codes)) / len(keys)
                score *= MISSING_KEY_FLOOR + (1 - MISSING_KEY_FLOOR) * found
            if names:
                source = sources[n - 1]
                found = len(names & (terms | source.terms | source.name_terms | source.document_terms)) / len(names)
                floor = MISSING_NAME_FLOOR if names <= named else NOWHERE_NAME_FLOOR
                score *= floor + (1 - floor) * found
            if other_period(periods, sources[n - 1].periods):
                score *= OTHER_PERIOD_FACTOR
            if not _has_expected_type(expects, text, terms - question_set):
                score *= WRONG_TYPE_FACTOR
            if text.rstrip().endswith("?"):
                score *= QUESTION_FACTOR
            if not terms - question_set:
                score *= NOTHING_NEW_FACTOR
            elif _is_title(sources[n - 1].units, span, terms - question_set):
                score *= TITLE_FACTOR
            if len(text.split()) < 2 and sources[n - 1].units[span[0]].kind != "row":
                continue  # "Yes." under "Can I return an item?" says nothing alone (it still counts for the idf)
            candidates.append(Candidate(n, text, round(score, 4), vector, span))
        candidates.sort(key=lambda c: c.score + RANK_TIE * (1 - (c.n - 1) / len(sources)), reverse=True)
        return candidates

    def _choose(self, candidates: list[Candidate]) -> list[Candidate]:
        best = candidates[0]
        chosen = [best]
        floor = max(self.threshold, KEEP_RATIO * best.score)
        for candidate in candidates[1:]:
            if len(chosen) >= self.max_sentences or candidate.score < floor:
                break
            if any(_repeats(candidate, kept) for kept in chosen):
                continue
            chosen.append(candidate)
        return chosen

    def _passage(self, chosen: list[Candidate], sources: list[_Source], replies: bool = False,
                 ) -> list[tuple[int, list[int]]]:
        """(source number, unit positions in reading order) per source, in the order the
        sources first appear among `chosen`; the best candidate always, the others while the
        passage stays within `max_words`."""
        picked: dict[int, set[int]] = {}
        words = 0
        for rank, candidate in enumerate(chosen):
            units = sources[candidate.n - 1].units
            have = picked.get(candidate.n, set())
            wanted = completed(units, candidate.span, self.max_words, replies) - have
            extra = sum(units[i].words for i in wanted)
            if rank and words + extra > self.max_words:
                continue
            picked[candidate.n] = have | wanted
            words += extra
        return [(n, sorted(positions)) for n, positions in picked.items()]

    def answer(self, question: str, sources: list[ScoredChunk]) -> Answer:
        """The answer from `sources` (numbered 1..n in order), or NOT_FOUND_TEXT when support is weak."""
        read = self._read(sources)
        if sources and _opening(sources[0]) and overview_asked(question, get_settings().language):
            overview = self._overview(question, sources, read)
            if overview is not None:
                return overview
        candidates = self._rank(question, read)
        confidence = max((c.score for c in candidates), default=0.0)
        if not candidates or confidence < self.threshold:
            return Answer(text=NOT_FOUND_TEXT, abstained=True, provider=self.name, question=question,
                          confidence=confidence)
        chosen = self._choose(candidates)
        passage = self._passage(chosen, read, replies=bool(_YES_NO_QUESTION.match(question)))
        text = " ".join(
            piece for n, positions in passage for piece in _cited_pieces(read[n - 1].units, positions, n)
        )
        supporting = {c.n: c for c in reversed(chosen)}  # each source's best chosen sentence
        citations = []
        for n, _ in passage:
            chunk, best = sources[n - 1], supporting[n]
            citations.append(Citation(
                n=n,
                chunk_id=chunk.id,
                document=chunk.document,
                page=chunk.page,
                text=chunk.text,
                score=chunk.score,
                supporting_sentence=best.text,
                support=best.score,
                document_id=chunk.document_id,
            ))
        return Answer(
            text=text, citations=citations, provider=self.name, question=question, confidence=confidence,
        )

    def _overview(self, question: str, sources: list[ScoredChunk], read: list[_Source]) -> Answer | None:
        """What a text is about, in its own words: the first sentences of its opening (source 1, the
        document's first chunk; see answer/pipeline.py `open_with_opening`), headings, titles and
        table rows left out, within `max_words`. Its confidence is 1: the text says so itself. None
        when the opening holds no sentence."""
        units = read[0].units
        positions: list[int] = []
        words = 0
        for i, unit in enumerate(units):
            if unit.kind not in ("text", "item") or _title_like(unit) or _is_label(unit.text):
                continue
            if positions and words + unit.words > self.max_words:
                break
            positions.append(i)
            words += unit.words
        if not positions:
            return None
        chunk = sources[0]
        first = units[positions[0]].text
        citation = Citation(n=1, chunk_id=chunk.id, document=chunk.document, page=chunk.page, text=chunk.text,
                            score=chunk.score, supporting_sentence=first, support=1.0, document_id=chunk.document_id)
        return Answer(text=" ".join(_cited_pieces(units, positions, 1)), citations=[citation], provider=self.name,
                      question=question, confidence=1.0)

    def stream(self, question: str, sources: list[ScoredChunk]) -> AnswerStream:
        """The answer text in pieces, then `.answer`: the same Answer as `answer()`."""

        def pieces(stream: AnswerStream) -> Iterator[str]:
            answer = self.answer(question, sources)
            # The answer is ready at once; word groups let a UI show it as it shows LLM tokens.
            yield from word_pieces(answer.text)
            stream.finish(answer)

        return AnswerStream(pieces, sources=sources)


_NUMERIC_QUESTION = re.compile(
    r"^\W*(how (much|many|long|often|far|big|large|heavy|loud|old|fast|high|low|early|late|soon)|when|"
    r"(what|which) (year|date|day|time|temperature|size|price|amount|number|percentage))\b",
    re.IGNORECASE,
)
_PERSON_QUESTION = re.compile(r"^\W*(who|whom|whose)\b", re.IGNORECASE)
# "How much does it cost?", "What is the price of ...": a figure of money answers, not a model number.
_PRICE_QUESTION = re.compile(
    r"^\W*(how much (does|do|did|will|would|is|are|was|were)\b[^?]*\bcosts?\b(?!\s+of\b)|(what|which) (is|was|are|were) "
    r"the (price|cost|fee)s? (of|for)\b)",
    re.IGNORECASE,
)
_MONEY = re.compile(
    r"[$€£¥]|\b(?:eur|usd|gbp|chf|sek|nok|dkk|jpy|euros?|dollars?|pounds?|cents?|yen|francs?|kronor|kroner|free)\b",
    re.IGNORECASE,
)
_NUMBER_WORDS = frozenset(
    "once twice one two three four five six seven eight nine ten eleven twelve twenty thirty "
    "hundred thousand million daily weekly monthly yearly annually hourly half quarter".split()
)
_NAME = re.compile(r"(?<!^)(?<![.!?]\s)\b[A-Z][\w-]+")
# "Aurora Heat Pumps Oy" names the company the question named, not a new one.
_LEGAL_FORMS = frozenset({"oy", "oyj", "ab", "ag", "sa", "inc", "ltd", "llc", "plc", "gmbh", "corp", "co"})


def question_names(question: str) -> set[str]:
    """Terms of the names a question uses ("Apple's", "NVIDIA", "MERS-CoV"): capitalised words
    after its first, legal forms left out. None when capitals do not mark names: a question in
    title case, or in German (every noun is capitalised)."""
    found = _NAME.findall(question)
    title_case = sum(not content_terms(name) for name in found) >= 2  # "Is", "The", "To" capitalised
    if title_case or get_settings().language == "german":
        return set()
    return {t for name in found for t in content_terms(name) if t not in _LEGAL_FORMS}


def expected_answer_type(question: str) -> str | None:
    """"money" for what something costs, "number" for how much/many/long/often and when questions,
    "name" for who, else None."""
    if _PRICE_QUESTION.search(question):
        return "money"
    if _NUMERIC_QUESTION.search(question):
        return "number"
    if _PERSON_QUESTION.search(question):
        return "name"
    return None


def _has_expected_type(expects: str | None, text: str, new_terms: set[str]) -> bool:
    """Whether a sentence holds something of the kind asked for that the question did not say."""
    if expects == "number":  # a figure, not a name with digits in it ("COVID-19", "H1N1", "Q3")
        return any(t[:1].isdigit() for t in new_terms) or bool(
            _NUMBER_WORDS & {w.lower() for w in re.findall(r"[A-Za-z]+", text)}
        )
    if expects == "money":
        return bool(_MONEY.search(text))
    if expects == "name":  # a name ("Dr. Li"), or who someone is ("Only workspace admins can", "trained nurses")
        names = {term for name in _NAME.findall(text) for term in content_terms(name)} - _LEGAL_FORMS
        return bool((names | _people()) & new_terms)
    return True


# Who people are, as "who" questions are answered without a name: roles, groups, professions
# (English; compared as the answerer's terms, stemmed).
_PEOPLE = (
    "people person persons individual individuals anyone everyone someone nobody user users member members admin "
    "admins administrator administrators owner owners editor editors viewer viewers guest guests maker makers "
    "creator creators author authors manager managers employee employees staff worker workers team teams customer "
    "customers client clients patient patients nurse nurses doctor doctors physician physicians clinician "
    "clinicians surgeon surgeons technician technicians veterinarian veterinarians scientist scientists researcher "
    "researchers investigator investigators student students teacher teachers child children adult adults elderly "
    "infant infants men women man woman male males female females resident residents citizen citizens traveller "
    "travellers traveler travelers passenger passengers family families community communities population "
    "populations government governments authority authorities officer officers director directors executive "
    "executives founder founders partner partners shareholder shareholders investor investors board committee"
).split()


@cache
def _people_terms(language: str) -> frozenset[str]:
    return frozenset(content_terms(" ".join(_PEOPLE))) if language == "english" else frozenset()


def _people() -> frozenset[str]:
    return _people_terms(get_settings().language)


def _about_the_text(question: str, question_terms: list[str], held: set[str], unit_terms: list[set[str]],
                    texts: list[str]) -> tuple[list[str], set[str], set[str]]:
    """The question's terms as the sources can hold them, and the terms of the speaker it names
    that no source holds (`unit_terms` gain in place; `frame_question`). A text rarely names its
    own writer, reader or kind: those words weighed most, as words no sentence holds, and essays'
    answers were refused. A word for the text's writer ("What did the author work on?", "According
    to Paul Graham", when no source writes the name) is held by a sentence in the first person ("I
    worked on"), one for its reader ("How can a user reset it?") by a sentence in the second person
    ("you can"); such a word no source holds even so, and a word for the text itself or its telling
    ("the essay", "say"), is left out."""
    language = get_settings().language
    spoken = [persons(text, language) for text in texts]
    left_out, speaking = frame_question(question, set(question_terms), unit_terms, spoken, held, content_terms,
                                        language)
    question_terms = [t for t in question_terms if t not in left_out]
    return question_terms, set(question_terms), speaking


def _idf(terms: set[str], units: list[set[str]]) -> dict[str, float]:
    """Inverse document frequency of each term over the source sentences: words every sentence
    shares (the product's name) say little; question words no sentence holds weigh most."""
    total = len(units)
    return {t: math.log(1 + total / (1 + sum(t in u for u in units))) for t in terms}


_YEAR = re.compile(r"(?:fy)?((?:19|20)\d\d)")
_QUARTER = re.compile(r"q[1-4]")
_LONG_NUMBER = re.compile(r"\d{5,}")


def periods_of(words: set[str] | frozenset[str]) -> tuple[frozenset[str], frozenset[str]]:
    """The years ("2023", "fy2023" -> "2023") and quarters ("q3") among some words."""
    years = frozenset(m.group(1) for m in map(_YEAR.fullmatch, words) if m)
    return years, frozenset(w for w in words if _QUARTER.fullmatch(w))


def name_periods(payload: dict) -> tuple[frozenset[str], frozenset[str]]:
    """The years and quarters a document's file name gives ("2023 Q3 AMZN.pdf", "AAPL_10K_FY2022.pdf");
    none for a name holding a long number too ("2005.11401.pdf" is an identifier, not a year)."""
    words = name_words(payload)
    if any(_LONG_NUMBER.fullmatch(w) for w in words):
        return frozenset(), frozenset()
    return periods_of(words)


def other_period(asked: tuple[frozenset[str], frozenset[str]], named: tuple[frozenset[str], frozenset[str]]) -> bool:
    """Whether a document names only other years (or quarters) than the question asks for: both name
    some, and none in common."""
    return any(a and n and not a & n for a, n in zip(asked, named, strict=True))


def _repeats(candidate: Candidate, kept: Candidate) -> bool:
    if candidate.text in kept.text or kept.text in candidate.text:
        return True
    return float(candidate.vector @ kept.vector) > REDUNDANT_COSINE


# A sentence opening with one of these leans on the one before ("It", "This increase", "Such
# cases"): quoted alone it does not say what it is about.
_LEANS_BACK = re.compile(
    r"^\W*(it|its|this|these|that|those|they|their|them|such|he|she|his|her|both|however|moreover|"
    r"furthermore|therefore|thus|hence|in addition|also|additionally|similarly|in contrast)\b",
    re.IGNORECASE,
)
_LEAN_BACK_STEPS = 2  # at most this many sentences before
# A reply an FAQ gives before its explanation ("Can I star docs for everyone?" "No. Starring only ..."):
# quoted with the sentence after it when the question asks yes or no, never alone (one word says
# nothing alone). English.
_YES_NO_QUESTION = re.compile(r"^\W*(?:can|could|do|does|did|is|are|was|were|will|would|should|shall|may|might|must|"
                              r"has|have|had|am)\b", re.IGNORECASE)
_SHORT_REPLY = re.compile(r"^(?:yes|no|not (?:yet|directly|currently|always|exactly|really)|it depends)[.!]$",
                          re.IGNORECASE)


def _opening(chunk: ScoredChunk) -> bool:
    """Whether a chunk is its document's first."""
    return chunk.payload.get("chunk_index") == 0


def _lead(chunk: ScoredChunk) -> str:
    """The heading a chunk starts under (its payload's heading path) when its text does not hold it;
    none from a PDF's outline, which names navigation ("Cover") as often as topics (ingest/pipeline.py)."""
    if chunk.payload.get("file_type") == "pdf":
        return ""
    path = chunk.payload.get("heading_path") or ()
    return path[-1] if path and path[-1] not in chunk.text else ""


_SECTION_NUMBER = re.compile(r"^\d+(?:\.\d+)*\.?\s+")


def _states_a_figure(heading: str) -> bool:
    """Whether a heading holds a figure beyond its section number: "Version 2.4.0 (14 March 2024)"
    answers when it was released; "3.1 Placement" or "Delete your account" only name a topic."""
    return any(ch.isdigit() for ch in _SECTION_NUMBER.sub("", heading))


def _scored_units(units: list[TextUnit]) -> list[tuple[str, tuple[int, ...]]]:
    """(text, span) of the units worth scoring: sentences, rows (not a table's header row) and
    headings stating a figure, and a short label read with the unit after it (PDF tables put "E07"
    on one line, its meaning on the next)."""
    heads = {h for u in units if u.kind == "row" for h in u.header}  # a table's header row names columns
    scored = [(u.text, (i,)) for i, u in enumerate(units)
              if (u.kind != "heading" or _states_a_figure(u.text)) and not (u.kind == "row" and i in heads)]
    for i, (label, value) in enumerate(zip(units, units[1:], strict=False)):
        if "heading" in (label.kind, value.kind) or label.kind == "row" or label.header:
            continue
        if _is_label(label.text) and not value.text.endswith(TERMINAL):
            scored.append((f"{label.text} {value.text}", (i, i + 1)))
    return scored


def _is_title(units: list[TextUnit], span: tuple[int, ...], new_terms: set[str]) -> bool:
    """Whether a candidate is one short line of prose without a full stop (or of two words, "Apple
    Inc.") and without a figure the question lacks: a document or section title ("Aurora AHP-9 -
    User Manual"), a company's name."""
    unit = units[span[0]]
    return (
        len(span) == 1 and _title_like(unit)
        and not any(ch.isdigit() for term in new_terms for ch in term)
    )


def _title_like(unit: TextUnit) -> bool:
    return unit.kind == "text" and (unit.words <= NAME_WORDS
                                    or (unit.words <= TITLE_WORDS and not unit.text.endswith(TERMINAL)))


def _is_label(text: str) -> bool:
    """A table label such as "E07": a few words, no sentence punctuation."""
    return len(text.split()) <= LABEL_WORDS and not text.endswith(TERMINAL)


def completed(units: list[TextUnit], span: tuple[int, ...], budget: int = MAX_WORDS, replies: bool = False,
              ) -> set[int]:
    """The positions a quote of `span` needs to be read alone: a table row's header, the
    sentence(s) before one that leans back on them ("It ...", "These ...") and the short reply
    ("No.", "Not directly.") before those when `replies` (a yes-or-no question), a list's steps with
    the sentence that opens them, for a step or that sentence, and the code a sentence ending in
    ":" announces (while within `budget` words)."""
    positions = set(span)
    first = min(span)
    positions.update(units[first].header)
    i = first
    for _ in range(_LEAN_BACK_STEPS):
        if i == 0 or units[i].kind != "text" or not _LEANS_BACK.match(units[i].text):
            break
        if units[i - 1].kind != "text" or _title_like(units[i - 1]):
            break  # a title above is not the sentence "This ..." leans on
        i -= 1
        positions.add(i)
    if replies and i > 0 and units[i - 1].kind == "text" and _SHORT_REPLY.match(units[i - 1].text):
        positions.add(i - 1)  # "No." / "Not directly." before the sentence that explains it: the reply itself
    last = max(span)
    steps = _steps(units, last, budget - sum(units[p].words for p in positions))
    if units[last].text.endswith(":"):  # "To install it, run:" needs the code it announces
        words = sum(units[p].words for p in positions)
        after = last + 1
        while after < len(units) and units[after].kind == "code" and words + units[after].words <= budget:
            positions.add(after)
            words += units[after].words
            after += 1
    return positions | steps


def _steps(units: list[TextUnit], last: int, budget: int) -> set[int]:
    """The list a step at `last` belongs to, or that the sentence at `last` opens, from its first
    step on while the steps fit in `budget` words, with the sentence that opens it. A bulleted
    list is a procedure when most of its items start with a command ("Open", "Click"; `_procedure`);
    an item of another one (separate facts, "Fixes: • ...", or the clauses of one sentence, "such
    as: • changes in interest rates; • ...") comes with the sentence opening the list alone."""
    if units[last].kind != "item" and not (last + 1 < len(units) and units[last + 1].kind == "item"):
        return set()
    first = last + 1 if units[last].kind != "item" else last
    numbered = bool(_STEP_NUMBER.match(units[first].text))  # a numbered list next to a bulleted one is another list

    def same_list(i: int) -> bool:
        return units[i].kind == "item" and bool(_STEP_NUMBER.match(units[i].text)) == numbered

    while first > 0 and same_list(first - 1):
        first -= 1
    steps: set[int] = set()
    opened_by = first - 1 if first > 0 and units[first - 1].kind == "text" and not _title_like(units[first - 1]) else None
    if units[last].kind == "item" and not numbered and not _procedure(units, first):
        return {opened_by} if opened_by is not None else set()  # one point, with the sentence opening the list
    if opened_by is not None:
        steps.add(opened_by)  # "To reset it:", "If you forgot it, reset it from the sign-in page."
    words = sum(units[p].words for p in steps if p != last)
    i = first
    while i < len(units) and same_list(i):
        if i != last and words + units[i].words > budget:
            break
        steps.add(i)
        words += units[i].words if i != last else 0
        i += 1
    return steps


# The verbs a step of a procedure starts with ("Open Settings", "Click Change"): a bulleted list
# whose items mostly start with one is quoted whole, like a numbered one.
_COMMANDS = frozenset(
    "add allow apply attach back browse call cancel change check choose clear click close configure confirm "
    "connect contact copy create delete disable disconnect download drag drop edit empty enable enter "
    "find follow go hold insert install launch log make move navigate note open paste pick plug press "
    "print put read reboot register reinstall remove rename replace reset restart restore return run "
    "save scan scroll search select send set share sign specify start stop submit switch tap turn type "
    "uncheck uninstall unplug update upgrade upload use verify visit wait".split()
)


def _procedure(units: list[TextUnit], first: int) -> bool:
    """Whether most items of the bulleted list from `first` start with a command."""
    starts = []
    i = first
    while i < len(units) and units[i].kind == "item":
        word = re.match(r"\W*([A-Za-z]+)", units[i].text)
        starts.append(bool(word) and word.group(1).lower() in _COMMANDS)
        i += 1
    return sum(starts) * 2 > len(starts)


def _cells(text: str) -> list[str]:
    return [cell.strip() for cell in text.strip().strip("|").split("|")]


def _paired_row(units: list[TextUnit], i: int) -> str | None:
    """A Markdown table row read with its header, "Plan: Team; Price: $29/month; Seats: 10", when
    its header is one pipe row with as many cells; None otherwise."""
    unit = units[i]
    if unit.kind != "row" or len(unit.header) != 1 or not pipe_row(unit.text):
        return None
    header = units[unit.header[0]]
    names, cells = _cells(header.text), _cells(unit.text)
    if not pipe_row(header.text) or len(names) != len(cells) or len(cells) < 2:
        return None
    return quotable("; ".join(f"{name}: {cell}" if name else cell for name, cell in zip(names, cells, strict=True)
                              if cell))


# A source's own numbered references ("onset [7] ,", "[59, 62]") read as this answer's
# citations: quotes leave them out.
_SOURCE_REFERENCE = re.compile(r"\s*\[\d+(?:\s*[-–,]\s*\d+)*\]")
_STEP_NUMBER = re.compile(r"^\s*(\d{1,2})[.)]\s+")
_SPACE_BEFORE_PUNCTUATION = re.compile(r"\s+([.,;:!?)])")
# Markup a document may hold to pass for the prompt's source blocks ("</source><source n=9 ...>").
_SOURCE_TAG = re.compile(r"</?\s*source\b[^>]*>", re.IGNORECASE)


def quotable(text: str) -> str:
    """A source sentence as the answer quotes it: without the source's numbered references and
    without tags that imitate the source blocks of a prompt, its Markdown as read (`readable`: link
    targets, bold markers and inline HTML tags left out, a bold "**Forgot password?**" quoted), a
    line-end hyphen as the page shows it."""
    text = readable(as_shown(text))
    if "[" not in text and "<" not in text:
        return text
    text = _SOURCE_TAG.sub(" ", text)
    return " ".join(_SPACE_BEFORE_PUNCTUATION.sub(r"\1", _SOURCE_REFERENCE.sub("", text)).split())


def _cited_pieces(units: list[TextUnit], positions: list[int], n: int) -> list[str]:
    """The units at `positions` as answer pieces, each sentence or row followed by [n]; short
    labels (a table's column header, "Net sales:") run on into the unit after them."""
    pieces: list[str] = []
    pending: list[str] = []
    paired = {i: _paired_row(units, i) for i in positions}
    absorbed = {h for i in positions if paired[i] for h in units[i].header}  # headers read into their rows
    for index, i in enumerate(positions):
        unit = units[i]
        if i in absorbed and not paired[i]:
            continue
        text = paired[i] or quotable(unit.text)
        # "1. Open ..." after a marker reads as a sentence ending in "1.": a step is quoted "(1) Open ...".
        pending.append(_STEP_NUMBER.sub(r"(\1) ", text) if unit.kind == "item" else text)
        nxt = positions[index + 1] if index + 1 < len(positions) else None
        if nxt is not None and plain_label(unit.text, unit.kind) and (
            units[nxt].kind == "row" or (nxt == i + 1 and _is_label(unit.text))
        ):
            continue
        # A row or list item may hold several sentences: each is cited, as the answer's are read.
        pieces.extend(f"{sentence} [{n}]" for sentence in prose_sentences(" ".join(pending)) or pending)
        pending = []
    return pieces
