"""Errors a person sees. Each message says what went wrong and what to do next."""

from __future__ import annotations


class RagError(Exception):
    """Base of every error this app raises on purpose."""


class ConfigError(RagError):
    """A setting is missing or invalid."""


class ReaderError(RagError):
    """A file could not be read: names the file and the reason."""

    def __init__(self, path: str, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"{path}: {reason}")


class NoTextError(ReaderError):
    """A file was read but holds no extractable text (a scanned PDF, say)."""


class StoreError(RagError):
    """The vector store refused an operation."""


class StoreBusyError(StoreError):
    """The embedded store is open in another process."""


class CollectionNotFoundError(StoreError):
    """The named collection does not exist: the one message for it, with how to make it."""

    def __init__(self, collection: str) -> None:
        self.collection = collection
        super().__init__(
            f"No collection named {collection!r}: ingest documents into it first "
            f"(`rag ingest PATH --collection {collection}`) or see `rag collections list`."
        )

    def __reduce__(self) -> tuple[type, tuple[str]]:
        return type(self), (self.collection,)


class DocumentNotFoundError(RagError):
    """A collection holds no document of that name or id."""

    def __init__(self, collection: str, name: str) -> None:
        self.collection = collection
        self.name = name
        super().__init__(f"No document {name!r} in collection {collection!r}: `rag docs list` shows them.")

    def __reduce__(self) -> tuple[type, tuple[str, str]]:
        return type(self), (self.collection, self.name)
