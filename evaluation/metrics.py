"""Evaluation metrics as pure functions. Each docstring states the definition used.

Retrieval metrics take a ranked list of retrieved keys (document paths, or (document, page)
pairs at the page level) and a set of gold keys, with binary relevance. A key that appears
again further down the ranking counts once, at its first position.

A metric that does not apply to a question (no gold, no citations) is None, and `aggregate`
skips it.
"""

from __future__ import annotations

import math
import re
import string
from collections import Counter
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np

# One-line definitions, written into reports next to the figures.
METRIC_DEFINITIONS: dict[str, str] = {
    "hit@k": "1 if any of the first k distinct retrieved documents is a gold document, else 0",
    "recall@k": "share of gold documents among the first k distinct retrieved documents",
    "MRR@k": "1 / rank of the first gold document within the first k (0 if none)",
    "nDCG@k": "DCG of the first k with binary relevance, divided by the DCG of a perfect ranking",
    "page_*": "the same metrics over (document, page) pairs against the gold pages",
    "exact_match": "1 if the answer equals the reference after SQuAD normalisation, else 0",
    "token_f1": "harmonic mean of token precision and recall against the reference (SQuAD)",
    "semantic_similarity": "cosine similarity of the embedded answer and reference",
    "faithfulness": "share of answer sentences supported by the chunks they cite",
    "citation_precision": "share of citations whose chunk supports the sentence citing it",
    "citation_page_accuracy": "share of citations whose (document, page) is a gold page",
    "abstention_accuracy": "share of unanswerable questions answered with an abstention "
    "(and, where included, answerable ones answered without)",
}

RETRIEVAL_METRIC_NAMES = ("hit@1", "hit@5", "recall@10", "MRR@10", "nDCG@10")
PAGE_PREFIX = "page_"


def _first_occurrences(ranked: Iterable[Hashable]) -> list[Hashable]:
    """The ranking with repeats removed, each key at its first position."""
    return list(dict.fromkeys(ranked))


def _check(gold: set[Any] | frozenset[Any], k: int) -> None:
    if k <= 0:
        raise ValueError(f"k must be > 0 (got {k})")
    if not gold:
        raise ValueError("gold set is empty: the metric is undefined for this question")


def hit_at_k(ranked: Sequence[Hashable], gold: set[Any] | frozenset[Any], k: int) -> float:
    """1.0 if any of the first k distinct retrieved keys is in `gold`, else 0.0."""
    _check(gold, k)
    return 1.0 if any(key in gold for key in _first_occurrences(ranked)[:k]) else 0.0


def recall_at_k(ranked: Sequence[Hashable], gold: set[Any] | frozenset[Any], k: int) -> float:
    """|first k distinct retrieved keys ∩ gold| / |gold|."""
    _check(gold, k)
    found = sum(1 for key in _first_occurrences(ranked)[:k] if key in gold)
    return found / len(gold)


def mrr_at_k(ranked: Sequence[Hashable], gold: set[Any] | frozenset[Any], k: int) -> float:
    """1 / (1-based rank of the first gold key among the first k distinct keys), or 0.0."""
    _check(gold, k)
    for rank, key in enumerate(_first_occurrences(ranked)[:k], start=1):
        if key in gold:
            return 1.0 / rank
    return 0.0


def ndcg_at_k(ranked: Sequence[Hashable], gold: set[Any] | frozenset[Any], k: int) -> float:
    """DCG@k / IDCG@k with binary relevance: DCG = sum over gold keys at rank r <= k of
    1 / log2(r + 1); IDCG is the DCG of min(|gold|, k) gold keys ranked first."""
    _check(gold, k)
    dcg = sum(
        1.0 / math.log2(rank + 1)
        for rank, key in enumerate(_first_occurrences(ranked)[:k], start=1)
        if key in gold
    )
    ideal = sum(1.0 / math.log2(rank + 1) for rank in range(1, min(len(gold), k) + 1))
    return dcg / ideal


def _ranking_metrics(ranked: Sequence[Hashable], gold: set[Any] | None) -> dict[str, float | None]:
    if not gold:
        return dict.fromkeys(RETRIEVAL_METRIC_NAMES)
    gold = set(gold)
    return {
        "hit@1": hit_at_k(ranked, gold, 1),
        "hit@5": hit_at_k(ranked, gold, 5),
        "recall@10": recall_at_k(ranked, gold, 10),
        "MRR@10": mrr_at_k(ranked, gold, 10),
        "nDCG@10": ndcg_at_k(ranked, gold, 10),
    }


def retrieval_metrics(
    ranked_docs: Sequence[Hashable],
    gold_docs: set[Any] | None,
    ranked_pages: Sequence[Hashable] | None = None,
    gold_pages: set[Any] | None = None,
) -> dict[str, float | None]:
    """hit@1, hit@5, recall@10, MRR@10, nDCG@10 at the document level, plus the same names
    prefixed 'page_' when `gold_pages` is given. Values are None where the gold set is empty
    (an unanswerable question, or no labels)."""
    metrics = _ranking_metrics(ranked_docs, gold_docs)
    if gold_pages is not None:
        page_metrics = _ranking_metrics(ranked_pages or [], gold_pages)
        metrics.update({PAGE_PREFIX + name: value for name, value in page_metrics.items()})
    return metrics


