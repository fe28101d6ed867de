"""Sentences of a chunk and the question's words they hold: the second-stage score of a candidate.

Retrieval ranks whole chunks; the passage that answers is often one sentence of a chunk that also
talks about other things. `best_sentence_scores` gives each chunk the score of its best sentence:
the share of the question's content words (stemmed, stopwords out) that the sentence holds, each
word weighted by how rare it is among the candidates' sentences, numbers counting double.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from core.language import (
    counted,
    frame_question,
    full_form,
    persons,
    respelled,
    sentence_tokenizer,
    spelled_out,
    stopwords,
)
from core.markup import readable

_TOKEN = re.compile(r"[^\W_]+(?:[-/.,'’][^\W_]+)*")
_PARAGRAPH = re.compile(r"\n\s*\n")
CONTEXT_CREDIT = 0.5  # a question word only the document's name, title or codes hold counts half
NUMBER_WEIGHT = 2.0  # a number or code in the question ("2019", "H1N1") is the strongest cue
# Words that only shape a question ("how much", "what does X mean"): never evidence.
_QUESTION_WORDS = frozenset("much many long often kind sort mean means meaning according".split())


def _punkt() -> Any:
    return sentence_tokenizer()


@lru_cache(maxsize=1)
def _stopwords() -> frozenset[str]:
    return stopwords("english") | _QUESTION_WORDS


@lru_cache(maxsize=1)
def _stemmer() -> Any:
    from nltk.stem.snowball import SnowballStemmer

    return SnowballStemmer("english")


@lru_cache(maxsize=1 << 16)
def _stem(token: str) -> str:
    if any(ch.isdigit() for ch in token):
        return token.replace("-", "")  # "AHP-9" and "AHP9" are one model name
    return str(_stemmer().stem(full_form(token)))


def split_sentences(text: str) -> list[str]:
    """The sentences of a chunk: paragraphs apart, the lines of a paragraph joined (PDF text wraps
    lines), punkt inside each. A table without full stops stays one unit."""
    sentences: list[str] = []
    for paragraph in _PARAGRAPH.split(text):
        joined = " ".join(readable(paragraph).split())  # Markdown as read: a link's address is no word
        if joined:
            sentences.extend(s for s in _punkt().tokenize(joined) if s.strip())
    return sentences


def content_terms(text: str) -> list[str]:
    """Stemmed, lower-case words of a text without stopwords; hyphenated words also give their parts."""
    stop = _stopwords()
    terms: list[str] = []
    for token in _TOKEN.findall(spelled_out(text).lower().replace("’", "'")):
        if token in stop:
            continue
        terms.append(_stem(token))
        if "-" in token and not any(ch.isdigit() for ch in token):
            terms.extend(_stem(part) for part in token.split("-") if part and part not in stop)
    return terms


@lru_cache(maxsize=8192)  # the same candidates come back for related questions
def _sentence_terms(text: str) -> tuple[frozenset[str], ...]:
    """The content words of each sentence of a text."""
    return tuple(frozenset(content_terms(s)) for s in split_sentences(text) or [text])


@lru_cache(maxsize=8192)
def _persons(text: str) -> tuple[frozenset[str], ...]:
    """The persons each sentence of a text speaks as or to ("writer": "I", "reader": "you")."""
    return tuple(persons(s) for s in split_sentences(text) or [text])


def _weight(term: str, idf: dict[str, float]) -> float:
    return idf.get(term, 1.0) * (NUMBER_WEIGHT if any(ch.isdigit() for ch in term) else 1.0)


def best_sentence_scores(question: str, texts: Sequence[str], contexts: Sequence[str] | None = None,
                         context_credit: float = CONTEXT_CREDIT) -> list[float]:
    """For each text, the best score of its sentences: the weighted share of the question's
    content words the sentence holds (0..1). A word's weight is log(1 + n / (1 + df)) over the n
    sentences of all the texts, doubled for numbers; a question without content words scores 0.

    `contexts` (one per text: its document's name, title and codes) hold words every sentence of
    the text has around it: a question word found only there counts `context_credit` of its weight.
    "Intel's revenue in the Q3 2023 10-Q" then ranks the revenue sentence of the Intel Q3 filing
    above a revenue sentence of another company's, which the words of the sentence alone tie."""
    question = respelled(question, texts)  # "carageenan": the candidates' "carrageenan"
    wanted = set(content_terms(question))
    figures = {w for w in wanted if w.isdigit()}  # "3" is held by a sentence writing "three"
    sentence_terms = [[counted(terms, figures) & wanted for terms in _sentence_terms(t)] for t in texts]
    every = [terms for per_text in sentence_terms for terms in per_text]
    present = set().union(*every)
    if contexts:
        present |= set().union(*(set(content_terms(c)) for c in contexts))
    # As the answerer reads them (core/language.py `frame_question`): "the author" (or a speaker's
    # name no source holds) is held by a sentence in the first person, "the essay" is left out when
    # none holds it.
    spoken = [person for t in texts for person in _persons(t)]
    left_out, _ = frame_question(question, wanted, every, spoken, present, content_terms)
    wanted -= left_out
    if left_out & present:  # "the essay" a source writes: no longer a word its sentences hold
        sentence_terms = [[terms - left_out for terms in per_text] for per_text in sentence_terms]
        every = [terms for per_text in sentence_terms for terms in per_text]
    if not wanted or not every:
        return [0.0] * len(texts)
    idf = {w: math.log(1 + len(every) / (1 + sum(w in terms for terms in every))) for w in wanted}
    total = sum(_weight(w, idf) for w in wanted)
    around = [set(content_terms(c)) & wanted for c in contexts] if contexts else [set()] * len(texts)
    return [
        max(((sum(_weight(w, idf) for w in terms) + context_credit * sum(_weight(w, idf) for w in held - terms))
             / total for terms in per_text), default=0.0)
        for per_text, held in zip(sentence_terms, around, strict=True)
    ]
