"""Monitoring: latency per stage over time, error rate, tokens and cost per day, drift and alerts."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from monitoring.metrics import MonitoringReport
from rag.web import escape_markdown, get_service, records, show_error, sidebar

EMPTY_STATE = ("No monitoring data yet. Ask a few questions on the Chat page: each request's timings, "
               "tokens, cost and feedback are recorded and summarised here.")
BADGE_COLOURS = {"ok": "green", "warning": "orange", "critical": "red"}
LEVEL_ORDER = {"ok": 0, "info": 0, "warning": 1, "critical": 2}
PERCENTILES = ("p50", "p95", "p99")


def summary_section(report: MonitoringReport) -> None:
    """Requests, error rate and feedback."""
    cols = st.columns(4)
    cols[0].metric("Requests", report.requests)
    cols[1].metric("Error rate", f"{report.error_rate:.1%}", help=f"{report.errors} failed requests")
    cols[2].metric("Helpful", report.feedback.get("helpful", 0))
    cols[3].metric("Not helpful", report.feedback.get("not_helpful", 0))


def drift_section(report: MonitoringReport) -> None:
    """Drift status with warning/critical badges, one per monitored signal."""
    st.subheader("Drift")
    checks = report.drift_checks
    if not checks:
        st.caption("Not enough requests yet to compare a recent window with a reference window.")
        return
    worst = max((c.level for c in checks), key=lambda lv: LEVEL_ORDER[lv])
    st.badge(f"overall: {worst}", color=BADGE_COLOURS[worst])
    for check in checks:
        left, right = st.columns([1, 9], vertical_alignment="center")
        with left:
            st.badge(check.level, color=BADGE_COLOURS[check.level])
        right.caption(f"**{escape_markdown(check.signal)}**: {escape_markdown(check.detail)}")


def alerts_section(report: MonitoringReport) -> None:
    """Active alerts, critical first."""
    alerts = sorted(report.alerts, key=lambda a: -LEVEL_ORDER[a.level])
    st.subheader("Active alerts")
    if not alerts:
        st.success("No active alerts.")
    for alert in alerts:
        message = escape_markdown(alert.message)
        if alert.level == "critical":
            st.error(message, icon=":material/error:")
        elif alert.level == "warning":
            st.warning(message, icon=":material/warning:")
        else:
            st.info(message, icon=":material/info:")


def latency_section(report: MonitoringReport) -> None:
    """p50/p95/p99 per stage, overall and per hour."""
    st.subheader("Latency per stage (ms)")
    overall = {stage: values for stage, values in report.latency_ms.items() if values}
    if overall:
        st.dataframe(pd.DataFrame(overall).T.reindex(columns=list(PERCENTILES)).round(1), key="latency_table")
    over_time = pd.DataFrame(records(report.latency_over_time))
    if over_time.empty or "hour" not in over_time.columns:
        return
    over_time = over_time.set_index("hour")
    for tab, percentile in zip(st.tabs(list(PERCENTILES)), PERCENTILES, strict=True):
        columns = [c for c in over_time.columns if c.endswith(f"_{percentile}")]
        with tab:
            if columns:
                suffix = f"_{percentile}"
                chart = over_time[columns].rename(columns={c: c.removesuffix(suffix) for c in columns})
                st.line_chart(chart, x_label="hour (UTC)", y_label="ms")


def daily_section(report: MonitoringReport) -> None:
    """Tokens and cost per day."""
    table = pd.DataFrame(records(report.per_day))
    if table.empty or "day" not in table.columns:
        return
    st.subheader("Tokens and cost per day")
    table = table.set_index("day")
    token_cols = [c for c in table.columns if "token" in c]
    left, right = st.columns(2)
    if token_cols:
        left.bar_chart(table[token_cols], y_label="tokens")
    if "cost_usd" in table.columns:
        right.bar_chart(table[["cost_usd"]], y_label="USD")
    st.dataframe(table, key="daily_table")


sidebar()
st.title("Monitoring")
report: MonitoringReport | None = None
try:
    report = get_service().monitoring()
except Exception as exc:
    show_error(exc)
if report is None or not report.requests:
    st.info(EMPTY_STATE, icon=":material/monitoring:")
else:
    summary_section(report)
    alerts_section(report)
    drift_section(report)
    latency_section(report)
    daily_section(report)