_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCTUATION = set(string.punctuation)


def normalize_answer(text: str) -> str:
    """SQuAD normalisation: lower case, drop punctuation and the articles a/an/the, and
    collapse whitespace."""
    text = text.lower()
    text = "".join(ch for ch in text if ch not in _PUNCTUATION)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def exact_match(prediction: str, reference: str) -> float:
    """1.0 if both texts are equal after `normalize_answer`, else 0.0."""
    return 1.0 if normalize_answer(prediction) == normalize_answer(reference) else 0.0


def token_f1(prediction: str, reference: str) -> float:
    """SQuAD token F1: with the normalised token multisets P and R, precision = |P ∩ R| / |P|,
    recall = |P ∩ R| / |R|, F1 their harmonic mean. Two empty texts score 1.0, one empty 0.0."""
    predicted = normalize_answer(prediction).split()
    expected = normalize_answer(reference).split()
    if not predicted or not expected:
        return 1.0 if predicted == expected else 0.0
    common = sum((Counter(predicted) & Counter(expected)).values())
    if common == 0:
        return 0.0
    precision = common / len(predicted)
    recall = common / len(expected)
    return 2 * precision * recall / (precision + recall)


def semantic_similarity(a: str, b: str, embed: Callable[[list[str]], Any]) -> float:
    """Cosine similarity of the two texts' embeddings: `embed([a, b])` returns two vectors,
    each is scaled to unit length and their dot product is returned (0.0 for a zero vector)."""
    vectors = np.asarray(embed([a, b]), dtype=np.float64)
    if vectors.shape[0] != 2:
        raise ValueError(f"embed() returned {vectors.shape[0]} vectors for 2 texts")
    norms = np.linalg.norm(vectors, axis=1)
    if not np.all(norms > 0):
        return 0.0
    unit = vectors / norms[:, None]
    return float(np.clip(unit[0] @ unit[1], -1.0, 1.0))


def _share(flags: Sequence[bool]) -> float | None:
    return sum(1 for f in flags if f) / len(flags) if flags else None


def faithfulness(sentences_supported: Sequence[bool]) -> float | None:
    """Share of answer sentences supported by the chunks they cite: one flag per answer
    sentence (a sentence with no citation counts as unsupported). None with no sentences."""
    return _share(sentences_supported)


def citation_precision(citations_supporting: Sequence[bool]) -> float | None:
    """Citations whose chunk supports the sentence that cites it / all citations: one flag per
    citation. None when the answer cites nothing."""
    return _share(citations_supporting)


def citation_page_accuracy(
    cited_pages: Sequence[tuple[str, int]], gold_pages: set[tuple[str, int]] | None
) -> float | None:
    """Citations whose (document, page) is a gold page / all citations. None when the answer
    cites nothing or the question has no gold pages."""
    if not cited_pages or not gold_pages:
        return None
    return sum(1 for page in cited_pages if tuple(page) in gold_pages) / len(cited_pages)


def abstention_accuracy(
    rows: Iterable[Mapping[str, Any]], include_answerable: bool = False
) -> float | None:
    """Share of rows where the answerer did the right thing about abstaining. Each row has
    'answerable' (bool, default True) and 'abstained' (bool). Unanswerable rows are right when
    they abstained; with `include_answerable`, answerable rows count too and are right when they
    did not. None when no row counts."""
    right: list[bool] = []
    for row in rows:
        answerable = bool(row.get("answerable", True))
        if answerable and not include_answerable:
            continue
        right.append(bool(row["abstained"]) != answerable)
    return _share(right)


def percentile(values: Iterable[float], p: float) -> float:
    """The p-th percentile (0 <= p <= 100) with linear interpolation between the closest ranks
    (numpy's default method)."""
    data = [float(v) for v in values]
    if not data:
        raise ValueError("percentile of no values")
    if not 0 <= p <= 100:
        raise ValueError(f"p must be within 0..100 (got {p})")
    return float(np.percentile(data, p))


def latency_summary(
    rows_timings: Iterable[Mapping[str, float | None]],
) -> dict[str, dict[str, float]]:
    """{stage: {"p50": ..., "p95": ...}} over the per-question timings (milliseconds), stages
    in order of first appearance; a missing or None timing is skipped."""
    per_stage: dict[str, list[float]] = {}
    for timings in rows_timings:
        for stage, value in timings.items():
            if value is not None:
                per_stage.setdefault(stage, []).append(float(value))
    return {
        stage: {"p50": percentile(values, 50), "p95": percentile(values, 95)}
        for stage, values in per_stage.items()
    }


def aggregate(rows: Iterable[Mapping[str, float | bool | None]]) -> dict[str, float | None]:
    """The mean of each metric over the per-question dicts, skipping None (not applicable).
    Metrics keep the order of first appearance; a metric that is None everywhere stays None."""
    sums: dict[str, float] = {}
    counts: dict[str, int] = {}
    for row in rows:
        for name, value in row.items():
            sums.setdefault(name, 0.0)
            counts.setdefault(name, 0)
            if value is not None:
                sums[name] += float(value)
                counts[name] += 1
    return {name: (sums[name] / counts[name] if counts[name] else None) for name in sums}
