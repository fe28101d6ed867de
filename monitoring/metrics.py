"""Latency percentiles per stage, error rate, tokens and cost per day, drift of queries and scores, alerts."""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

import numpy as np

from monitoring.request_log import STAGES, RequestLog, RequestRow

Level = Literal["ok", "warning", "critical"]


@dataclass
class DriftCheck:
    """One monitored signal: reference window vs recent window."""

    signal: str
    level: Level
    reference_mean: float | None
    recent_mean: float | None
    statistic: float | None
    detail: str


@dataclass
class Alert:
    level: Level
    message: str


@dataclass
class MonitoringReport:
    """What the Monitoring page shows."""

    requests: int
    errors: int
    error_rate: float
    latency_ms: dict[str, dict[str, float]]
    per_day: list[dict[str, float | str]]
    latency_over_time: list[dict[str, float | str]]
    drift: list[DriftCheck] = field(default_factory=list)
    alerts: list[Alert] = field(default_factory=list)
    feedback: dict[str, int] = field(default_factory=dict)


@dataclass
class Thresholds:
    """When an alert fires."""

    error_rate_warning: float = 0.05
    error_rate_critical: float = 0.20
    p95_total_ms_warning: float = 5000.0
    p95_total_ms_critical: float = 15000.0
    drift_warning: float = 0.3  # two-sample Kolmogorov-Smirnov statistic
    drift_critical: float = 0.5
    min_window: int = 20


def percentiles(values: list[float]) -> dict[str, float]:
    """p50/p95/p99 (linear interpolation), or empty when there are no values."""
    if not values:
        return {}
    arr = np.asarray(values, dtype=float)
    return {f"p{p}": float(np.percentile(arr, p)) for p in (50, 95, 99)}


def ks_statistic(a: list[float], b: list[float]) -> float:
    """Largest gap between the two empirical distribution functions (0 = same, 1 = disjoint)."""
    xs = np.sort(np.asarray(a, dtype=float))
    ys = np.sort(np.asarray(b, dtype=float))
    grid = np.concatenate([xs, ys])
    cdf_a = np.searchsorted(xs, grid, side="right") / len(xs)
    cdf_b = np.searchsorted(ys, grid, side="right") / len(ys)
    return float(np.max(np.abs(cdf_a - cdf_b)))


def drift_checks(rows: list[RequestRow], thresholds: Thresholds) -> list[DriftCheck]:
    """Compare the older half of the answered requests with the newer half, per signal."""
    answered = [r for r in rows if r.error is None]
    signals = {
        "top retrieval score": [r.top_score for r in answered if r.top_score is not None],
        "query length (words)": [float(len(r.question.split())) for r in answered],
        "abstention": [1.0 if r.abstained else 0.0 for r in answered],
    }
    checks = []
    for name, values in signals.items():
        half = len(values) // 2
        if half < thresholds.min_window:
            checks.append(DriftCheck(name, "ok", None, None, None,
                                     f"needs {2 * thresholds.min_window} requests, has {len(values)}"))
            continue
        reference, recent = values[:half], values[half:]
        stat = ks_statistic(reference, recent)
        level: Level = (
            "critical" if stat >= thresholds.drift_critical else "warning" if stat >= thresholds.drift_warning else "ok"
        )
        checks.append(DriftCheck(name, level, float(np.mean(reference)), float(np.mean(recent)), stat,
                                 f"KS statistic {stat:.2f} over {half} vs {len(recent)} requests"))
    return checks


def build_report(log: RequestLog, since: float | None = None, thresholds: Thresholds | None = None) -> MonitoringReport:
    """Everything the Monitoring page shows, from the request log."""
    thresholds = thresholds or Thresholds()
    rows = log.rows(since=since)
    errors = sum(1 for r in rows if r.error)
    ok_rows = [r for r in rows if not r.error]
    latency = {s: percentiles([r.timings[s] for r in ok_rows if s in r.timings]) for s in STAGES}
    days: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for r in rows:
        day = datetime.fromtimestamp(r.ts, UTC).strftime("%Y-%m-%d")
        days[day]["requests"] += 1
        days[day]["errors"] += 1 if r.error else 0
        days[day]["input_tokens"] += r.input_tokens
        days[day]["output_tokens"] += r.output_tokens
        days[day]["cost_usd"] += r.cost_usd
    per_day = [{"day": d, **dict(v)} for d, v in sorted(days.items())]
    hours: dict[str, list[RequestRow]] = defaultdict(list)
    for r in ok_rows:
        hours[datetime.fromtimestamp(r.ts, UTC).strftime("%Y-%m-%d %H:00")].append(r)
    over_time = []
    for hour, group in sorted(hours.items()):
        entry: dict[str, float | str] = {"hour": hour}
        for s in STAGES:
            p = percentiles([r.timings[s] for r in group if s in r.timings])
            for name, value in p.items():
                entry[f"{s}_{name}"] = value
        over_time.append(entry)
    report = MonitoringReport(
        requests=len(rows),
        errors=errors,
        error_rate=errors / len(rows) if rows else 0.0,
        latency_ms=latency,
        per_day=per_day,
        latency_over_time=over_time,
        drift=drift_checks(rows, thresholds),
        feedback={
            "helpful": sum(1 for r in rows if r.feedback == 1),
            "not_helpful": sum(1 for r in rows if r.feedback == -1),
        },
    )
    report.alerts = alerts(report, thresholds)
    return report


def alerts(report: MonitoringReport, thresholds: Thresholds) -> list[Alert]:
    """Active alerts: error rate, p95 latency, drift."""
    found: list[Alert] = []
    if report.requests:
        if report.error_rate >= thresholds.error_rate_critical:
            found.append(Alert("critical", f"Error rate {report.error_rate:.0%} of {report.requests} requests"))
        elif report.error_rate >= thresholds.error_rate_warning:
            found.append(Alert("warning", f"Error rate {report.error_rate:.0%} of {report.requests} requests"))
    p95 = report.latency_ms.get("total", {}).get("p95")
    if p95 is not None:
        if p95 >= thresholds.p95_total_ms_critical:
            found.append(Alert("critical", f"p95 total latency {p95:.0f} ms"))
        elif p95 >= thresholds.p95_total_ms_warning:
            found.append(Alert("warning", f"p95 total latency {p95:.0f} ms"))
    for check in report.drift:
        if check.level != "ok":
            found.append(Alert(check.level, f"Drift in {check.signal}: {check.detail}"))
    return found


def last_days(days: int) -> float:
    """A `since` timestamp `days` ago."""
    return time.time() - days * 86400
