"""Prometheus metrics of the serving process: HTTP requests of the API, every answer's stage timings
(from its trace, as the request log holds it), errors, tokens, cost, abstentions and ingestion; and the
monitoring report's figures over a window (rag_monitor_*, the same as `rag monitor --prometheus`)."""

from __future__ import annotations

import logging
import threading
import time
import weakref
from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from core.trace import STAGES
from monitoring.config import parse_window
from monitoring.prometheus import report_metrics

if TYPE_CHECKING:
    from prometheus_client.core import Metric
    from starlette.types import ASGIApp, Receive, Scope, Send

    from ingest.pipeline import IngestReport
    from monitoring.request_log import RequestRow
    from rag.service import RagService

# Fine steps around 100 ms: a canary is promoted on p95 < 100 ms (README: Serving).
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.125, 0.15, 0.2, 0.3, 0.5, 0.75, 1.0, 2.5, 5.0, 10.0,
                   30.0, 60.0)
CONTENT_TYPE = CONTENT_TYPE_LATEST
logger = logging.getLogger(__name__)


class ServingMetrics:
    """The metrics of one serving process, in their own registry (several apps in one test process
    never collide)."""

    def __init__(self, monitor_window: str | None = "1d") -> None:
        disable_created_metrics()  # no *_created series: they double the output and nobody reads them
        self.registry = CollectorRegistry()
        r = self.registry
        self.http_requests = Counter("rag_http_requests", "API requests by route and status",
                                     ("method", "route", "status"), registry=r)
        self.http_latency = Histogram("rag_http_request_duration_seconds", "API request latency by route",
                                      ("method", "route"), buckets=LATENCY_BUCKETS, registry=r)
        self.answers = Counter("rag_answers", "Answered questions (web app and API) by outcome",
                               ("outcome",), registry=r)
        self.stage_latency = Histogram("rag_stage_duration_seconds", "Time per stage of an answer, from its trace",
                                       ("stage",), buckets=LATENCY_BUCKETS, registry=r)
        self.tokens = Counter("rag_llm_tokens", "LLM tokens spent on answers", ("kind",), registry=r)
        self.cost = Counter("rag_llm_cost_usd", "LLM cost of answers in US dollars", registry=r)
        self.abstentions = Counter("rag_abstentions", "Answers that said the documents do not hold it",
                                   registry=r)
        self.errors = Counter("rag_errors", "Failures: answers that raised, API responses >= 500, failed jobs",
                              ("source",), registry=r)
        self.ingested_files = Counter("rag_ingested_files", "Files through ingestion by result", ("status",),
                                      registry=r)
        self.ingested_chunks = Counter("rag_ingested_chunks", "Chunks added by ingestion", registry=r)
        self._watched: weakref.WeakSet[RagService] = weakref.WeakSet()
        # Request-log rows counted so far: those up to `_since`, and which ones exactly at it.
        self._since = time.time()
        self._edge_ids: set[str] = set()
        self._refresh_lock = threading.Lock()
        # The monitoring report (rag_monitor_*) over this window, built at each scrape once a service
        # answers (None or "off": left out).
        self.monitor_window = None if (monitor_window or "off").strip().lower() == "off" else monitor_window
        self._monitored: weakref.ReferenceType[RagService] | None = None
        if self.monitor_window is not None:
            parse_window(self.monitor_window)  # a bad window fails now, with the message, not at each scrape
            r.register(_MonitorFigures(self))

    # What the service reports
    def watch(self, service: RagService) -> None:
        """Count this service's ingestions, and its answers from now on; once per service."""
        if service in self._watched:
            return
        self._watched.add(service)
        service.ingest_observers.append(self.observe_ingest)

    def refresh(self, service: RagService) -> None:
        """Count the answers its request log recorded since the last call (the web app's and the API's
        alike: the pipeline logs every request with its trace's stage timings)."""
        self._monitored = weakref.ref(service)
        rows = service.request_log.rows(since=self._since)
        with self._refresh_lock:
            for row in rows:
                if row.ts < self._since or (row.ts == self._since and row.id in self._edge_ids):
                    continue
                self.observe_row(row)
                if row.ts > self._since:
                    self._since, self._edge_ids = row.ts, set()
                self._edge_ids.add(row.id)

    def observe_row(self, row: RequestRow) -> None:
        """One answered (or failed) request, as the request log holds it."""
        if row.error:
            self.answers.labels("error").inc()
            self.errors.labels("answer").inc()
            return
        self.answers.labels("abstained" if row.abstained else "answered").inc()
        if row.abstained:
            self.abstentions.inc()
        for stage in STAGES:
            if stage in row.timings:
                self.stage_latency.labels(stage).observe(row.timings[stage] / 1000)
        self.tokens.labels("input").inc(max(row.input_tokens, 0))
        self.tokens.labels("output").inc(max(row.output_tokens, 0))
        self.cost.inc(max(row.cost_usd, 0.0))

    def observe_ingest(self, collection: str, report: IngestReport) -> None:
        """One ingest call's files and chunks."""
        for result in report.files:
            self.ingested_files.labels(result.status).inc()
        self.ingested_chunks.inc(report.chunks_added)

    def monitor_metrics(self) -> list[Metric]:
        """The monitoring report of the last refreshed service over `monitor_window`, as metric families;
        none before a refresh, or when the report cannot be built (logged: the scrape still answers)."""
        service = self._monitored() if self._monitored is not None else None
        if service is None or self.monitor_window is None:
            return []
        try:
            return report_metrics(service.monitoring(self.monitor_window))
        except Exception:
            logger.exception("could not build the monitoring report for /metrics")
            return []

    def observe_failed_job(self) -> None:
        self.errors.labels("ingest_job").inc()

    def exposition(self) -> bytes:
        """Everything, in Prometheus' text format."""
        return generate_latest(self.registry)


class _MonitorFigures:
    """A collector of the monitoring report's figures, fresh at each scrape (no describe(): the registry
    never collects it before a scrape)."""

    def __init__(self, metrics: ServingMetrics) -> None:
        self._metrics = weakref.ref(metrics)

    def collect(self) -> Iterator[Metric]:
        metrics = self._metrics()
        if metrics is not None:
            yield from metrics.monitor_metrics()


class HttpMetricsMiddleware:
    """Counts and times the requests of one ASGI app by route template (never by raw path)."""

    def __init__(self, app: ASGIApp, metrics: ServingMetrics, prefix: str = "") -> None:
        self.app = app
        self.metrics = metrics
        self.prefix = prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = [500]

        async def sending(message: dict) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            route = scope.get("route")
            template = self.prefix + (getattr(route, "path", None) or "(unmatched)")
            method = scope.get("method", "")
            self.metrics.http_requests.labels(method, template, str(status[0])).inc()
            self.metrics.http_latency.labels(method, template).observe(time.perf_counter() - started)
            if status[0] >= 500:
                self.metrics.errors.labels("http").inc()

