"""Qdrant vector stores: one base class, an embedded (Qdrant Edge) and a server driver, filters."""
