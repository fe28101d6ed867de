"""The store fixtures of tests/store, for retrieval tests that run on both backends."""

from tests.store.conftest import store  # noqa: F401
