"""`rag serve` as a person runs it: a subprocess on 127.0.0.1 with its own RAG_HOME, stopped by the test."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.web.conftest import free_port

REPO_ROOT = Path(__file__).resolve().parents[2]
CLEARED = ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "COHERE_API_KEY", "RAG_ANSWERER", "RAG_RERANKER", "RAG_QDRANT_URL",
           "RAG_API_KEYS", "RAG_METRICS_KEYS", "RAG_SERVER_URL", "RAG_SERVER_API_KEY")


class RagServeProcess:
    """`python -m rag.cli serve --no-samples` on a free port; `env` adds settings (RAG_HOME and more)."""

    def __init__(self, home: Path, log_path: Path, **env: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.home = home
        self.log_path = log_path
        self.env = {k: v for k, v in os.environ.items() if k not in CLEARED}
        self.env.update(RAG_HOME=str(home), HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false", **env)
        self.process: subprocess.Popen | None = None

    def start(self, timeout_s: float = 240.0) -> RagServeProcess:
        cmd = [sys.executable, "-m", "rag.cli", "serve", "--port", str(self.port), "--address", "127.0.0.1",
               "--no-samples"]
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(cmd, cwd=REPO_ROOT, env=self.env, stdout=self._log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"rag serve exited early:\n{self.log()}")
            try:
                if httpx.get(f"{self.url}/ready", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        raise RuntimeError(f"rag serve did not become ready:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)  # as Ctrl+C: uvicorn shuts the app down cleanly
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        if getattr(self, "_log", None):
            self._log.close()
