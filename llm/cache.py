"""Response cache: one SQLite file, keyed by provider, model, prompt and generation settings."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from contextlib import closing
from pathlib import Path

from core.types import Usage
from llm.base import LLMRequest, LLMResponse


class ResponseCache:
    """Replies kept for `ttl_s` seconds; a connection per call so threads can share one cache."""

    def __init__(self, path: Path, ttl_s: float) -> None:
        self.path = Path(path)
        self.ttl_s = ttl_s
        self._ready = False

    @staticmethod
    def key(provider: str, model: str, request: LLMRequest) -> str:
        """A stable hash of everything that decides the reply."""
        fields = {"provider": provider, "model": model, **request.cache_fields()}
        return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()

    def _connect(self) -> sqlite3.Connection:
        if not self._ready:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        connection = sqlite3.connect(self.path, timeout=10)
        if not self._ready:
            connection.execute(
                "CREATE TABLE IF NOT EXISTS responses (key TEXT PRIMARY KEY, created REAL, body TEXT)"
            )
            connection.commit()
            self._ready = True
        return connection

    def get(self, key: str) -> LLMResponse | None:
        """The cached reply for `key`, or None when absent or older than the TTL."""
        with closing(self._connect()) as db:
            row = db.execute("SELECT created, body FROM responses WHERE key = ?", (key,)).fetchone()
        if row is None or time.time() - row[0] > self.ttl_s:
            return None
        body = json.loads(row[1])
        return LLMResponse(
            text=body["text"],
            usage=Usage(**body["usage"]),
            cited_sources=body.get("cited_sources"),
        )

    def put(self, key: str, response: LLMResponse) -> None:
        """Store a reply (its raw vendor object is not kept)."""
        body = {
            "text": response.text,
            "usage": {
                "input_tokens": response.usage.input_tokens,
                "output_tokens": response.usage.output_tokens,
            },
            "cited_sources": response.cited_sources,
        }
        with closing(self._connect()) as db:
            db.execute(
                "INSERT OR REPLACE INTO responses (key, created, body) VALUES (?, ?, ?)",
                (key, time.time(), json.dumps(body)),
            )
            db.commit()

    def purge_expired(self) -> int:
        """Delete expired entries; returns how many went."""
        with closing(self._connect()) as db:
            count = db.execute(
                "DELETE FROM responses WHERE created < ?", (time.time() - self.ttl_s,)
            ).rowcount
            db.commit()
        return count
