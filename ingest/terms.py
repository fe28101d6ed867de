"""A document's most frequent capitalised words, stored with each chunk (`doc_terms`) so that
retrieval can learn what a code in a file name stands for (`INTC` -> "intel")."""

from __future__ import annotations

import re
from collections import Counter

_CAPITALISED = re.compile(r"\b[A-Z][A-Za-z0-9]{2,}\b")
DOCUMENT_TERMS = 30  # capitalised words kept per document, most frequent first


def document_terms(text: str, limit: int = DOCUMENT_TERMS) -> dict[str, float]:
    """A document's `limit` most frequent capitalised words (lower-cased), each with its count per
    1,000 words of the text: what the document calls itself and its subjects ("Intel", "Mobileye")."""
    words = max(1, len(text.split()))
    counts = Counter(match.lower() for match in _CAPITALISED.findall(text))
    return {word: round(1000.0 * n / words, 3) for word, n in counts.most_common(limit)}
