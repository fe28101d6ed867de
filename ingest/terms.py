"""A document's most frequent capitalised words, stored with each chunk (`doc_terms`) so that
retrieval can learn what a code in a file name stands for (`INTC` -> "intel"); and the codes it uses
throughout (`doc_codes`: "10-Q" in a quarterly report's page headers, "AHP-9" in its manual), so that
the answerer knows a chunk of that document is about them even where the chunk does not say so."""

from __future__ import annotations

import re
from collections import Counter

from core.language import WORD, code_term

_CAPITALISED = re.compile(r"\b[A-Z][A-Za-z0-9]{2,}\b")
DOCUMENT_TERMS = 30  # capitalised words kept per document, most frequent first


def document_terms(text: str, limit: int = DOCUMENT_TERMS) -> dict[str, float]:
    """A document's `limit` most frequent capitalised words (lower-cased), each with its count per
    1,000 words of the text: what the document calls itself and its subjects ("Intel", "Mobileye")."""
    words = max(1, len(text.split()))
    counts = Counter(match.lower() for match in _CAPITALISED.findall(text))
    return {word: round(1000.0 * n / words, 3) for word, n in counts.most_common(limit)}


DOCUMENT_CODES = 5  # codes kept per document, the most widespread first
CODE_PAGE_SHARE = 0.15  # a code on at least this share of a document's pages runs through it
CODE_MIN_PAGES = 4  # shorter documents: a code used at least CODE_MIN_USES times
CODE_MIN_USES = 3


def document_codes(pages: list[str], limit: int = DOCUMENT_CODES) -> list[str]:
    """The codes (words holding letters and digits: "10-Q", "AHP-9", "R290") a document uses
    throughout, in the answerer's form (`code_term`): with CODE_MIN_PAGES pages or more, those on
    at least CODE_PAGE_SHARE of its pages (and two); otherwise those used CODE_MIN_USES times."""
    pages = [text for text in pages if text.strip()]
    if not pages:
        return []
    counts: Counter[str] = Counter()
    for text in pages:
        codes = [code_term(w) for w in WORD.findall(text)
                 if any(c.isdigit() for c in w) and any(c.isalpha() for c in w)]
        counts.update(list(dict.fromkeys(codes)) if len(pages) >= CODE_MIN_PAGES else codes)  # ties: first seen first
    if len(pages) >= CODE_MIN_PAGES:
        floor = max(2, CODE_PAGE_SHARE * len(pages))
    else:
        floor = CODE_MIN_USES
    return [code for code, n in counts.most_common() if n >= floor][:limit]
