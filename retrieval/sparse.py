"""BM25-style sparse vectors with Qdrant's own tokenizer and term weighting (IDF is applied by the store)."""

from __future__ import annotations

from qdrant_edge import Bm25, Bm25Config

from core.language import DEFAULT_LANGUAGE, check_language
from store.base import SparseVec


class Bm25Encoder:
    """Documents get BM25 term-frequency weights; queries weight each unique term 1.0.

    `language` (the `RAG_LANGUAGE` setting, core/language.py) picks Qdrant's stopwords and Snowball
    stemmer for it; documents and queries must be encoded in the same one."""

    name = "bm25"

    def __init__(self, k: float = 1.2, b: float = 0.75, avg_len: float = 256.0,
                 language: str = DEFAULT_LANGUAGE) -> None:
        language = check_language(language)
        self.config = {"k": k, "b": b, "avg_len": avg_len, "language": language}
        self._model = Bm25(Bm25Config(k=k, b=b, avg_len=avg_len, language=language))

    def encode_documents(self, texts: list[str]) -> list[SparseVec]:
        return [self._convert(self._model.embed_document(t)) for t in texts]

    def encode_query(self, text: str) -> SparseVec:
        return self._convert(self._model.embed_query(text))

    @staticmethod
    def _convert(vector) -> SparseVec:  # noqa: ANN001
        return SparseVec(indices=[int(i) for i in vector.indices], values=[float(v) for v in vector.values])
