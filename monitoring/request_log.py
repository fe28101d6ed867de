"""Every answered (or failed) request, its stage timings, tokens, cost and feedback, in SQLite."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.trace import STAGES, Trace
from core.types import Answer

__all__ = ["STAGES", "RequestLog", "RequestRow"]

# Numbered schema migrations: each runs once, in order (PRAGMA user_version holds the last one).
MIGRATIONS = [
    """
    CREATE TABLE requests (
        id TEXT PRIMARY KEY,
        ts REAL NOT NULL,
        collection TEXT,
        question TEXT,
        answer TEXT,
        abstained INTEGER,
        grounded INTEGER,
        provider TEXT,
        reranker TEXT,
        cache_hit INTEGER,
        input_tokens INTEGER,
        output_tokens INTEGER,
        cost_usd REAL,
        timings TEXT,
        top_score REAL,
        sources TEXT,
        error TEXT,
        feedback INTEGER
    );
    CREATE INDEX requests_ts ON requests(ts);
    """,
]


@dataclass
class RequestRow:
    """One logged request."""

    id: str
    ts: float
    collection: str
    question: str
    answer: str | None
    abstained: bool
    grounded: bool
    provider: str
    reranker: str
    cache_hit: bool
    input_tokens: int
    output_tokens: int
    cost_usd: float
    timings: dict[str, float]
    top_score: float | None
    sources: list[dict[str, Any]]
    error: str | None
    feedback: int | None


class RequestLog:
    """Append-only log of requests with feedback; safe to share between threads."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(str(path), check_same_thread=False)
        self._migrate()

    def _migrate(self) -> None:
        version = self._conn.execute("PRAGMA user_version").fetchone()[0]
        for number, script in enumerate(MIGRATIONS, start=1):
            if number > version:
                self._conn.executescript(script)
                self._conn.execute(f"PRAGMA user_version = {number}")
        self._conn.commit()

    def record(self, trace: Trace, answer: Answer | None = None, error: str | None = None) -> str:
        """Log one request from its trace (id, question, collection, stage timings, top source score)
        and its answer (None when it failed with `error`); returns its id."""
        sources = [
            {"n": c.n, "document": c.document, "page": c.page, "chunk_id": c.chunk_id, "score": c.score}
            for c in (answer.citations if answer else [])
        ]
        row = (
            trace.request_id, time.time(), trace.collection, trace.question,
            answer.text if answer else None,
            int(answer.abstained) if answer else 0,
            int(answer.grounded) if answer else 0,
            answer.provider if answer else "",
            answer.reranker if answer else "",
            int(answer.cache_hit) if answer else 0,
            answer.usage.input_tokens if answer else 0,
            answer.usage.output_tokens if answer else 0,
            answer.cost_usd if answer else 0.0,
            json.dumps(trace.timings_ms),
            trace.top_score, json.dumps(sources), error, None,
        )
        with self._lock:
            self._conn.execute("INSERT INTO requests VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", row)
            self._conn.commit()
        return trace.request_id

    def set_feedback(self, request_id: str, helpful: bool) -> bool:
        """Record helpful (+1) or not helpful (-1); False when the request is unknown."""
        with self._lock:
            cur = self._conn.execute("UPDATE requests SET feedback=? WHERE id=?", (1 if helpful else -1, request_id))
            self._conn.commit()
        return cur.rowcount > 0

    def rows(self, since: float | None = None, limit: int | None = None) -> list[RequestRow]:
        """Requests, oldest first."""
        query = "SELECT * FROM requests"
        args: list[Any] = []
        if since is not None:
            query += " WHERE ts >= ?"
            args.append(since)
        query += " ORDER BY ts"
        if limit is not None:
            query = f"SELECT * FROM ({query.replace(' ORDER BY ts', ' ORDER BY ts DESC')} LIMIT {int(limit)}) ORDER BY ts"
        with self._lock:
            raw = self._conn.execute(query, args).fetchall()
        return [
            RequestRow(
                id=r[0], ts=r[1], collection=r[2], question=r[3], answer=r[4], abstained=bool(r[5]),
                grounded=bool(r[6]), provider=r[7], reranker=r[8], cache_hit=bool(r[9]), input_tokens=r[10],
                output_tokens=r[11], cost_usd=r[12], timings=json.loads(r[13] or "{}"), top_score=r[14],
                sources=json.loads(r[15] or "[]"), error=r[16], feedback=r[17],
            )
            for r in raw
        ]

    def close(self) -> None:
        with self._lock:
            self._conn.close()
