"""Every answered (or failed) request, its stage timings, tokens, cost, feedback and the signals
drift detection watches (query embedding, raw search scores), in SQLite; plus collection events
(re-index, reference marks) and the state of active alerts."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from core.trace import STAGES, Trace
from core.types import Answer

__all__ = ["SOURCES", "STAGES", "CollectionEvent", "RequestLog", "RequestRow"]

# Where a request can come from; "" is a request logged before sources were recorded.
SOURCES = ("web", "cli", "api", "eval")
# Collection events: built anew, documents added or replaced, a new drift reference.
EVENT_KINDS = ("reindex", "ingest", "reference")

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
    # Drift inputs, who asked, the A/B variant; collection events; alert state ("since when").
    """
    ALTER TABLE requests ADD COLUMN source TEXT NOT NULL DEFAULT '';
    ALTER TABLE requests ADD COLUMN variant TEXT NOT NULL DEFAULT '';
    ALTER TABLE requests ADD COLUMN query_vector BLOB;
    ALTER TABLE requests ADD COLUMN dense_scores TEXT;
    ALTER TABLE requests ADD COLUMN sparse_scores TEXT;
    ALTER TABLE requests ADD COLUMN rerank_top REAL;
    ALTER TABLE requests ADD COLUMN confidence REAL;
    CREATE INDEX requests_collection_ts ON requests(collection, ts);
    CREATE TABLE events (
        ts REAL NOT NULL,
        kind TEXT NOT NULL,
        collection TEXT NOT NULL,
        detail TEXT
    );
    CREATE INDEX events_collection_ts ON events(collection, ts);
    CREATE TABLE alert_state (
        key TEXT PRIMARY KEY,
        level TEXT NOT NULL,
        since REAL NOT NULL,
        last_seen REAL NOT NULL
    );
    """,
]

_COLUMNS = (
    "id", "ts", "collection", "question", "answer", "abstained", "grounded", "provider", "reranker", "cache_hit",
    "input_tokens", "output_tokens", "cost_usd", "timings", "top_score", "sources", "error", "feedback",
    "source", "variant", "query_vector", "dense_scores", "sparse_scores", "rerank_top", "confidence",
)


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
    source: str = ""
    variant: str = ""
    # The query's dense embedding (float16 in the log), None when no dense search ran.
    query_vector: np.ndarray | None = None
    # Best raw scores of the dense (cosine) and sparse (BM25) lists; None: that search did not run,
    # an empty sparse list: no keyword of the question is in the collection.
    dense_scores: list[float] | None = None
    sparse_scores: list[float] | None = None
    rerank_top: float | None = None
    confidence: float | None = None

    @property
    def retrieval_path_ms(self) -> float | None:
        """Time to the ranked sources: embed + search + rerank (None for rows without timings)."""
        parts = [self.timings[s] for s in ("condense", "embed", "retrieve", "rerank") if s in self.timings]
        return float(sum(parts)) if parts else None


@dataclass(frozen=True)
class CollectionEvent:
    """Something that changes what drift compares against: a re-index, or a reference mark."""

    ts: float
    kind: str  # one of EVENT_KINDS
    collection: str
    detail: dict[str, Any] = field(default_factory=dict)


class RequestLog:
    """Append-only log of requests with feedback; safe to share between threads and processes."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.Lock()
        # The web app and `rag monitor` (cron) may use the file at once: wait for the other's write.
        self._conn = sqlite3.connect(str(path), check_same_thread=False, timeout=30)
        # Write-ahead log: readers (the Monitoring page, rag monitor) never block the writer; one
        # fsync per checkpoint instead of per request.
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._migrate()

    def _migrate(self) -> None:
        version = self._conn.execute("PRAGMA user_version").fetchone()[0]
        for number, script in enumerate(MIGRATIONS, start=1):
            if number > version:
                self._conn.executescript(f"BEGIN; {script}; PRAGMA user_version = {number}; COMMIT;")
        self._conn.commit()

    def record(self, trace: Trace, answer: Answer | None = None, error: str | None = None) -> str:
        """Log one request from its trace (id, question, collection, source, variant, stage timings,
        query embedding, raw search scores) and its answer (None when it failed with `error`); returns its id."""
        sources = [
            {"n": c.n, "document": c.document, "page": c.page, "chunk_id": c.chunk_id, "score": c.score}
            for c in (answer.citations if answer else [])
        ]
        reranked = trace.scores.get("rerank") or []
        rerank_top = reranked[0][1] if answer is not None and answer.reranker != "none" and reranked else None
        vector = (np.asarray(trace.query_vector, dtype=np.float16).tobytes()
                  if trace.query_vector is not None else None)
        values = {
            "id": trace.request_id, "ts": time.time(), "collection": trace.collection, "question": trace.question,
            "answer": answer.text if answer else None,
            "abstained": int(answer.abstained) if answer else 0,
            "grounded": int(answer.grounded) if answer else 0,
            "provider": answer.provider if answer else "",
            "reranker": answer.reranker if answer else "",
            "cache_hit": int(answer.cache_hit) if answer else 0,
            "input_tokens": answer.usage.input_tokens if answer else 0,
            "output_tokens": answer.usage.output_tokens if answer else 0,
            "cost_usd": answer.cost_usd if answer else 0.0,
            "timings": json.dumps(trace.timings_ms), "top_score": trace.top_score, "sources": json.dumps(sources),
            "error": error, "feedback": None, "source": trace.source, "variant": trace.variant,
            "query_vector": vector,
            "dense_scores": _json_or_none(trace.search_scores.get("dense")),
            "sparse_scores": _json_or_none(trace.search_scores.get("sparse")),
            "rerank_top": rerank_top,
            "confidence": answer.confidence if answer else None,
        }
        names = ", ".join(_COLUMNS)
        marks = ", ".join("?" for _ in _COLUMNS)
        with self._lock:
            self._conn.execute(f"INSERT INTO requests ({names}) VALUES ({marks})", [values[c] for c in _COLUMNS])
            self._conn.commit()
        return trace.request_id

    def set_feedback(self, request_id: str, helpful: bool) -> bool:
        """Record helpful (+1) or not helpful (-1); False when the request is unknown."""
        with self._lock:
            cur = self._conn.execute("UPDATE requests SET feedback=? WHERE id=?", (1 if helpful else -1, request_id))
            self._conn.commit()
        return cur.rowcount > 0

    def rows(
        self,
        since: float | None = None,
        limit: int | None = None,
        *,
        until: float | None = None,
        collection: str | None = None,
        source: str | None = None,
    ) -> list[RequestRow]:
        """Requests, oldest first: from `since`, before `until`, of one collection and one source;
        `limit`: only the latest that many."""
        where, args = _where(since=since, until=until, collection=collection, source=source)
        order = "DESC" if limit is not None else "ASC"
        query = f"SELECT {', '.join(_COLUMNS)} FROM requests{where} ORDER BY ts {order}"
        if limit is not None:
            query += f" LIMIT {int(limit)}"
        with self._lock:
            raw = self._conn.execute(query, args).fetchall()
        if limit is not None:
            raw.reverse()
        return [_row(r) for r in raw]

    def first_rows(
        self, since: float | None, limit: int, *, until: float | None = None, collection: str | None = None,
        source: str | None = None,
    ) -> list[RequestRow]:
        """The first `limit` requests from `since` (before `until`), oldest first."""
        where, args = _where(since=since, until=until, collection=collection, source=source)
        query = f"SELECT {', '.join(_COLUMNS)} FROM requests{where} ORDER BY ts ASC LIMIT {int(limit)}"
        with self._lock:
            raw = self._conn.execute(query, args).fetchall()
        return [_row(r) for r in raw]

    def collections(self) -> list[str]:
        """Collections that have logged requests."""
        with self._lock:
            raw = self._conn.execute("SELECT DISTINCT collection FROM requests ORDER BY collection").fetchall()
        return [r[0] for r in raw if r[0] is not None]

    def sources(self) -> list[str]:
        """Sources that have logged requests ("" for requests logged before sources were recorded)."""
        with self._lock:
            raw = self._conn.execute("SELECT DISTINCT source FROM requests ORDER BY source").fetchall()
        return [r[0] for r in raw]

    # Collection events
    def mark(self, kind: str, collection: str, detail: dict[str, Any] | None = None, ts: float | None = None) -> None:
        """Note a re-index ("reindex": the collection built anew), documents added or replaced
        ("ingest"), each with what changed, or a new drift reference ("reference")."""
        if kind not in EVENT_KINDS:
            raise ValueError(f"Unknown event kind {kind!r}: use {', '.join(EVENT_KINDS)}.")
        with self._lock:
            self._conn.execute("INSERT INTO events VALUES (?,?,?,?)",
                               (time.time() if ts is None else ts, kind, collection, json.dumps(detail or {})))
            self._conn.commit()

    def events(self, collection: str | None = None, kind: str | None = None,
               since: float | None = None) -> list[CollectionEvent]:
        """Events, oldest first."""
        clauses, args = [], []
        for column, value in (("collection", collection), ("kind", kind)):
            if value is not None:
                clauses.append(f"{column} = ?")
                args.append(value)
        if since is not None:
            clauses.append("ts >= ?")
            args.append(since)
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        with self._lock:
            raw = self._conn.execute(f"SELECT ts, kind, collection, detail FROM events{where} ORDER BY ts",
                                     args).fetchall()
        return [CollectionEvent(r[0], r[1], r[2], json.loads(r[3] or "{}")) for r in raw]

    # Alert state: when each active alert was first seen at its level
    def alert_since(self, active: dict[str, str], now: float | None = None) -> dict[str, float]:
        """Given the alerts active now (key -> level), the time each was first seen at that level;
        alerts no longer active are forgotten, so one that comes back starts anew."""
        now = time.time() if now is None else now
        with self._lock:
            known = {k: (lv, since) for k, lv, since in
                     self._conn.execute("SELECT key, level, since FROM alert_state").fetchall()}
            result: dict[str, float] = {}
            for key, level in active.items():
                previous = known.get(key)
                since = previous[1] if previous and previous[0] == level else now
                result[key] = since
                self._conn.execute("INSERT OR REPLACE INTO alert_state VALUES (?,?,?,?)", (key, level, since, now))
            # Only keys of the same scope are compared: a report filtered differently keeps the others.
            scopes = {key.split("|", 1)[1] for key in active if "|" in key}
            for key in known:
                if key not in active and "|" in key and key.split("|", 1)[1] in scopes:
                    self._conn.execute("DELETE FROM alert_state WHERE key = ?", (key,))
            self._conn.commit()
        return result

    def close(self) -> None:
        with self._lock:
            self._conn.close()


