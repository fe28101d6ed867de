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

from core.language import as_shown

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
    "passage_hit@k": "1 if any of the first k retrieved chunks holds the passage, else 0: a chunk holds "
    "it when it contains the gold answer span (a reference answer copied from a gold document; "
    "whitespace and case normalised; the chunk from a gold document) or at least 60 % of the words "
    "of a gold evidence text (`contexts`); absent when the data set has neither",
    "passage_mrr@10": "1 / rank of the first chunk holding the passage within the first 10 chunks "
    "(0 if none)",
    "faithfulness": "share of answer sentences supported by the raw text of the chunks they cite: "
    "at least 80 % of the sentence's distinct content words (lower case, a fixed English stopword "
    "list left out) and every number in it found among the chunks' words; a sentence without a "
    "citation is unsupported; abstentions are skipped. Computed by the evaluation, not by the "
    "product's citation check",
    "citation_precision": "share of (sentence, cited chunk) pairs where that chunk alone supports the "
    "sentence (the same rule as faithfulness)",
    "citation_page_accuracy": "share of citations whose (document, page) is a gold page",
    "cited_passage_rate": "of the answers whose sources included a chunk holding the passage (as "
    "passage_hit@k), the share that cite such a chunk: whether the answer quotes the evidence, not "
    "another passage",
    "abstention_accuracy": "share of unanswerable questions answered with an abstention "
    "(and, where included, answerable ones answered without)",
}

RETRIEVAL_METRIC_NAMES = ("hit@1", "hit@5", "recall@10", "MRR@10", "nDCG@10")
PAGE_PREFIX = "page_"
PASSAGE_METRIC_NAMES = ("passage_hit@1", "passage_hit@5", "passage_mrr@10")
EVIDENCE_SHARE = 0.6  # a chunk holds the passage when it has this share of the evidence text's words
SUPPORTED_SHARE = 0.8  # an answer sentence is supported when its cited chunks hold this share of its words


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


# -- passages -------------------------------------------------------------------------------

_WORD = re.compile(r"[^\W_]+(?:[.,'’-][^\W_]+)*")


def words(text: str) -> list[str]:
    """Lower-case word tokens; numbers keep their inner points and commas ("1,234.5")."""
    return _WORD.findall(text.lower())


def _spaced(text: str) -> str:
    return " ".join(text.lower().split())


def holds_passage(
    chunk_text: str,
    answer_span: str | None = None,
    evidence: Sequence[str] = (),
    share: float = EVIDENCE_SHARE,
) -> bool:
    """True when the chunk contains `answer_span` (whitespace and case normalised) or, for some
    evidence text, at least `share` of its distinct words."""
    if answer_span and _spaced(answer_span) and _spaced(answer_span) in _spaced(chunk_text):
        return True
    chunk_words = set(words(chunk_text))
    for text in evidence:
        wanted = set(words(text))
        if wanted and len(wanted & chunk_words) / len(wanted) >= share:
            return True
    return False


def passage_metrics(relevant: Sequence[bool] | None) -> dict[str, float | None]:
    """passage_hit@1, passage_hit@5 and passage_mrr@10 over the retrieved chunks in rank order,
    one flag per chunk (True: it holds the passage). All None when `relevant` is None (no gold)."""
    if relevant is None:
        return dict.fromkeys(PASSAGE_METRIC_NAMES)
    flags = list(relevant)
    first = next((rank for rank, flag in enumerate(flags[:10], start=1) if flag), None)
    return {
        "passage_hit@1": 1.0 if any(flags[:1]) else 0.0,
        "passage_hit@5": 1.0 if any(flags[:5]) else 0.0,
        "passage_mrr@10": 1.0 / first if first else 0.0,
    }


# -- faithfulness, independent of the product's citation check ------------------------------

# Function words: never evidence of support. A short, fixed English list, so the metric does not
# move when the product's stopwords or stemming change.
STOPWORDS = frozenset("""
a about above after again against all also am an and any are as at be because been before being
below between both but by can could did do does doing down during each few for from further had
has have having he her here hers herself him himself his how i if in into is it its itself just
me more most my myself no nor not now of off on once only or other our ours ourselves out over own
same she should so some such than that the their theirs them themselves then there these they this
those through to too under until up very was we were what when where which while who whom why will
with would you your yours yourself yourselves
""".split())
_MARKERS = re.compile(r"\[(\d+(?:\s*[,;]\s*\d+)*)\]")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[\"'(\[]?[A-Z0-9])")


