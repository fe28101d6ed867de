"""Document boosts after fusion: plug-ins that raise the chunks of the documents a question points at.

The settings name the plug-ins to run, in order (`RAG_RETRIEVAL_BOOSTS=names,codes,recency`), and
their strengths; `build_boosts` turns them into boosts, `apply_boosts` runs them over the fused list.
A boost scores each candidate document in [0, 1] (`DocumentBoost.scores`) and each chunk's rank score
1 / (k + rank) is multiplied by 1 + strength x its document's score; the next boost starts from
that order. A boost with nothing to say (no named document, no "latest" in the question) leaves the
list as it was.

- `names`: words of the question in a candidate's file name (`FileNameWords`).
- `codes`: codes in file names ("INTC") answer to the word their documents use for them ("Intel")
  (`CodeAliases`). They feed the same name score as `names` (one `NameBoost`, strength
  `name_boost`): a filing named by company and quarter must beat one named by only one of them.
- `recency`: questions asking for the latest rank newer documents higher (`RecencyBoost`).

Tuned on the dev splits, reported on the test splits: `rag eval DIR --split dev|test --no-answers
--no-starter`, document level, hit@1 / hit@5 / MRR@10, each plug-in turned off in turn
(RAG_RETRIEVAL_BOOSTS without it):

| boosts | docugami dev (99) | docugami test (96) |
|---|---|---|
| names,codes,recency (default) | 0.869 / 0.990 / 0.919 | 0.792 / 0.979 / 0.874 |
| codes,recency (names off) | 0.596 / 0.990 / 0.760 | 0.615 / 0.979 / 0.762 |
| names,recency (codes off) | 0.798 / 0.960 / 0.871 | 0.750 / 0.979 / 0.847 |
| names,codes (recency off) | 0.818 / 0.990 / 0.886 | 0.740 / 0.979 / 0.835 |
| none | 0.495 / 0.939 / 0.682 | 0.500 / 0.958 / 0.679 |

COVID-QA (numbered, undated text files) gave the same figures with every combination (dev 0.739 /
0.888 / 0.802, test 0.752 / 0.915 / 0.823), the samples too (dev 1.0 throughout: help-desk style
names without codes, no "latest" questions). Strengths on docugami dev: name boost 2 / 3 / 4 / 6
gave MRR@10 0.911 / 0.919 / 0.928 / 0.930 (3 kept: one question at hit@1); code weight 0.5 / 1 / 2
the same figures; recency 1 / 1.5 / 2 / 4 gave 0.919 / 0.946 / 0.957 / 0.962 (test at 2: 0.812 /
0.979 / 0.894). Recency stays at 1: the gain is docugami's "latest 10-Q" questions alone, and on
sets where "latest" is about the content (research papers: "the latest model") a boost of 2 pulls
in the newest document from about twice as far down the list (rank 12 instead of 6 beats rank 1).
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import PurePosixPath
from typing import ClassVar, Protocol, get_args

from core.language import DEFAULT_LANGUAGE, latest_cue, stopwords
from core.settings import BoostName
from core.types import ScoredChunk

BOOST_NAMES: tuple[str, ...] = get_args(BoostName)
_WORD = re.compile(r"[a-z0-9]+")
_CODE = re.compile(r"(?<![A-Za-z0-9])[A-Z]{2,6}(?![A-Za-z0-9])")  # "INTC" in "2023_Q1_INTC", not "Q1"
_DIGITS = re.compile(r"[0-9]+")
MIN_NAME_WORDS = 2
# A document matching only part of what the best-named one matches gets (share) ** 4 of the boost:
# a filing naming the company but another quarter must not rank with the one naming both.
NAME_SHARPNESS = 4.0
ALIAS_RATIO = 5.0  # an alias is used this many times more (per word) in its code's documents
MIN_CODES_PER_PATTERN = 2  # file names alike but for their codes: the codes tell documents apart


class DocumentBoost(Protocol):
    """Scores the candidate documents of a question; `apply_boosts` turns scores into ranks."""

    name: str
    strength: float

    def scores(self, query: str, documents: Mapping[str, dict]) -> dict[str, float]:
        """Per document id (`documents`: id -> the payload of its best chunk): a score in [0, 1]."""
        ...


class NameSource(Protocol):
    """Words a document's name answers to, for `NameBoost`."""

    alone: bool  # one word of this source in the question names a document by itself
    weight: float  # what one of its words counts in the name score

    def words(self, documents: Mapping[str, dict]) -> dict[str, set[str]]:
        """Per document id: the words its name answers to."""
        ...


