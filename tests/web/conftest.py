"""Fixtures of the web app tests: a clean service per test for AppTest, a live server for the browser."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
APP_FILE = REPO_ROOT / "app.py"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"]


def clear_streamlit_caches() -> None:
    """Close the cached service (it holds the store open) and drop every cached resource."""
    import streamlit as st

    from rag.web import get_page_renderer, get_service

    get_service().close()  # cheap when nothing was opened: the service builds its parts lazily
    get_page_renderer().close()  # its worker process, if a cited PDF page was rendered
    st.cache_resource.clear()


@pytest.fixture
def web_home(rag_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """RAG_HOME in a temp dir, no sample documents, no provider keys; caches cleared before and after."""
    samples = tmp_path / "no_samples"
    samples.mkdir()
    monkeypatch.setenv("RAG_SAMPLES_DIR", str(samples))
    for key in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "COHERE_API_KEY", "RAG_ANSWERER", "RAG_RERANKER"):
        monkeypatch.delenv(key, raising=False)
    clear_streamlit_caches()
    yield rag_home
    clear_streamlit_caches()


@pytest.fixture
def service(web_home: Path):
    """The app's own cached service, so documents ingested here are the ones the app sees."""
    from rag.web import get_service

    return get_service()


@pytest.fixture
def app(web_home: Path):
    """An AppTest of the whole app (st.navigation router, first page Chat), not yet run."""
    from streamlit.testing.v1 import AppTest

    return AppTest.from_file(str(APP_FILE), default_timeout=180)


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class StreamlitServer:
    """`streamlit run app.py` on 127.0.0.1 with its own RAG_HOME; stopped by the fixture."""

    def __init__(self, home: Path, samples: Path, log_path: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.home = home
        self.samples = samples
        self.log_path = log_path
        self.process: subprocess.Popen | None = None

    def start(self, timeout_s: float = 120.0) -> None:
        env = dict(os.environ, RAG_HOME=str(self.home), RAG_SAMPLES_DIR=str(self.samples), HF_HUB_OFFLINE="1",
                   TOKENIZERS_PARALLELISM="false")
        for key in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "COHERE_API_KEY", "RAG_ANSWERER", "RAG_RERANKER",
                    "RAG_QDRANT_URL"):
            env.pop(key, None)
        cmd = [sys.executable, "-m", "streamlit", "run", str(APP_FILE), "--server.address", "127.0.0.1",
               "--server.port", str(self.port), "--server.headless", "true",
               "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none"]
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(cmd, cwd=REPO_ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"streamlit exited early:\n{self.log_path.read_text(errors='replace')}")
            try:
                if httpx.get(f"{self.url}/_stcore/health", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        raise RuntimeError(f"streamlit did not become healthy:\n{self.log_path.read_text(errors='replace')}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        if getattr(self, "_log", None):
            self._log.close()


@pytest.fixture
def streamlit_server(tmp_path: Path) -> Iterator[StreamlitServer]:
    """A live app on a free port with an empty RAG_HOME and no samples."""
    samples = tmp_path / "no_samples"
    samples.mkdir()
    server = StreamlitServer(tmp_path / "rag_home", samples, tmp_path / "streamlit.log")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def browser_page(streamlit_server: StreamlitServer):
    """A Chromium page (Debian's binary, never downloaded) opened on the live app."""
    if not CHROMIUM.exists() and not shutil.which("chromium"):
        pytest.skip("Chromium is not installed at /usr/bin/chromium (CI installs Debian's chromium package)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(120_000)
        page.goto(streamlit_server.url)
        try:
            yield page
        finally:
            browser.close()


@pytest.fixture
def test_output_dir() -> Path:
    """The git-ignored folder for screenshots."""
    folder = REPO_ROOT / "test-output"
    folder.mkdir(exist_ok=True)
    return folder
