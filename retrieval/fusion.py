"""Fusing the dense and sparse result lists, and the document-name boost.

Measured on two real sets (evaluation/baselines/README.md): dense search wins on one (20 SEC
filings sharing their vocabulary), BM25 on the other (biomedical articles with rare terms), and a
fixed RRF weighting loses to the better single retriever on each. Two query-level signals fix most
of that without labels:

- How much BM25's best hit stands out from its 20th (`sparse_confidence`): a peaked BM25 list
  means rare query terms matched; a flat one means common words matched everywhere. The sparse
  list's RRF weight grows with it (`adaptive_weights`).
- Whether the question names a document (`name_scores`): "Intel's Q1 2023 10-Q" names the file
  "2023 Q1 INTC.pdf". Query words found in a candidate document's file name or folders, weighted by how few candidates share them (IDF over the candidates),
  raise all of that document's chunks (`boost_named_documents`). Names sharing fewer than two
  words with the question (numbered files, say) change nothing. Codes in capitals in file names
  (tickers, product codes: "INTC") also answer to the word, starting with the code's first
  letter, that their documents use far more than the other candidates do ("Intel"), read from
  each document's most frequent capitalised words (`document_terms`, stored with every chunk at
  ingestion; `code_aliases`).
- Whether the question asks for the latest document ("the most recent 10-Q"): then candidate
  documents rank higher the newer their own date (PDF or DOCX metadata) is among the candidates
  (`boost_recent_documents`). Undated documents and other questions are left as they are.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from collections.abc import Sequence
from pathlib import PurePosixPath

from core.types import ScoredChunk

_WORD = re.compile(r"[a-z0-9]+")
_CODE = re.compile(r"(?<![A-Za-z0-9])[A-Z]{2,6}(?![A-Za-z0-9])")  # "INTC" in "2023_Q1_INTC", not "Q1"
MIN_NAME_WORDS = 2
# A document matching only part of what the best-named one matches gets (share) ** 4 of the boost:
# a filing naming the company but another quarter must not rank with the one naming both.
NAME_SHARPNESS = 4.0
ALIAS_RATIO = 5.0  # an alias is used this many times more (per word) in its code's documents
_RECENCY_CUE = re.compile(r"\b(latest|most recent|newest|most current)\b", re.IGNORECASE)
# Words too common in questions to say anything about a document's name.
_STOP = frozenset(
    "a an and are as at be by did do does for from had has have how in is it its of on or s that the "
    "their this to was were what when where which who why with".split()
)


def weighted_rrf(lists: Sequence[Sequence[ScoredChunk]], weights: Sequence[float], k: float) -> list[ScoredChunk]:
    """Reciprocal rank fusion: each chunk scores sum(weight / (k + rank)), ranks from 1."""
    if len(lists) != len(weights):
        raise ValueError(f"{len(lists)} result lists but {len(weights)} weights")
    scores: dict[str, float] = defaultdict(float)
    chunks: dict[str, ScoredChunk] = {}
    for hits, weight in zip(lists, weights, strict=True):
        for rank, hit in enumerate(hits, start=1):
            scores[hit.id] += weight / (k + rank)
            chunks.setdefault(hit.id, hit)
    ordered = sorted(scores, key=lambda cid: -scores[cid])
    return [_rescored(chunks[cid], scores[cid]) for cid in ordered]


def sparse_confidence(sparse_hits: Sequence[ScoredChunk], n: int = 20) -> float:
    """BM25's best score over its `n`-th best (or its last, when fewer): 1.0 means flat."""
    if len(sparse_hits) < 2:
        return 1.0
    last = float(sparse_hits[min(n, len(sparse_hits)) - 1].score)
    first = float(sparse_hits[0].score)
    return first / last if last > 0 else 1.0


def adaptive_weights(
    sparse_hits: Sequence[ScoredChunk],
    base: tuple[float, float],
    gain: float,
    pivot: float,
    ceiling: float,
    n: int = 20,
) -> tuple[float, float]:
    """(dense, sparse) weights: the sparse weight is `base[1] * gain * (confidence - pivot)`,
    clipped to [0, ceiling]. gain 0 keeps `base` as it is."""
    if gain <= 0:
        return base
    confidence = sparse_confidence(sparse_hits, n)
    sparse = min(ceiling, max(0.0, base[1] * gain * (confidence - pivot)))
    return base[0], sparse


def name_words(payload: dict) -> set[str]:
    """The words of a chunk's document name: the folders and file stem of its source. Titles stay
    out: they are often boilerplate ("Form 10-Q", a filing date) that many questions repeat."""
    path = _source_path(payload)
    parts = [*path.parent.parts, path.stem]
    return {w for part in parts for w in _WORD.findall(part.lower()) if w not in _STOP}


def _source_path(payload: dict) -> PurePosixPath:
    """A chunk's document path (its source, else its file name), with forward slashes."""
    source = str(payload.get("source") or payload.get("file_name") or "")
    return PurePosixPath(source.replace("\\", "/"))



def name_codes(payload: dict) -> set[str]:
    """Codes in a document's file stem: words of 2-6 letters written in capitals ("INTC", "FAQ")."""
    return {code.lower() for code in _CODE.findall(_source_path(payload).stem)}


