"""A collection's subjects: the names most of its documents use, read once per collection and read
again after each change to it."""

from __future__ import annotations

import pytest

from core.types import ScoredChunk
from retrieval.subjects import SUBJECT_MIN_DOCUMENTS, CollectionSubjects, subject_terms

pytestmark = pytest.mark.unit


def test_a_name_most_documents_use_is_a_subject_and_one_company_among_others_is_not():
    help_centre = [{"coda": 3.1, "share": 1.0}, {"coda": 2.0}, {"coda": 0.5, "pack": 4.0}, {"pack": 2.0},
                   {"formula": 1.0}, {"offline": 1.0}]
    assert subject_terms(help_centre) == {"coda"}  # 3 of 6
    filings = [{"apple": 9.0, "total": 2.0}] * 2 + [{"nvidia": 9.0, "total": 2.0}] * 2 + [{"intel": 9.0}] * 2
    assert subject_terms(filings) == {"total"}  # 4 of 6: each company in 2 of 6 is not the collection's subject
    assert subject_terms(help_centre[:SUBJECT_MIN_DOCUMENTS - 1]) == frozenset()  # too few documents to tell
    assert subject_terms([["coda"], ["coda"], ["coda"], [], None]) == {"coda"}


class _Store:
    def __init__(self, documents: dict[str, dict]) -> None:
        self.documents = documents
        self.scrolls = 0

    def scroll(self, collection, filters=None, limit=None):  # noqa: ANN001, ANN201
        assert filters == {"position": 0}
        self.scrolls += 1
        # a recursive collection's parent and first child both start a document: counted once
        return [ScoredChunk(f"{d}-{level}", 0.0, "", {"document_id": d, "doc_terms": terms})
                for d, terms in self.documents.items() for level in ("parent", "child")]


def test_subjects_are_read_once_per_collection_until_forgotten():
    store = _Store({f"d{i}": {"coda": 1.0} if i < 3 else {"pack": 1.0} if i < 5 else {} for i in range(6)})
    subjects = CollectionSubjects(store)
    assert subjects.terms("help") == {"coda"} and subjects.terms("help") == {"coda"}
    assert store.scrolls == 1
    store.documents = {f"d{i}": {"pack": 1.0} for i in range(6)}
    assert subjects.terms("help") == {"coda"}  # kept until the service says the collection changed
    subjects.forget("help")
    assert subjects.terms("help") == {"pack"} and store.scrolls == 2
