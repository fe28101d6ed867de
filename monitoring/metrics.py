"""The monitoring report: latency percentiles per stage, error rate, tokens and cost per day,
drift per collection, answer quality against the baseline, and the alerts they raise."""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np

from monitoring.ab import ABReport, ab_report
from monitoring.alerts import (
    Alert,
    EvaluationStatus,
    QualityCheck,
    build_alerts,
    quality_checks,
    status_of,
)
from monitoring.config import MonitorConfig
from monitoring.drift import CollectionDrift, DriftCheck, collection_drift
from monitoring.request_log import STAGES, RequestLog, RequestRow

# Latency rows of the report: the trace's stages, the retrieval path and whole LLM answers.
RETRIEVAL_PATH = "retrieval_path"
LLM_ANSWER = "llm_answer"


@dataclass
class MonitoringReport:
    """What `rag monitor` prints and the Monitoring page shows."""

    requests: int
    errors: int
    error_rate: float
    latency_ms: dict[str, dict[str, float]]
    per_day: list[dict[str, float | str]]
    latency_over_time: list[dict[str, float | str]]
    drift: list[CollectionDrift] = field(default_factory=list)
    alerts: list[Alert] = field(default_factory=list)
    feedback: dict[str, int] = field(default_factory=dict)
    quality: list[QualityCheck] = field(default_factory=list)
    sources: dict[str, int] = field(default_factory=dict)
    recent_errors: list[dict[str, Any]] = field(default_factory=list)
    window: str = "all"
    since: float | None = None
    collection: str | None = None
    source: str | None = None
    generated_at: float = field(default_factory=time.time)
    # What the log holds, for filters: every collection and source with requests.
    known_collections: list[str] = field(default_factory=list)
    known_sources: list[str] = field(default_factory=list)
    # Variants against the control, when requests of the window carry A/B variants.
    ab: ABReport | None = None

    @property
    def status(self) -> str:
        """ok, warning or critical: the most severe alert (info alerts do not count)."""
        return status_of(self.alerts)

    @property
    def drift_checks(self) -> list[DriftCheck]:
        """Every drift check of every collection."""
        return [c for d in self.drift for c in d.checks]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready copy (`rag monitor --json`)."""
        return {
            "status": self.status,
            "generated_at": _iso(self.generated_at),
            "window": self.window,
            "since": _iso(self.since),
            "collection": self.collection,
            "source": self.source,
            "requests": self.requests,
            "errors": self.errors,
            "error_rate": self.error_rate,
            "sources": self.sources,
            "feedback": self.feedback,
            "latency_ms": self.latency_ms,
            "alerts": [{**a.to_dict(), "since": _iso(a.since)} for a in self.alerts],
            "drift": [
                {"collection": d.windows.collection, "level": d.level,
                 "windows": {**asdict(d.windows), **{k: _iso(getattr(d.windows, k)) for k in (
                     "reference_start", "reference_end", "current_start", "current_end")}},
                 "checks": [{**asdict(c), "enough_data": c.enough_data} for c in d.checks]}
                for d in self.drift
            ],
            "quality": [{**asdict(q), "created_at": _iso(q.created_at)} for q in self.quality],
            "per_day": self.per_day,
            "recent_errors": self.recent_errors,
            "ab": self.ab.to_dict() if self.ab is not None else None,
        }


def percentiles(values: Sequence[float]) -> dict[str, float]:
    """p50/p95/p99 (linear interpolation), or empty when there are no values."""
    if not values:
        return {}
    arr = np.asarray(values, dtype=float)
    return {f"p{p}": float(np.percentile(arr, p)) for p in (50, 95, 99)}


def is_llm_answer(row: RequestRow) -> bool:
    """Written by an LLM provider (not the extractive answerer, not a failed request)."""
    return row.error is None and bool(row.provider) and not row.provider.startswith("extractive")


def build_report(
    log: RequestLog,
    since: float | None = None,
    config: MonitorConfig | None = None,
    *,
    window: str | None = None,
    collection: str | None = None,
    source: str | None = None,
    evaluations: Sequence[EvaluationStatus] | None = None,
    remember_alerts: bool = True,
    now: float | None = None,
) -> MonitoringReport:
    """Everything the Monitoring page and `rag monitor` show, from the request log.

    `since`: the window's start (None: everything); `window` its label. `evaluations`: the latest
    evaluation runs with their baselines (None: not known, so no quality or schedule alerts).
    `remember_alerts`: keep in the log when each alert was first seen (its "since").
    """
    config = config or MonitorConfig()
    now = time.time() if now is None else now
    rows = log.rows(since=since, collection=collection, source=source)
    errors = [r for r in rows if r.error]
    ok_rows = [r for r in rows if not r.error]
    latency = {s: percentiles([r.timings[s] for r in ok_rows if s in r.timings]) for s in STAGES}
    path_values = [v for v in (r.retrieval_path_ms for r in ok_rows) if v is not None]
    llm_values = [r.timings["total"] for r in ok_rows if is_llm_answer(r) and "total" in r.timings]
    latency[RETRIEVAL_PATH] = percentiles(path_values)
    latency[LLM_ANSWER] = percentiles(llm_values)

    collections = [collection] if collection is not None else sorted({r.collection for r in rows if r.collection})
    last_evaluation = max((e.created_at for e in evaluations), default=None) if evaluations else None
    drift = [collection_drift(log, name, config.drift, source=source, current_since=since,
                              last_evaluation=last_evaluation) for name in collections]
    quality = quality_checks(evaluations or [], config)
    last_evaluation = max((e.created_at for e in evaluations or []), default=None)
    new_chunks: dict[str, int] = {}
    if last_evaluation is not None:
        for event in log.events(since=last_evaluation):
            if event.kind in ("ingest", "reindex") and (collection is None or event.collection == collection):
                new_chunks[event.collection] = new_chunks.get(event.collection, 0) + int(
                    event.detail.get("chunks_added", 0))
    label = window or ("all" if since is None else f"since {_iso(since)}")
    report = MonitoringReport(
        requests=len(rows),
        errors=len(errors),
        error_rate=len(errors) / len(rows) if rows else 0.0,
        latency_ms=latency,
        per_day=_per_day(rows),
        latency_over_time=_per_hour(ok_rows),
        drift=drift,
        feedback={"helpful": sum(1 for r in rows if r.feedback == 1),
                  "not_helpful": sum(1 for r in rows if r.feedback == -1)},
        quality=quality,
        sources=dict(Counter(r.source or "unknown" for r in rows)),
        recent_errors=[{"ts": _iso(r.ts), "collection": r.collection, "source": r.source, "question": r.question,
                        "error": r.error} for r in errors[-10:]],
        window=label, since=since, collection=collection, source=source, generated_at=now,
        known_collections=log.collections(), known_sources=[s for s in log.sources() if s],
        ab=ab_report(rows, config.ab),
    )
    report.alerts = build_alerts(
        config=config, window=label, requests=len(rows), errors=len(errors),
        retrieval_p95_ms=latency[RETRIEVAL_PATH].get("p95"), retrieval_values=len(path_values),
        llm_p95_ms=latency[LLM_ANSWER].get("p95"), llm_values=len(llm_values),
        drift=drift, quality=quality, last_evaluation=last_evaluation, new_chunks=new_chunks,
        evaluations_known=evaluations is not None, now=now,
    )
    if remember_alerts:
        scope = f"collection={collection or '*'};source={source or '*'};window={label}"
        first_seen = log.alert_since({f"{a.key}|{scope}": a.level for a in report.alerts}, now=now)
        for alert in report.alerts:
            alert.since = first_seen[f"{alert.key}|{scope}"]
    return report


def _per_day(rows: Sequence[RequestRow]) -> list[dict[str, float | str]]:
    days: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for r in rows:
        day = datetime.fromtimestamp(r.ts, UTC).strftime("%Y-%m-%d")
        days[day]["requests"] += 1
        days[day]["errors"] += 1 if r.error else 0
        days[day]["input_tokens"] += r.input_tokens
        days[day]["output_tokens"] += r.output_tokens
        days[day]["cost_usd"] += r.cost_usd
    return [{"day": d, **dict(v)} for d, v in sorted(days.items())]


def _per_hour(ok_rows: Sequence[RequestRow]) -> list[dict[str, float | str]]:
    hours: dict[str, list[RequestRow]] = defaultdict(list)
    for r in ok_rows:
        hours[datetime.fromtimestamp(r.ts, UTC).strftime("%Y-%m-%d %H:00")].append(r)
    over_time = []
    for hour, group in sorted(hours.items()):
        entry: dict[str, float | str] = {"hour": hour}
        for s in STAGES:
            for name, value in percentiles([r.timings[s] for r in group if s in r.timings]).items():
                entry[f"{s}_{name}"] = value
        over_time.append(entry)
    return over_time


def _iso(ts: float | None) -> str | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds")


def last_days(days: float) -> float:
    """A `since` timestamp `days` ago."""
    return time.time() - days * 86400
