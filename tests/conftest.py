"""Every test gets its own RAG_HOME; nothing a test does touches the project's state."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
SAMPLES = REPO_ROOT / "data"

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session")
def onnx_cache(request, tmp_path_factory) -> Path:
    """ONNX exports, shared by every test and kept between runs (each is keyed by the model's
    files and the CPU, so a stale one is never used): exporting MiniLM takes seconds."""
    if os.environ.get("RAG_ONNX_CACHE"):
        return Path(os.environ["RAG_ONNX_CACHE"])
    cache = getattr(request.config, "cache", None)
    return cache.mkdir("onnx-exports") if cache is not None else tmp_path_factory.mktemp("onnx-exports")


@pytest.fixture(autouse=True)
def rag_home(tmp_path_factory, monkeypatch, onnx_cache):
    """A fresh RAG_HOME per test, and settings read anew."""
    from core.settings import get_settings

    home = tmp_path_factory.mktemp("rag_home")
    monkeypatch.setenv("RAG_HOME", str(home))
    monkeypatch.setenv("RAG_ONNX_CACHE", str(onnx_cache))
    monkeypatch.delenv("RAG_QDRANT_URL", raising=False)
    for name in ("RAG_SERVER_URL", "RAG_SERVER_API_KEY", "RAG_API_KEYS", "RAG_METRICS_KEYS"):
        monkeypatch.delenv(name, raising=False)  # the rag command opens the test's own store, not a server's
    get_settings.cache_clear()
    yield home
    get_settings.cache_clear()


def eval_data_dir() -> Path | None:
    """The shared evaluation data sets: RAG_EVAL_DATA, else ../shared/eval beside the repository."""
    env = os.environ.get("RAG_EVAL_DATA")
    candidate = Path(env) if env else REPO_ROOT.parent / "shared" / "eval"
    return candidate if candidate.is_dir() else None