# -- names ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FileNameWords:
    """Plug-in `names`: the words of a document's folders and file stem ("2023 Q1 INTC.pdf":
    2023, q1, intc). Titles stay out: "Form 10-Q" and filing dates in some titles pulled every
    "10-Q" question to those filings (docugami, dense + boost: MRR@10 0.76 instead of 0.82).

    Measured on docugami dev (20 SEC filings named "2023 Q1 INTC.pdf", 99 questions), with codes and
    recency on: hit@1 / hit@5 / MRR@10 0.596 / 0.990 / 0.760 without it, 0.869 / 0.990 / 0.919 with
    it ("Intel's Q1 2023": the right company in the wrong quarter was most misses). COVID-QA
    (numbered files) and the samples did not move."""

    language: str = DEFAULT_LANGUAGE
    alone: ClassVar[bool] = False
    weight: ClassVar[float] = 1.0

    def words(self, documents: Mapping[str, dict]) -> dict[str, set[str]]:
        stop = stopwords(self.language)
        return {doc: name_words(payload, stop) for doc, payload in documents.items()}


@dataclass(frozen=True)
class CodeAliases:
    """Plug-in `codes`: a code in capitals in a file name ("INTC") answers to the word its documents
    use for it ("intel"; `code_aliases`), and one such word names the document on its own.

    Counted only with evidence: other candidates' names follow the same pattern with other codes
    ("2023 Q1 AMZN.pdf"), and a word of the code's documents, starting with its first letter, is
    used ALIAS_RATIO times more there than elsewhere. "FAQ.md" or "API-guide.md" is no ticker.
    Measured on docugami dev (questions say "Intel", files "INTC"), names and recency on: 0.798 /
    0.960 / 0.871 without it, 0.869 / 0.990 / 0.919 with it. Files without codes (COVID-QA, the
    samples) do not move; `weight` 0.5 or 2 gave the same docugami figures."""

    weight: float = 1.0  # what an alias word counts against a word of the file name
    alone: ClassVar[bool] = True

    def words(self, documents: Mapping[str, dict]) -> dict[str, set[str]]:
        return dict(code_aliases(documents))


@dataclass(frozen=True)
class NameBoost:
    """How much of the question a candidate's name holds (`name_scores`), from its name sources
    (`names`, `codes`); strength `name_boost` (3: a chunk of the best-named document at rank 18
    then outranks an unnamed one at rank 1)."""

    strength: float
    sources: tuple[NameSource, ...]
    language: str = DEFAULT_LANGUAGE
    name: str = "names"

    def scores(self, query: str, documents: Mapping[str, dict]) -> dict[str, float]:
        return name_scores(query, documents, self.sources, self.language)


@dataclass(frozen=True)
class RecencyBoost:
    """Plug-in `recency`: when the question asks for the latest ("most recent 10-Q"), documents
    score by their own date (PDF or DOCX metadata) among the dated candidates: oldest 0, newest 1.

    Measured on docugami dev (about a quarter of the questions ask for the latest 10-Q), names and
    codes on: 0.818 / 0.990 / 0.886 without it, 0.869 / 0.990 / 0.919 with it (strength 1). COVID-QA
    (undated text files) did not move. File dates from the file system are not used: copying a file
    changes them. Only English has a cue (core/language.py): other languages are left alone."""

    strength: float
    language: str = DEFAULT_LANGUAGE
    name: str = "recency"

    def scores(self, query: str, documents: Mapping[str, dict]) -> dict[str, float]:
        cue = latest_cue(self.language)
        if cue is None or not cue.search(query):
            return {}
        return recency_scores(documents)


def build_boosts(
    names: Sequence[str],
    *,
    name_boost: float,
    recency_boost: float,
    code_weight: float = 1.0,
    language: str = DEFAULT_LANGUAGE,
) -> tuple[DocumentBoost, ...]:
    """The boosts the settings name, in their order; `names` and `codes` share one name boost."""
    unknown = [n for n in names if n not in BOOST_NAMES]
    if unknown:
        raise ValueError(f"Unknown retrieval boost {unknown[0]!r}: use {', '.join(BOOST_NAMES)}.")
    boosts: list[DocumentBoost] = []
    for name in dict.fromkeys(names):
        if name in ("names", "codes") and not any(isinstance(b, NameBoost) for b in boosts):
            sources: list[NameSource] = []
            if "names" in names:
                sources.append(FileNameWords(language))
            if "codes" in names:
                sources.append(CodeAliases(code_weight))
            boosts.append(NameBoost(name_boost, tuple(sources), language))
        elif name == "recency":
            boosts.append(RecencyBoost(recency_boost, language))
    return tuple(boosts)


