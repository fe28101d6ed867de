"""Fixtures of the reliability tests: the API fixtures of tests/rag."""

from tests.rag.conftest import api_edge, api_home  # noqa: F401
