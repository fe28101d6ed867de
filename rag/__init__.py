"""Shared pieces of the RAG question-answering app: settings, result types, service layer, CLI."""
