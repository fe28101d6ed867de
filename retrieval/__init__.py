"""Embedding, vector stores, hybrid search, reranking and answering."""