def apply_boosts(query: str, ranked: Sequence[ScoredChunk], boosts: Sequence[DocumentBoost], k: float
                 ) -> list[ScoredChunk]:
    """The fused chunks re-ranked by each boost in turn: rank score 1 / (k + rank) times
    (1 + strength x document score). Boosts of strength 0, or with no score above 0, change nothing."""
    hits = list(ranked)
    for boost in boosts:
        if boost.strength <= 0 or not hits:
            continue
        scores = boost.scores(query, documents_of(hits))
        if any(scores.values()):
            hits = _boost_documents(hits, scores, boost.strength, k)
    return hits


def documents_of(chunks: Sequence[ScoredChunk]) -> dict[str, dict]:
    """Document id -> the payload of its first (best-ranked) chunk, in rank order."""
    documents: dict[str, dict] = {}
    for chunk in chunks:
        documents.setdefault(_doc_key(chunk), chunk.payload)
    return documents


# -- name scores --------------------------------------------------------------------------------


def name_words(payload: dict, stop: frozenset[str] | None = None) -> set[str]:
    """The words of a chunk's document name: the folders and file stem of its source, without
    stopwords (English unless `stop` is given)."""
    stop = stopwords(DEFAULT_LANGUAGE) if stop is None else stop
    return set(_name_words(_source(payload), stop))


def name_codes(payload: dict) -> set[str]:
    """Words of 2-6 letters written in capitals in a document's file stem ("INTC", "FAQ")."""
    return {code for code, _ in _stem_codes(_source(payload))}


def distinguishing_codes(documents: Mapping[str, dict]) -> dict[str, set[str]]:
    """Per document id: the codes of its file stem that tell documents apart, i.e. whose place in
    the name (the stem with that code as a blank, digits as #) other candidates fill with other
    codes: INTC in "2023 Q1 INTC" beside "2023 Q2 AMZN", not FAQ in "FAQ" or API in "API-guide"
    beside names of another shape."""
    found: dict[str, list[tuple[str, str]]] = defaultdict(list)
    codes_by_pattern: dict[str, set[str]] = defaultdict(set)
    for doc, payload in documents.items():
        for code, pattern in _stem_codes(_source(payload)):
            found[doc].append((code, pattern))
            codes_by_pattern[pattern].add(code)
    return {
        doc: {code for code, pattern in pairs if len(codes_by_pattern[pattern]) >= MIN_CODES_PER_PATTERN}
        for doc, pairs in found.items()
    }


def code_aliases(documents: Mapping[str, dict]) -> dict[str, set[str]]:
    """Per document id: the words standing for the codes in its name, learnt from the candidates.

    Only codes that tell documents apart count (`distinguishing_codes`). For such a code, the
    documents whose names hold it that way are its group. Of the words in every member's
    `doc_terms` that start with the code's first letter (a code abbreviates its name) and are used
    on average ALIAS_RATIO times more often in the group than in the candidates without the code,
    the most used stands for the code ("INTC" -> "intel"). A code every candidate shares, or
    documents without stored terms, give nothing."""
    codes = distinguishing_codes(documents)
    named = {doc: name_codes(payload) for doc, payload in documents.items()}
    terms = {doc: payload.get("doc_terms") or {} for doc, payload in documents.items()}
    aliases: dict[str, set[str]] = defaultdict(set)
    for code in sorted(set().union(*codes.values())) if codes else ():
        group = [doc for doc in documents if code in codes.get(doc, ())]
        others = [doc for doc in documents if code not in named[doc]]
        if not others or not all(terms[doc] for doc in group):
            continue
        shared = set.intersection(*(set(terms[doc]) for doc in group))
        ranked = []
        for word in shared:
            if not word.startswith(code[0]):  # a code abbreviates its name: not "gaap" for INTC
                continue
            inside = sum(terms[doc][word] for doc in group) / len(group)
            outside = sum(terms[doc].get(word, 0.0) for doc in others) / len(others)
            if inside >= ALIAS_RATIO * outside:
                ranked.append((inside, word))
        if ranked:
            word = max(ranked)[1]
            for doc in group:
                aliases[doc].add(word)
    return aliases


