"""The names a collection is about: those most of its documents use (`doc_terms`, ingest/terms.py).

A help centre's articles are all about its product, and many never write its name: "How often do
Pack tables refresh in Coda?" is answered by an article that says "Pack tables refresh every hour"
and nowhere "Coda". The answerer lowers a sentence whose chunk, file name and document lack a name
the question uses when another source has it (answer/extractive.py, MISSING_NAME_FLOOR): right for
a company's filing among other companies' ones, wrong for the collection's own subject. A name among
the frequent names of at least SUBJECT_SHARE of a collection's documents, in a collection of
SUBJECT_MIN_DOCUMENTS or more, is held by every source of it. On the visible sets no name reaches the
share (docugami: each company in 4 of 20 filings; COVID-QA: "China" in 37 % of 98 articles).
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

SUBJECT_SHARE = 0.5
SUBJECT_MIN_DOCUMENTS = 5


def subject_terms(documents_terms: Iterable[Mapping[str, Any] | Iterable[str]]) -> frozenset[str]:
    """The words in the frequent names (`doc_terms`) of at least SUBJECT_SHARE of the documents
    given (one mapping or list per document); none for fewer than SUBJECT_MIN_DOCUMENTS documents."""
    documents = [set(terms or ()) for terms in documents_terms]
    if len(documents) < SUBJECT_MIN_DOCUMENTS:
        return frozenset()
    counts = Counter(term for terms in documents for term in terms)
    return frozenset(term for term, n in counts.items() if n >= SUBJECT_SHARE * len(documents))


class CollectionSubjects:
    """Each collection's subject terms, read once from its documents' first chunks and kept until
    `forget` (the service calls it whenever it writes to or deletes from the collection)."""

    def __init__(self, store: Any) -> None:
        self.store = store
        self._terms: dict[str, frozenset[str]] = {}
        self._lock = threading.Lock()

    def terms(self, collection: str) -> frozenset[str]:
        with self._lock:
            if collection not in self._terms:
                firsts = self.store.scroll(collection, {"position": 0})
                per_document = {p.payload.get("document_id", p.id): p.payload.get("doc_terms") for p in firsts}
                self._terms[collection] = subject_terms(per_document.values())
            return self._terms[collection]

    def forget(self, collection: str) -> None:
        with self._lock:
            self._terms.pop(collection, None)
