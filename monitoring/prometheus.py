"""The monitoring report in Prometheus' text format: `rag monitor --prometheus`, and a collector the
API's /metrics registry can hold (`registry.register(MonitoringCollector(lambda: service.monitoring("1d")))`).

Every figure is a gauge over the report's window (requests, error rate, latency percentiles),
plus drift per collection and signal, the quality drop per data set and the active alerts.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, InfoMetricFamily, Metric
from prometheus_client.registry import Collector

from monitoring.metrics import MonitoringReport

STATUS_VALUE = {"ok": 0, "warning": 1, "critical": 2}
LEVEL_VALUE = {"ok": 0, "info": 0, "warning": 1, "critical": 2}


def report_metrics(report: MonitoringReport) -> list[Metric]:
    """The report as metric families (names start with rag_monitor_)."""
    info = InfoMetricFamily("rag_monitor", "What the figures cover")
    info.add_metric([], {"window": report.window, "collection": report.collection or "",
                         "source": report.source or ""})
    status = GaugeMetricFamily("rag_monitor_status", "Overall status: 0 ok, 1 warning, 2 critical",
                               value=STATUS_VALUE[report.status])
    requests = GaugeMetricFamily("rag_monitor_requests", "Requests in the window", value=report.requests)
    errors = GaugeMetricFamily("rag_monitor_errors", "Failed requests in the window", value=report.errors)
    error_rate = GaugeMetricFamily("rag_monitor_error_rate", "Share of failed requests in the window",
                                   value=report.error_rate)
    by_source = GaugeMetricFamily("rag_monitor_requests_by_source", "Requests in the window by source",
                                  labels=["source"])
    for source, count in sorted(report.sources.items()):
        by_source.add_metric([source], count)
    feedback = GaugeMetricFamily("rag_monitor_feedback", "Feedback in the window", labels=["kind"])
    for kind, count in sorted(report.feedback.items()):
        feedback.add_metric([kind], count)
    latency = GaugeMetricFamily("rag_monitor_latency_ms", "Latency percentiles in the window (ms)",
                                labels=["stage", "quantile"])
    for stage, values in report.latency_ms.items():
        for name, value in values.items():
            latency.add_metric([stage, f"0.{name[1:]}"], value)
    psi = GaugeMetricFamily("rag_monitor_drift_psi", "Population stability index, reference vs current window",
                            labels=["collection", "signal", "kind"])
    ks = GaugeMetricFamily("rag_monitor_drift_ks_statistic", "Two-sample Kolmogorov-Smirnov statistic",
                           labels=["collection", "signal", "kind"])
    p_value = GaugeMetricFamily("rag_monitor_drift_ks_p_value", "Kolmogorov-Smirnov p-value",
                                labels=["collection", "signal", "kind"])
    drift_level = GaugeMetricFamily("rag_monitor_drift_level", "Drift per collection: 0 ok, 1 warning, 2 critical",
                                    labels=["collection"])
    for collection in report.drift:
        drift_level.add_metric([collection.windows.collection], LEVEL_VALUE[collection.level])
        for check in collection.checks:
            if check.psi is None:
                continue  # not enough data: no number rather than a noisy one
            labels = [check.collection, check.signal, check.kind]
            psi.add_metric(labels, check.psi)
            ks.add_metric(labels, check.ks or 0.0)
            p_value.add_metric(labels, check.p_value if check.p_value is not None else 1.0)
    quality = GaugeMetricFamily("rag_monitor_quality_drop", "Largest drop of the latest evaluation below its "
                                "baseline (points, 0-1 scale)", labels=["dataset", "metric"])
    for check in report.quality:
        if check.drop is not None and check.metric is not None:
            quality.add_metric([check.dataset, check.metric], check.drop)
    alert = GaugeMetricFamily("rag_monitor_alert", "Active alerts (value: the metric's value)",
                              labels=["level", "metric", "collection"])
    alerts = GaugeMetricFamily("rag_monitor_alerts", "Active alerts by level", labels=["level"])
    for level in ("info", "warning", "critical"):
        alerts.add_metric([level], sum(1 for a in report.alerts if a.level == level))
    for a in report.alerts:
        alert.add_metric([a.level, a.metric, a.collection or ""], a.value if a.value is not None else 1.0)
    return [info, status, requests, errors, error_rate, by_source, feedback, latency, psi, ks, p_value,
            drift_level, quality, alerts, alert, *ab_metrics(report)]


def ab_metrics(report: MonitoringReport) -> list[Metric]:
    """The A/B arms (requests, rates, latency) and each variant's verdict; none without variants."""
    if report.ab is None:
        return []
    requests = GaugeMetricFamily("rag_monitor_ab_requests", "Requests per A/B arm", labels=["variant"])
    rates = GaugeMetricFamily("rag_monitor_ab_rate", "Rates per A/B arm", labels=["variant", "metric"])
    latency = GaugeMetricFamily("rag_monitor_ab_latency_ms", "Whole-answer latency per A/B arm (ms)",
                                labels=["variant", "quantile"])
    for arm in report.ab.arms:
        requests.add_metric([arm.name], arm.requests)
        for metric in ("errors", "abstention", "grounded", "helpful", "feedback_rate"):
            value = getattr(arm, metric).value
            if value is not None:
                rates.add_metric([arm.name, metric], value)
        for name, value in arm.latency_ms.items():
            latency.add_metric([arm.name, f"0.{name[1:]}"], value)
    verdict = GaugeMetricFamily("rag_monitor_ab_verdict", "Verdict per variant (1 for the one that holds); "
                                "requests still needed in rag_monitor_ab_needed", labels=["variant", "verdict"])
    needed = GaugeMetricFamily("rag_monitor_ab_needed", "More requests per arm before a verdict",
                               labels=["variant"])
    for v in report.ab.verdicts:
        verdict.add_metric([v.name, v.verdict], 1)
        needed.add_metric([v.name], v.needed)
    return [requests, rates, latency, verdict, needed]


class MonitoringCollector(Collector):
    """A Prometheus collector that builds a fresh report on every scrape."""

    def __init__(self, report: Callable[[], MonitoringReport]) -> None:
        self._report = report

    def collect(self) -> Iterator[Metric]:
        yield from report_metrics(self._report())


def prometheus_text(report: MonitoringReport) -> str:
    """The report in Prometheus' text exposition format."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(MonitoringCollector(lambda: report))
    return generate_latest(registry).decode("utf-8")
