"""Every test gets its own RAG_HOME; nothing a test does touches the project's state."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
SAMPLES = REPO_ROOT / "data"

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


_OWN_EXPORTS = pytest.StashKey[Path]()


def pytest_configure(config):
    """One folder of ONNX exports for the whole run, set before any fixture builds Settings, so a
    module-scoped service (its own home, outside a test's environment) shares it too: each export
    writes about 120 MB."""
    if not os.environ.get("RAG_ONNX_CACHE"):
        cache = getattr(config, "cache", None)
        folder = cache.mkdir("onnx-exports") if cache is not None else None
        if folder is None:
            import tempfile

            folder = Path(tempfile.mkdtemp(prefix="rag-onnx-exports-"))
            config.stash[_OWN_EXPORTS] = folder
        os.environ["RAG_ONNX_CACHE"] = str(folder)


def pytest_unconfigure(config):
    """A folder of exports made for this run alone (pytest's cache off) goes with the run."""
    folder = config.stash.get(_OWN_EXPORTS, None)
    if folder is not None:
        import shutil

        shutil.rmtree(folder, ignore_errors=True)
        os.environ.pop("RAG_ONNX_CACHE", None)


@pytest.fixture(scope="session")
def onnx_cache() -> Path:
    """ONNX exports, shared by every test and kept between runs when pytest's cache is on (each is
    keyed by the model's files and the CPU, so a stale one is never used)."""
    return Path(os.environ["RAG_ONNX_CACHE"])


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