def content_words(text: str) -> list[str]:
    """The words of `text` that carry content: `words` without STOPWORDS."""
    return [w for w in words(text) if w not in STOPWORDS]


def cited_sentences(answer_text: str) -> list[tuple[str, list[int]]]:
    """The answer's sentences, each with the source numbers it cites (1-based).

    The answer is cut after each run of markers ("... [1]" or "... [1, 2]."); every sentence of
    a piece cites the piece's markers, so a quoted passage of several sentences followed by one
    marker counts as cited throughout. Text after the last marker cites nothing.
    """
    result: list[tuple[str, list[int]]] = []
    position = 0
    pieces: list[tuple[str, list[int]]] = []
    for match in re.finditer(r"(?:\s*\[\d+(?:\s*[,;]\s*\d+)*\])+[.!?;:,]?", answer_text):
        numbers = [int(n) for group in _MARKERS.findall(match.group()) for n in re.split(r"\s*[,;]\s*", group)]
        pieces.append((answer_text[position:match.start()], list(dict.fromkeys(numbers))))
        position = match.end()
    pieces.append((answer_text[position:], []))
    for text, numbers in pieces:
        for sentence in _SENTENCE_END.split(text.strip()):
            if content_words(sentence):
                result.append((sentence.strip(), numbers))
    return result


def contained_share(sentence: str, source_text: str) -> float:
    """Share of the sentence's distinct content words found among the source text's words."""
    wanted = set(content_words(sentence))
    if not wanted:
        return 1.0
    return len(wanted & set(words(source_text))) / len(wanted)


def supported_by(sentence: str, source_text: str, share: float = SUPPORTED_SHARE) -> bool:
    """True when the source text holds at least `share` of the sentence's content words and every
    number in it (a number is a fact: one wrong figure is enough to mislead)."""
    found = set(words(source_text))
    numbers = {w for w in content_words(sentence) if any(ch.isdigit() for ch in w)}
    return contained_share(sentence, source_text) >= share and numbers <= found


def sentence_support(
    answer_text: str, sources: Sequence[str], share: float = SUPPORTED_SHARE
) -> list[tuple[str, list[int], bool]]:
    """Each answer sentence, its citations and whether the raw text of the cited sources (source
    [n] is sources[n-1]; numbers outside them are ignored) holds at least `share` of its
    content words. A sentence citing no existing source is unsupported."""
    checked = []
    for sentence, numbers in cited_sentences(answer_text):
        valid = [n for n in numbers if 1 <= n <= len(sources)]
        pool = " ".join(sources[n - 1] for n in valid)
        checked.append((sentence, valid, bool(valid) and supported_by(sentence, pool, share)))
    return checked


def containment_faithfulness(answer_text: str, sources: Sequence[str],
                             share: float = SUPPORTED_SHARE) -> tuple[float | None, float | None]:
    """(faithfulness, citation precision) of an answer against the raw text of its sources.

    Faithfulness: share of sentences supported (see `sentence_support`). Citation precision: of
    the (sentence, cited source) pairs, the share where that source alone holds `share` of the
    sentence's content words. None where there is no sentence, or no citation. A PDF line-end
    hyphen reads as the page shows it (`as_shown`), as answers quote it."""
    sources = [as_shown(s) for s in sources]
    checked = sentence_support(answer_text, sources, share)
    pairs = [supported_by(sentence, sources[n - 1], share) for sentence, numbers, _ in checked for n in numbers]
    return faithfulness([ok for _, _, ok in checked]), citation_precision(pairs)


def answer_correct(token_f1_value: float | None, similarity: float | None,
                   min_f1: float = 0.5, min_similarity: float = 0.7) -> bool | None:
    """True when an answer matches its reference: token F1 >= `min_f1` or semantic similarity
    >= `min_similarity`. None when neither was measured."""
    if token_f1_value is None and similarity is None:
        return None
    return (token_f1_value or 0.0) >= min_f1 or (similarity or 0.0) >= min_similarity
