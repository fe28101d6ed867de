"""Alerts: each says how bad (level), what (metric, value, threshold, window), since when, and what
to do, following the retraining triggers of a production ML system mapped to retrieval:

| trigger | action |
|---|---|
| scheduled (weekly) | re-run the evaluation |
| performance drop against the baseline | re-evaluate, then re-calibrate or re-index with another chunker or model |
| data drift (PSI > critical) | evaluate on recent questions, then re-index |
| new data volume since the last evaluation | re-calibrate the abstention threshold |

Latency and error alerts add their own (where to look, what to change).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from monitoring.config import MonitorConfig, Pair
from monitoring.drift import CollectionDrift

AlertLevel = Literal["info", "warning", "critical"]
LEVEL_ORDER = {"ok": 0, "info": 0, "warning": 1, "critical": 2}

ACTIONS = {
    "scheduled": "Re-run the evaluation: rag eval DATASET (weekly, on the data set of each collection).",
    "quality": ("Re-evaluate to confirm (rag eval DATASET), then re-calibrate the abstention threshold "
                "(rag calibrate DATASET --collection C) or re-index with another chunker or embedding model."),
    "drift": ("Evaluate on recent questions (label a sample of the current window), then re-index "
              "(another chunker or model, or the documents the new questions are about); "
              "rag monitor --new-reference once the change is in."),
    "new_data": ("Re-calibrate the abstention threshold on the grown collection: "
                 "rag calibrate DATASET --collection C (and re-run the evaluation)."),
    "retrieval_latency": ("Look at the slowest stage (embed, retrieve, rerank) in the latency table: a reranker on "
                          "CPU, a cold embedder or a large collection in the embedded store; drop the reranker, "
                          "use the int8 embedder or move to a Qdrant server."),
    "llm_latency": ("Use a smaller or closer model, lower RAG_CONTEXT_TOKENS, or put a faster provider first in "
                    "RAG_ANSWERER; check the provider's status."),
    "errors": ("Read the errors of the failed requests (rag monitor --json, the Monitoring page): a provider "
               "key or quota, the store (another process holding it), or a bad input; fix the cause, "
               "keep the extractive answerer last in the chain."),
}

# Metrics of an evaluation run where higher is better, on a 0-1 scale (counts and cost are not).
QUALITY_METRICS = (
    "hit@1", "hit@5", "recall@10", "MRR@10", "nDCG@10", "page_hit@1", "page_hit@5", "page_MRR@10",
    "exact_match", "token_f1", "semantic_similarity", "faithfulness", "citation_precision",
    "citation_page_accuracy", "answered_rate", "abstention_accuracy",
)

# A p95 of fewer values than this is little more than the maximum.
MIN_FOR_P95 = 20


@dataclass
class Alert:
    """One active alert."""

    level: AlertLevel
    metric: str
    value: float | None
    threshold: float | None
    window: str
    action: str
    message: str
    collection: str | None = None
    since: float | None = None  # first seen at this level (by any report over the same scope)

    @property
    def key(self) -> str:
        return f"{self.metric}:{self.collection or '*'}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class EvaluationStatus:
    """The latest evaluation run of a data set, with its committed baseline (the service fills it in)."""

    dataset: str
    created_at: float
    metrics: dict[str, Any]
    baseline: dict[str, Any] | None = None


@dataclass
class QualityCheck:
    """The latest run of one data set against its baseline: the largest drop among the quality metrics."""

    dataset: str
    created_at: float
    level: Literal["ok", "warning", "critical"]
    metric: str | None = None
    drop: float | None = None
    value: float | None = None
    baseline_value: float | None = None
    comparable: bool = True
    detail: str = ""
    drops: dict[str, float] = field(default_factory=dict)


def level_of(value: float, pair: Pair) -> Literal["ok", "warning", "critical"]:
    """critical above the second threshold, warning above the first, else ok."""
    if value > pair[1]:
        return "critical"
    if value > pair[0]:
        return "warning"
    return "ok"


def threshold_of(level: str, pair: Pair) -> float:
    return pair[1] if level == "critical" else pair[0]


def quality_checks(runs: Sequence[EvaluationStatus], config: MonitorConfig) -> list[QualityCheck]:
    """The latest run of each data set that has a baseline, against it."""
    latest: dict[str, EvaluationStatus] = {}
    for run in runs:
        if run.baseline and (run.dataset not in latest or run.created_at > latest[run.dataset].created_at):
            latest[run.dataset] = run
    checks = []
    for name, run in sorted(latest.items()):
        base = (run.baseline or {}).get("metrics", {})
        scored, base_scored = run.metrics.get("questions_scored"), base.get("questions_scored")
        if scored is not None and base_scored is not None and scored != base_scored:
            checks.append(QualityCheck(name, run.created_at, "ok", comparable=False, detail=(
                f"not comparable: the latest run scored {scored} questions, the baseline {base_scored} "
                "(run the whole data set, without --limit)")))
            continue
        drops = {m: float(base[m]) - float(run.metrics[m]) for m in QUALITY_METRICS
                 if isinstance(base.get(m), int | float) and isinstance(run.metrics.get(m), int | float)}
        if not drops:
            checks.append(QualityCheck(name, run.created_at, "ok", comparable=False,
                                       detail="no quality metric in common with the baseline"))
            continue
        metric = max(drops, key=lambda m: drops[m])
        drop = drops[metric]
        level = level_of(drop, config.quality_drop)
        checks.append(QualityCheck(
            name, run.created_at, level, metric, drop, float(run.metrics[metric]), float(base[metric]),
            detail=(f"largest drop: {metric} {float(run.metrics[metric]):.3f} vs baseline {float(base[metric]):.3f} "
                    f"({drop:+.3f} points below)" if drop > 0 else "no metric below its baseline"),
            drops={m: round(d, 4) for m, d in drops.items()}))
    return checks


def build_alerts(
    *,
    config: MonitorConfig,
    window: str,
    requests: int,
    errors: int,
    retrieval_p95_ms: float | None,
    retrieval_values: int,
    llm_p95_ms: float | None,
    llm_values: int,
    drift: Iterable[CollectionDrift] = (),
    quality: Iterable[QualityCheck] = (),
    last_evaluation: float | None = None,
    new_chunks: dict[str, int] | None = None,
    evaluations_known: bool = True,
    now: float | None = None,
) -> list[Alert]:
    """Every active alert, most severe first."""
    now = time.time() if now is None else now
    found: list[Alert] = []
    if requests:
        rate = errors / requests
        level = level_of(rate, config.error_rate)
        if level != "ok":
            found.append(Alert(level, "error_rate", rate, threshold_of(level, config.error_rate), window,
                               ACTIONS["errors"], f"Error rate {rate:.2%} ({errors} of {requests} requests)"))
    for metric, p95, count, pair, action, label in (
        ("retrieval_p95_ms", retrieval_p95_ms, retrieval_values, config.retrieval_p95_ms, "retrieval_latency",
         "retrieval path (embed + search + rerank)"),
        ("llm_answer_p95_ms", llm_p95_ms, llm_values, config.llm_answer_p95_ms, "llm_latency",
         "whole answers written by an LLM"),
    ):
        if p95 is None or count < MIN_FOR_P95:
            continue
        level = level_of(p95, pair)
        if level != "ok":
            found.append(Alert(level, metric, p95, threshold_of(level, pair), window, ACTIONS[action],
                               f"p95 of the {label}: {p95:.0f} ms over {count} requests"))
    for collection_drift in drift:
        drifted = [c for c in collection_drift.checks if c.level != "ok"]
        if not drifted:
            continue
        worst_check = max(drifted, key=lambda c: c.psi or 0.0)
        level = collection_drift.level
        names = ", ".join(f"{c.signal} ({c.psi:.2f})" for c in sorted(drifted, key=lambda c: -(c.psi or 0)))
        found.append(Alert(level, "drift_psi", worst_check.psi, threshold_of(level, config.psi), window,
                           ACTIONS["drift"],
                           f"Drift in {len(drifted)} of {len(collection_drift.checks)} signals of "
                           f"'{collection_drift.windows.collection}': {names}",
                           collection=collection_drift.windows.collection))
    for check in quality:
        if check.level != "ok" and check.drop is not None:
            found.append(Alert(check.level, "quality_drop", check.drop, threshold_of(check.level, config.quality_drop),
                               f"evaluation of {_day(check.created_at)}", ACTIONS["quality"],
                               f"Answer quality on {check.dataset}: {check.detail}", collection=None))
    if evaluations_known:
        age_days = None if last_evaluation is None else (now - last_evaluation) / 86400
        if age_days is None:
            found.append(Alert("info", "evaluation_age_days", None, config.evaluation_every_days, window,
                               ACTIONS["scheduled"], "No evaluation run yet: quality is not watched."))
        elif age_days > config.evaluation_every_days:
            found.append(Alert("info", "evaluation_age_days", age_days, config.evaluation_every_days, window,
                               ACTIONS["scheduled"],
                               f"The last evaluation is {age_days:.0f} days old (scheduled every "
                               f"{config.evaluation_every_days:g})."))
    for collection, chunks in sorted((new_chunks or {}).items()):
        if chunks >= config.new_chunks:
            found.append(Alert("warning", "new_chunks", float(chunks), float(config.new_chunks), "since the last evaluation",
                               ACTIONS["new_data"].replace(" C ", f" {collection} "),
                               f"{chunks} chunks added to '{collection}' since the last evaluation",
                               collection=collection))
    return sorted(found, key=lambda a: -LEVEL_ORDER[a.level])


def status_of(alerts: Iterable[Alert]) -> Literal["ok", "warning", "critical"]:
    """The overall status: the most severe warning or critical alert ("info" ones do not count)."""
    levels = [a.level for a in alerts]
    if "critical" in levels:
        return "critical"
    if "warning" in levels:
        return "warning"
    return "ok"


def _day(ts: float) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(ts))
