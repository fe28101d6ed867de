"""Monitoring: latency per stage over time, error rate, tokens and cost per day, drift and alerts."""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from rag.web import attribute, escape_markdown, get_service, records, show_error, sidebar

EMPTY_STATE = ("No monitoring data yet. Ask a few questions on the Chat page: each request's timings, "
               "tokens, cost and feedback are recorded and summarised here.")
BADGE_COLOURS = {"ok": "green", "warning": "orange", "critical": "red"}


def latency_section(report: Any) -> None:
    """p50/p95/p99 per stage over time."""
    rows = records(attribute(report, "latency") or [])
    if not rows:
        return
    st.subheader("Latency per stage (ms)")
    table = pd.DataFrame(rows)
    time_col = next((c for c in ("period", "hour", "day", "ts", "time") if c in table.columns), None)
    if time_col and "stage" in table.columns:
        for percentile in [p for p in ("p50", "p95", "p99") if p in table.columns]:
            st.caption(percentile)
            st.line_chart(table.pivot_table(index=time_col, columns="stage", values=percentile))
    st.dataframe(table, hide_index=True)


def daily_section(report: Any) -> None:
    """Tokens and cost per day."""
    rows = records(attribute(report, "daily") or attribute(report, "usage_per_day") or [])
    if not rows:
        return
    st.subheader("Tokens and cost per day")
    table = pd.DataFrame(rows)
    if "day" in table.columns:
        numeric = [c for c in table.columns if c != "day" and pd.api.types.is_numeric_dtype(table[c])]
        token_cols = [c for c in numeric if "token" in c]
        cost_cols = [c for c in numeric if "cost" in c]
        if token_cols:
            st.bar_chart(table.set_index("day")[token_cols])
        if cost_cols:
            st.line_chart(table.set_index("day")[cost_cols])
    st.dataframe(table, hide_index=True)


def drift_section(report: Any) -> None:
    """Drift status with a warning/critical badge."""
    drift = attribute(report, "drift")
    if drift is None:
        return
    st.subheader("Drift")
    status = str(attribute(drift, "status", "ok")).lower()
    st.badge(status, color=BADGE_COLOURS.get(status, "gray"))
    detail = attribute(drift, "message") or attribute(drift, "detail")
    if detail:
        st.caption(escape_markdown(str(detail)))
    checks = attribute(drift, "checks") or attribute(drift, "metrics")
    if checks:
        st.dataframe(records(checks), hide_index=True)


def alerts_section(report: Any) -> None:
    """Active alerts, worst first."""
    alerts = list(attribute(report, "alerts") or [])
    st.subheader("Alerts")
    if not alerts:
        st.success("No active alerts.")
        return
    for alert in alerts:
        level = str(attribute(alert, "level", "warning")).lower()
        message = escape_markdown(str(attribute(alert, "message", alert)))
        (st.error if level == "critical" else st.warning)(message)


def summary_section(report: Any) -> None:
    """Headline figures."""
    figures = [("Requests", attribute(report, "requests")), ("Error rate", attribute(report, "error_rate")),
               ("Helpful", attribute(report, "helpful_rate")), ("Cost (USD)", attribute(report, "cost_usd"))]
    figures = [(label, value) for label, value in figures if isinstance(value, int | float)]
    if not figures:
        return
    for column, (label, value) in zip(st.columns(len(figures)), figures, strict=True):
        shown = f"{value:.1%}" if "rate" in label.lower() or label == "Helpful" else (
            f"{value:.4f}" if isinstance(value, float) else value)
        column.metric(label, shown)


sidebar()
st.title("Monitoring")
service = get_service()
report = None
if hasattr(service, "monitoring"):
    try:
        report = service.monitoring()
    except Exception as exc:
        show_error(exc)
if report is None or not attribute(report, "requests", 1):
    st.info(EMPTY_STATE, icon=":material/monitoring:")
else:
    summary_section(report)
    drift_section(report)
    alerts_section(report)
    latency_section(report)
    daily_section(report)
