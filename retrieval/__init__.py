"""Embedding, sparse encoding, hybrid search, fusion and reranking."""