def code_aliases(payloads: dict[str, dict]) -> dict[str, set[str]]:
    """Per document id: the words standing for the codes in its name, learnt from the candidates.

    For a code, the documents whose names hold it are its group. Of the words in every member's
    `doc_terms` that start with the code's first letter (a code abbreviates its name) and are
    used on average ALIAS_RATIO times more often in the group than in the other candidates, the
    most used stands for the code ("INTC" -> "intel"). A code every candidate shares, or documents
    without stored terms, give nothing."""
    codes = {doc: name_codes(payload) for doc, payload in payloads.items()}
    terms = {doc: payload.get("doc_terms") or {} for doc, payload in payloads.items()}
    aliases: dict[str, set[str]] = defaultdict(set)
    for code in set().union(*codes.values()) if codes else ():
        group = [doc for doc in payloads if code in codes[doc]]
        others = [doc for doc in payloads if code not in codes[doc]]
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


def name_scores(query: str, chunks: Sequence[ScoredChunk]) -> dict[str, float]:
    """Per document id among `chunks`: how much of the question its name holds, in [0, 1].

    Each query word in a document's name, or standing for a code in it (`code_aliases`), adds
    log(1 + N / df), N the candidate documents and df those whose names hold the word, so words
    every candidate shares add little. A name sharing fewer than MIN_NAME_WORDS words with the
    question scores 0 unless one of them stands for a code: one plain shared word is most often the
    collection's topic or maker ("Aurora", "heat"), not a reference to one document. Scores are
    shares of the best document's sum, raised to NAME_SHARPNESS."""
    query_words = {w for w in _WORD.findall(query.lower()) if w not in _STOP}
    payloads: dict[str, dict] = {}
    for chunk in chunks:
        payloads.setdefault(_doc_key(chunk), chunk.payload)
    if not payloads:
        return {}
    aliases = code_aliases(payloads)
    names: dict[str, set[str]] = {}
    named_by_code: dict[str, bool] = {}
    for doc, payload in payloads.items():
        by_code = aliases.get(doc, set()) & query_words
        names[doc] = (name_words(payload) & query_words) | by_code
        named_by_code[doc] = bool(by_code)
    df: dict[str, int] = defaultdict(int)
    for words in names.values():
        for word in words:
            df[word] += 1
    total = len(names)
    raw = {
        doc: sum(math.log(1 + total / df[w]) for w in words)
        if len(words) >= MIN_NAME_WORDS or named_by_code[doc] else 0.0
        for doc, words in names.items()
    }
    best = max(raw.values())
    return {doc: ((value / best) ** NAME_SHARPNESS if best > 0 else 0.0) for doc, value in raw.items()}


def boost_named_documents(
    query: str, ranked: Sequence[ScoredChunk], boost: float, k: float
) -> list[ScoredChunk]:
    """Re-rank fused chunks: rank score 1 / (k + rank) times (1 + boost * name score)."""
    if boost <= 0 or not ranked:
        return list(ranked)
    scores = name_scores(query, ranked)
    if not any(scores.values()):
        return list(ranked)
    return _boost_documents(ranked, scores, boost, k)


def asks_for_latest(query: str) -> bool:
    """Whether the question asks for the newest document ("latest", "most recent", "newest")."""
    return bool(_RECENCY_CUE.search(query))


def recency_scores(chunks: Sequence[ScoredChunk]) -> dict[str, float]:
    """Per dated document among `chunks`: 0 for the oldest date, 1 for the newest (by rank)."""
    dates: dict[str, str] = {}
    for chunk in chunks:
        created = chunk.payload.get("created")
        if created:
            dates.setdefault(_doc_key(chunk), str(created))
    distinct = sorted(set(dates.values()))
    if len(distinct) < 2:
        return {}
    position = {date: i / (len(distinct) - 1) for i, date in enumerate(distinct)}
    return {doc: position[date] for doc, date in dates.items()}


def boost_recent_documents(
    query: str, ranked: Sequence[ScoredChunk], boost: float, k: float
) -> list[ScoredChunk]:
    """When the question asks for the latest, re-rank: rank score 1 / (k + rank) times
    (1 + boost * recency), recency from the documents' own dates (PDF or DOCX metadata)."""
    if boost <= 0 or not ranked or not asks_for_latest(query):
        return list(ranked)
    scores = recency_scores(ranked)
    if not scores:
        return list(ranked)
    return _boost_documents(ranked, scores, boost, k)


def _boost_documents(
    ranked: Sequence[ScoredChunk], scores: dict[str, float], boost: float, k: float
) -> list[ScoredChunk]:
    """Chunks re-ranked by 1 / (k + rank) times (1 + boost * their document's score in [0, 1])."""
    boosted = [
        (hit, (1.0 / (k + rank)) * (1.0 + boost * scores.get(_doc_key(hit), 0.0)))
        for rank, hit in enumerate(ranked, start=1)
    ]
    boosted.sort(key=lambda pair: -pair[1])
    return [_rescored(hit, score) for hit, score in boosted]


def _doc_key(chunk: ScoredChunk) -> str:
    return str(chunk.payload.get("document_id") or chunk.payload.get("source") or chunk.payload.get("file_name") or "")


def _rescored(chunk: ScoredChunk, score: float) -> ScoredChunk:
    return ScoredChunk(id=chunk.id, score=score, text=chunk.text, payload=chunk.payload)