def name_scores(
    query: str,
    documents: Mapping[str, dict],
    sources: Sequence[NameSource] | None = None,
    language: str = DEFAULT_LANGUAGE,
) -> dict[str, float]:
    """Per document id: how much of the question its name holds, in [0, 1].

    Each query word a document's name answers to (by default its file name and the aliases of its
    codes) adds log(1 + N / df), N the candidate documents and df those whose names hold the word,
    so words every candidate shares add little; a word only an alias gives counts its source's
    weight. A name sharing fewer than MIN_NAME_WORDS words with the question scores 0 unless one
    came from a source that names a document alone (a code's alias): one plain shared word is most
    often the collection's topic or maker ("Aurora", "heat"), not a reference to one document.
    Scores are shares of the best document's sum, raised to NAME_SHARPNESS."""
    if not documents:
        return {}
    if sources is None:
        sources = (FileNameWords(language), CodeAliases())
    query_words = {w for w in _WORD.findall(query.lower()) if w not in stopwords(language)}
    names: dict[str, dict[str, float]] = {doc: {} for doc in documents}  # word -> its weight
    alone: dict[str, bool] = dict.fromkeys(documents, False)
    for source in sources:
        weight = source.weight
        for doc, words in source.words(documents).items():
            matched = words & query_words
            for word in matched:
                names[doc][word] = max(names[doc].get(word, 0.0), weight)
            alone[doc] = alone[doc] or (source.alone and bool(matched))
    df: dict[str, int] = defaultdict(int)
    for words in names.values():
        for word in words:
            df[word] += 1
    total = len(names)
    raw = {
        doc: sum(weight * math.log(1 + total / df[w]) for w, weight in words.items())
        if len(words) >= MIN_NAME_WORDS or alone[doc] else 0.0
        for doc, words in names.items()
    }
    best = max(raw.values())
    return {doc: ((value / best) ** NAME_SHARPNESS if best > 0 else 0.0) for doc, value in raw.items()}


# -- recency ------------------------------------------------------------------------------------


def asks_for_latest(query: str, language: str = DEFAULT_LANGUAGE) -> bool:
    """Whether the question asks for the newest document ("latest", "most recent", "newest")."""
    cue = latest_cue(language)
    return bool(cue and cue.search(query))


def recency_scores(documents: Mapping[str, dict]) -> dict[str, float]:
    """Per dated document: 0 for the oldest date among them, 1 for the newest (by rank of date)."""
    dates = {doc: str(payload["created"]) for doc, payload in documents.items() if payload.get("created")}
    distinct = sorted(set(dates.values()))
    if len(distinct) < 2:
        return {}
    position = {date: i / (len(distinct) - 1) for i, date in enumerate(distinct)}
    return {doc: position[date] for doc, date in dates.items()}


# -- helpers ------------------------------------------------------------------------------------


def _boost_documents(
    ranked: Sequence[ScoredChunk], scores: Mapping[str, float], boost: float, k: float
) -> list[ScoredChunk]:
    """Chunks re-ranked by 1 / (k + rank) times (1 + boost * their document's score in [0, 1])."""
    boosted = [
        (hit, (1.0 / (k + rank)) * (1.0 + boost * scores.get(_doc_key(hit), 0.0)))
        for rank, hit in enumerate(ranked, start=1)
    ]
    boosted.sort(key=lambda pair: -pair[1])
    return [ScoredChunk(id=hit.id, score=score, text=hit.text, payload=hit.payload) for hit, score in boosted]


def _source(payload: dict) -> str:
    """A chunk's document path as stored (its source, else its file name)."""
    return str(payload.get("source") or payload.get("file_name") or "")


# Every question looks at the names of its candidates' documents: each name is parsed once.
@lru_cache(maxsize=65536)
def _path(source: str) -> PurePosixPath:
    """A document path with forward slashes."""
    return PurePosixPath(source.replace("\\", "/"))


@lru_cache(maxsize=65536)
def _name_words(source: str, stop: frozenset[str]) -> frozenset[str]:
    path = _path(source)
    parts = [*path.parent.parts, path.stem]
    return frozenset(w for part in parts for w in _WORD.findall(part.lower()) if w not in stop)


@lru_cache(maxsize=65536)
def _stem_codes(source: str) -> tuple[tuple[str, str], ...]:
    """The codes of a file stem, each with its place in the name: the stem with the code as a
    blank and digits as # (`distinguishing_codes`)."""
    stem = _path(source).stem
    return tuple(
        (match.group().lower(),
         _DIGITS.sub("#", (stem[: match.start()] + "\0" + stem[match.end():]).lower()))
        for match in _CODE.finditer(stem)
    )


def _doc_key(chunk: ScoredChunk) -> str:
    return str(chunk.payload.get("document_id") or chunk.payload.get("source") or chunk.payload.get("file_name") or "")
