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
  words with the question (numbered files, say) change nothing.
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

from rag.schema import ScoredChunk

_WORD = re.compile(r"[a-z0-9]+")
MIN_NAME_WORDS = 2
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
    source = str(payload.get("source") or payload.get("file_name") or "")
    path = PurePosixPath(source.replace("\\", "/"))
    parts = [*path.parent.parts, path.stem]
    return {w for part in parts for w in _WORD.findall(part.lower()) if w not in _STOP}


def name_scores(query: str, chunks: Sequence[ScoredChunk]) -> dict[str, float]:
    """Per document id among `chunks`: how much of the question its name holds, scaled to [0, 1].

    Each query word in a document's name adds log(1 + N / df), N the candidate documents and df
    those whose names hold the word, so words every candidate shares add little. A name sharing
    fewer than MIN_NAME_WORDS words with the question scores 0: one shared word is most often the
    collection's topic or maker ("Aurora", "heat"), not a reference to one document."""
    query_words = {w for w in _WORD.findall(query.lower()) if w not in _STOP}
    names: dict[str, set[str]] = {}
    for chunk in chunks:
        doc = _doc_key(chunk)
        if doc not in names:
            names[doc] = name_words(chunk.payload) & query_words
    if not names:
        return {}
    df: dict[str, int] = defaultdict(int)
    for words in names.values():
        for word in words:
            df[word] += 1
    total = len(names)
    raw = {
        doc: sum(math.log(1 + total / df[w]) for w in words) if len(words) >= MIN_NAME_WORDS else 0.0
        for doc, words in names.items()
    }
    best = max(raw.values())
    return {doc: (value / best if best > 0 else 0.0) for doc, value in raw.items()}


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