def _json_or_none(values: list[float] | None) -> str | None:
    return None if values is None else json.dumps([round(float(v), 6) for v in values])


def _where(**filters: Any) -> tuple[str, list[Any]]:
    clauses, args = [], []
    if filters.get("since") is not None:
        clauses.append("ts >= ?")
        args.append(filters["since"])
    if filters.get("until") is not None:
        clauses.append("ts < ?")
        args.append(filters["until"])
    for column in ("collection", "source"):
        if filters.get(column) is not None:
            clauses.append(f"{column} = ?")
            args.append(filters[column])
    return (f" WHERE {' AND '.join(clauses)}" if clauses else ""), args


def _row(r: tuple[Any, ...]) -> RequestRow:
    values = dict(zip(_COLUMNS, r, strict=True))
    vector = values["query_vector"]
    return RequestRow(
        id=values["id"], ts=values["ts"], collection=values["collection"], question=values["question"],
        answer=values["answer"], abstained=bool(values["abstained"]), grounded=bool(values["grounded"]),
        provider=values["provider"], reranker=values["reranker"], cache_hit=bool(values["cache_hit"]),
        input_tokens=values["input_tokens"], output_tokens=values["output_tokens"], cost_usd=values["cost_usd"],
        timings=json.loads(values["timings"] or "{}"), top_score=values["top_score"],
        sources=json.loads(values["sources"] or "[]"), error=values["error"], feedback=values["feedback"],
        source=values["source"] or "", variant=values["variant"] or "",
        query_vector=np.frombuffer(vector, dtype=np.float16).astype(np.float32) if vector else None,
        dense_scores=json.loads(values["dense_scores"]) if values["dense_scores"] is not None else None,
        sparse_scores=json.loads(values["sparse_scores"]) if values["sparse_scores"] is not None else None,
        rerank_top=values["rerank_top"], confidence=values["confidence"],
    )
