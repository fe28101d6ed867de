"""Evaluation runs kept in SQLite under RAG_HOME, for the Evaluation page and comparisons."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from evaluation.runner import EvalRun

BASELINES_DIR = Path(__file__).resolve().parent / "baselines"

# Numbered schema migrations: the database's user_version says how many have run.
MIGRATIONS = (
    """CREATE TABLE runs (
        id TEXT PRIMARY KEY,
        created_at REAL NOT NULL,
        dataset TEXT NOT NULL,
        dataset_path TEXT NOT NULL,
        questions INTEGER NOT NULL,
        seconds REAL NOT NULL,
        settings TEXT NOT NULL,
        metrics TEXT NOT NULL,
        starter_metrics TEXT,
        rows TEXT NOT NULL
    )""",
    "CREATE INDEX runs_created ON runs(created_at)",
)


class RunStore:
    """Saves and lists evaluation runs (settings, metrics, per-question rows)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()

    @contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        """A short-lived connection (runs are rare; nothing to keep open), schema brought up to date."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path)
        try:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            for number, statement in enumerate(MIGRATIONS[version:], start=version + 1):
                conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {number}")
            conn.commit()
            yield conn
            conn.commit()
        finally:
            conn.close()

    def save(self, run: EvalRun) -> str:
        """Store a run; returns its id."""
        run_id = uuid.uuid4().hex[:12]
        with self._lock, self._db() as db:
            db.execute(
                "INSERT INTO runs VALUES (?,?,?,?,?,?,?,?,?,?)",
                (run_id, run.created_at or time.time(), run.dataset, run.dataset_path, run.questions, run.seconds,
                 json.dumps(run.settings, default=str), json.dumps(run.metrics, default=str),
                 None if run.starter is None else json.dumps(run.starter.metrics, default=str),
                 json.dumps(run.ours.rows, default=str)),
            )
        return run_id

    def list(self, limit: int = 50, with_rows: bool = True) -> list[dict[str, Any]]:
        """The latest runs first: id, name, dataset, created_at, seconds, settings, metrics,
        starter (its metrics) and, with `with_rows`, per-question rows under 'questions'."""
        with self._lock, self._db() as db:
            cursor = db.execute(
                "SELECT id, created_at, dataset, dataset_path, questions, seconds, settings, metrics, "
                "starter_metrics, rows FROM runs ORDER BY created_at DESC LIMIT ?", (limit,))
            records = cursor.fetchall()
        runs = []
        for (run_id, created, dataset, path, questions, seconds, settings, metrics, starter, rows) in records:
            settings_d = json.loads(settings)
            run: dict[str, Any] = {
                "id": run_id,
                "name": f"{dataset} {time.strftime('%Y-%m-%d %H:%M', time.localtime(created))} "
                        f"({settings_d.get('chunker')} {settings_d.get('chunk_size')}, {settings_d.get('retrieval')})",
                "dataset": dataset,
                "dataset_path": path,
                "created_at": created,
                "questions_asked": questions,
                "seconds": round(seconds, 1),
                "settings": settings_d,
                "metrics": _scalars(json.loads(metrics)),
                "starter": _scalars(json.loads(starter)) if starter else {},
            }
            if with_rows:
                run["questions"] = [_flat_row(r) for r in json.loads(rows)]
            runs.append(run)
        return runs

    def close(self) -> None:
        """Nothing stays open between calls; kept so callers can treat it like the other stores."""


def _scalars(metrics: dict[str, Any]) -> dict[str, Any]:
    """Metrics without nested values (latency tables), for charts and tables."""
    return {k: v for k, v in metrics.items() if not isinstance(v, dict | list)}


def _flat_row(row: dict[str, Any]) -> dict[str, Any]:
    """A per-question row as one table line: the question, its top document, its metrics."""
    top = row.get("retrieved") or [{}]
    flat = {"id": row.get("id"), "question": row.get("question"), "answerable": row.get("answerable"),
            "top_document": top[0].get("document"), "top_page": top[0].get("page"),
            "answer": row.get("answer"), "abstained": row.get("abstained"),
            "negative": row.get("negative"), "confidence": row.get("confidence")}
    flat.update(row.get("metrics") or {})
    flat.update(row.get("answer_metrics") or {})
    return flat


def load_baseline(name: str) -> dict[str, Any] | None:
    """The committed baseline `evaluation/baselines/<name>.json`, or one whose 'datasets' names
    `name` (the sample set's folder is `data`); None when there is none."""
    direct = BASELINES_DIR / f"{name}.json"
    if direct.is_file():
        return json.loads(direct.read_text(encoding="utf-8"))
    for path in sorted(BASELINES_DIR.glob("*.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        if name in data.get("datasets", []):
            return data
    return None


def baseline_delta(name: str, metrics: dict[str, Any]) -> dict[str, float]:
    """Each metric minus its committed baseline value (positive = better than the baseline)."""
    baseline = load_baseline(name)
    if not baseline:
        return {}
    base = baseline.get("metrics", {})
    return {k: round(float(metrics[k]) - float(v), 4) for k, v in base.items()
            if isinstance(v, int | float) and isinstance(metrics.get(k), int | float)}
