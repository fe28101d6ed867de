"""The pipeline a user would build from LlamaIndex's starter docs, measured beside ours.

`VectorStoreIndex.from_documents(docs)` with the default transformations splits with
`SentenceSplitter(chunk_size=1024, chunk_overlap=20)`, embeds the chunks and answers from a
dense top-k search without reranking. Here the same chunking and dense-only search run over
the same store and embedder as ours, so the comparison isolates the pipeline's choices.
"""

from __future__ import annotations

from evaluation.runner import STARTER_LABEL, EvalConfig

STARTER_CHUNK_SIZE = 1024
STARTER_CHUNK_OVERLAP = 20


def starter_config(depth: int = 30) -> EvalConfig:
    """SentenceSplitter 1024/20, dense top-k, no reranker, retrieval only (no answers)."""
    return EvalConfig(
        chunker="sentence",
        chunk_size=STARTER_CHUNK_SIZE,
        chunk_overlap=STARTER_CHUNK_OVERLAP,
        retrieval="dense",
        fusion="rrf",
        reranker="none",
        depth=depth,
        answers=False,
        label=STARTER_LABEL,
    )
