"""ExtractiveAnswerer: answers with the source sentences that best answer the question, each
cited, and abstains when none is close enough. No key, no network, no generated text.

Source text is only ever quoted: a sentence such as "ignore previous instructions" can appear
in an answer only when it is the best answer to the question asked.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from answer.grounding import (
    SENTENCE_VECTORS,
    content_terms,
    evidence_units,
    key_terms,
    weighted_containment,
)
from core.stages import AnswerStream, word_pieces
from core.types import NOT_FOUND_TEXT, Answer, Citation, ScoredChunk

# A sentence's relevance = COSINE_WEIGHT * cosine(question, sentence) + the rest * the share of
# the question's content words it holds (numbers count double), then adjusted below.
COSINE_WEIGHT = 0.55
TOP_SOURCE_BONUS = 0.05  # the retriever (or reranker) put this source first: a tie-breaker
MISSING_KEY_FLOOR = 0.5  # a source lacking the question's numbers/codes ("AHP-12", "2.4.0") keeps half
QUESTION_FACTOR = 0.8  # a sentence ending in "?" restates a question, it does not answer one
NOTHING_NEW_FACTOR = 0.7  # a sentence with no content word beyond the question's adds nothing
WRONG_TYPE_FACTOR = 0.75  # "how much/when" needs a number the question lacks, "who" a new name
KEEP_RATIO = 0.9  # further sentences must score within 90 % of the best one
REDUNDANT_COSINE = 0.85  # a sentence this close to one already chosen says the same

# Default abstention threshold on the score of the best sentence. Chosen on the project's
# sample set: the 25 questions of data/questions.jsonl over data/documents, ingested with the
# default settings (sentence chunks of 200 tokens, hybrid search, top 5, no reranker). The 21
# answerable questions scored 0.54-0.97 (lowest: "What does error code E07 mean?", a PDF table
# row), the 4 unanswerable ones 0.29-0.48 (highest: "Who is the chief executive officer of
# Aurora Heat Pumps?"). The threshold is the middle of that gap. 25 questions are few:
# recalibrate on your own questions (`rank_sentences` gives the scores).
DEFAULT_THRESHOLD = 0.51


@dataclass
class Candidate:
    """One sentence of one source, scored for a question."""

    n: int  # the source's number, 1-based
    text: str
    score: float
    vector: np.ndarray


class ExtractiveAnswerer:
    """Quotes the 1-`max_sentences` best-supported source sentences, each followed by [n].

    An `Answerer` (core/stages.py): `answer()` gives the whole Answer, `stream()` the same text
    in pieces and then the Answer.
    """

    name = "extractive"

    def __init__(self, embedder: object, max_sentences: int = 3, threshold: float | None = None) -> None:
        if max_sentences <= 0:
            raise ValueError(f"max_sentences must be > 0 (got {max_sentences})")
        self.embedder = embedder
        self.max_sentences = max_sentences
        self.threshold = DEFAULT_THRESHOLD if threshold is None else threshold

    def rank_sentences(self, question: str, sources: list[ScoredChunk]) -> list[Candidate]:
        """Every sentence of the sources scored for the question, best first."""
        units: list[tuple[int, str]] = []
        chunk_terms: dict[int, set[str]] = {}
        for n, chunk in enumerate(sources, start=1):
            chunk_terms[n] = set(content_terms(chunk.text))
            units.extend((n, text) for text in dict.fromkeys(evidence_units(chunk.text, headings=False)))
        if not units or not question.strip():
            return []
        question_terms = content_terms(question)
        question_set = set(question_terms)
        keys = key_terms(question)
        expects = expected_answer_type(question)
        vectors = SENTENCE_VECTORS.embed(self.embedder, [question] + [text for _, text in units])
        cosines = vectors[1:] @ vectors[0]
        unit_terms = [set(content_terms(text)) for _, text in units]
        idf = _idf(question_set, unit_terms)
        candidates = []
        for (n, text), terms, vector, cosine in zip(units, unit_terms, vectors[1:], cosines, strict=True):
            lexical = weighted_containment(question_terms, terms, idf)
            score = COSINE_WEIGHT * max(float(cosine), 0.0) + (1 - COSINE_WEIGHT) * lexical
            if keys:
                found = len(keys & (terms | chunk_terms[n])) / len(keys)
                score *= MISSING_KEY_FLOOR + (1 - MISSING_KEY_FLOOR) * found
            if not _has_expected_type(expects, text, terms - question_set):
                score *= WRONG_TYPE_FACTOR
            if text.rstrip().endswith("?"):
                score *= QUESTION_FACTOR
            if not terms - question_set:
                score *= NOTHING_NEW_FACTOR
            if n == 1:
                score += TOP_SOURCE_BONUS
            candidates.append(Candidate(n, text, round(score, 4), vector))
        candidates.sort(key=lambda c: c.score, reverse=True)
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

    def answer(self, question: str, sources: list[ScoredChunk]) -> Answer:
        """The answer from `sources` (numbered 1..n in order), or NOT_FOUND_TEXT when support is weak."""
        candidates = self.rank_sentences(question, sources)
        confidence = candidates[0].score if candidates else 0.0
        if not candidates or confidence < self.threshold:
            return Answer(text=NOT_FOUND_TEXT, abstained=True, provider=self.name, question=question,
                          confidence=confidence)
        chosen = self._choose(candidates)
        text = " ".join(f"{c.text} [{c.n}]" for c in chosen)
        citations: dict[int, Citation] = {}
        for candidate in chosen:
            if candidate.n in citations:
                continue
            chunk = sources[candidate.n - 1]
            citations[candidate.n] = Citation(
                n=candidate.n,
                chunk_id=chunk.id,
                document=chunk.document,
                page=chunk.page,
                text=chunk.text,
                score=chunk.score,
                supporting_sentence=candidate.text,
                support=candidate.score,
                document_id=chunk.document_id,
            )
        return Answer(
            text=text, citations=list(citations.values()), provider=self.name, question=question,
            confidence=confidence,
        )

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
_NUMBER_WORDS = frozenset(
    "once twice one two three four five six seven eight nine ten eleven twelve twenty thirty "
    "hundred thousand million daily weekly monthly yearly annually hourly half quarter".split()
)
_NAME = re.compile(r"(?<!^)(?<![.!?]\s)\b[A-Z][\w-]+")


def expected_answer_type(question: str) -> str | None:
    """"number" for how much/many/long/often and when questions, "name" for who, else None."""
    if _NUMERIC_QUESTION.search(question):
        return "number"
    if _PERSON_QUESTION.search(question):
        return "name"
    return None


def _has_expected_type(expects: str | None, text: str, new_terms: set[str]) -> bool:
    """Whether a sentence holds something of the kind asked for that the question did not say."""
    if expects == "number":
        return any(any(ch.isdigit() for ch in t) for t in new_terms) or bool(
            _NUMBER_WORDS & {w.lower() for w in re.findall(r"[A-Za-z]+", text)}
        )
    if expects == "name":
        names = {term for name in _NAME.findall(text) for term in content_terms(name)}
        return bool(names & new_terms)
    return True


def _idf(terms: set[str], units: list[set[str]]) -> dict[str, float]:
    """Inverse document frequency of each term over the source sentences: words every sentence
    shares (the product's name) say little; question words no sentence holds weigh most."""
    total = len(units)
    return {t: math.log(1 + total / (1 + sum(t in u for u in units))) for t in terms}


def _repeats(candidate: Candidate, kept: Candidate) -> bool:
    if candidate.text in kept.text or kept.text in candidate.text:
        return True
    return float(candidate.vector @ kept.vector) > REDUNDANT_COSINE
