"""Monitoring: status and alerts with what to do, drift per collection, answer quality against the
baseline, latency per stage over time, error rate, tokens and cost per day; filtered by window,
collection and source (web, cli, api, eval)."""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd
import streamlit as st

from core.variants import describe_choices
from monitoring.alerts import Alert
from monitoring.drift import CollectionDrift
from monitoring.metrics import LLM_ANSWER, RETRIEVAL_PATH, MonitoringReport
from rag.web import escape_markdown, get_service, records, show_error, sidebar

EMPTY_STATE = ("No monitoring data yet. Ask a few questions on the Chat page: each request's timings, "
               "tokens, cost and feedback are recorded and summarised here.")
BADGE_COLOURS = {"ok": "green", "info": "blue", "warning": "orange", "critical": "red"}
LEVEL_ORDER = {"ok": 0, "info": 0, "warning": 1, "critical": 2}
PERCENTILES = ("p50", "p95", "p99")
WINDOWS = {"last hour": "1h", "last day": "1d", "last 7 days": "7d", "last 30 days": "30d", "everything": "all"}
ALL = "(all)"


def _when(ts: float | None) -> str:
    return "-" if ts is None else datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M UTC")


def filters() -> tuple[str, str | None, str | None]:
    """Window, collection and source, as chosen in the row of filters (read before the report is built)."""
    window = WINDOWS[st.session_state.get("monitor_window", "everything")]
    collection = st.session_state.get("monitor_collection", ALL)
    source = st.session_state.get("monitor_source", ALL)
    return window, None if collection == ALL else collection, None if source == ALL else source


def filter_row(report: MonitoringReport) -> None:
    """The filters, offering what the log holds."""
    cols = st.columns(3)
    cols[0].selectbox("Window", list(WINDOWS), index=list(WINDOWS).index("everything"), key="monitor_window")
    cols[1].selectbox("Collection", [ALL, *report.known_collections], key="monitor_collection")
    cols[2].selectbox("Source", [ALL, *report.known_sources], key="monitor_source",
                      help="Who asked: web (this app), cli (rag ask), api (the REST API), eval (scripted loads)")


def summary_section(report: MonitoringReport) -> None:
    """Status, requests, error rate, retrieval p95 and feedback."""
    st.badge(f"status: {report.status}", color=BADGE_COLOURS[report.status])
    cols = st.columns(5)
    cols[0].metric("Requests", report.requests,
                   help=", ".join(f"{k}: {v}" for k, v in sorted(report.sources.items())) or None)
    cols[1].metric("Error rate", f"{report.error_rate:.1%}", help=f"{report.errors} failed requests")
    p95 = report.latency_ms.get(RETRIEVAL_PATH, {}).get("p95")
    cols[2].metric("Retrieval p95", "-" if p95 is None else f"{p95:.0f} ms", help="embed + search + rerank")
    cols[3].metric("Helpful", report.feedback.get("helpful", 0))
    cols[4].metric("Not helpful", report.feedback.get("not_helpful", 0))


def alert_text(alert: Alert) -> str:
    """An alert as markdown: message, figures, since when, what to do (all text escaped)."""
    value = "-" if alert.value is None else f"{alert.value:.4g}"
    threshold = "-" if alert.threshold is None else f"{alert.threshold:.4g}"
    return (f"**{escape_markdown(alert.message)}**  \n"
            f"{escape_markdown(alert.metric)} = {escape_markdown(value)} (threshold {escape_markdown(threshold)}, "
            f"{escape_markdown(alert.window)}), since {escape_markdown(_when(alert.since))}  \n"
            f"What to do: {escape_markdown(alert.action)}")


def alerts_section(report: MonitoringReport) -> None:
    """Active alerts, critical first, each with what to do."""
    alerts = sorted(report.alerts, key=lambda a: -LEVEL_ORDER[a.level])
    st.subheader("Active alerts")
    if not alerts:
        st.success("No active alerts.")
    for alert in alerts:
        text = alert_text(alert)
        if alert.level == "critical":
            st.error(text, icon=":material/error:")
        elif alert.level == "warning":
            st.warning(text, icon=":material/warning:")
        else:
            st.info(text, icon=":material/info:")


def drift_table(drift: CollectionDrift) -> pd.DataFrame:
    """One row per signal: level, PSI, KS and its p-value, window sizes, means."""
    return pd.DataFrame([{
        "collection": c.collection, "signal": c.signal, "kind": c.kind, "level": c.level if c.enough_data else "not enough data",
        "PSI": c.psi, "KS": c.ks, "p": c.p_value, "n reference": c.n_reference, "n current": c.n_current,
        "mean reference": c.reference_mean, "mean current": c.current_mean,
    } for c in drift.checks])


def drift_section(report: MonitoringReport) -> None:
    """Drift per collection: the windows compared, then every signal."""
    st.subheader("Drift")
    if not report.drift:
        st.caption("No requests in this window.")
        return
    for drift in report.drift:
        w = drift.windows
        left, right = st.columns([1, 5], vertical_alignment="center")
        with left:
            st.badge(drift.level, color=BADGE_COLOURS[drift.level])
        right.markdown(f"**{escape_markdown(w.collection)}**: reference = {escape_markdown(w.reference_basis)} "
                       f"({w.n_reference}, {_when(w.reference_start)} to {_when(w.reference_end)}); "
                       f"current = the last {w.n_current} ({_when(w.current_start)} to {_when(w.current_end)})")
        if w.note:
            st.caption(escape_markdown(w.note))
        st.dataframe(drift_table(drift), key=f"drift_{w.collection}", hide_index=True)
    st.caption("A signal drifts when its PSI (bins at the reference's quantiles) passes the threshold and the "
               "two-sample KS test's p-value says it is not sampling noise.")


def quality_section(report: MonitoringReport) -> None:
    """The latest evaluation of each data set against its committed baseline."""
    if not report.quality:
        return
    st.subheader("Answer quality against the baseline")
    st.dataframe(pd.DataFrame([{
        "data set": q.dataset, "evaluated": _when(q.created_at), "level": q.level, "metric": q.metric,
        "value": q.value, "baseline": q.baseline_value, "drop": q.drop, "detail": q.detail,
    } for q in report.quality]), key="quality_table", hide_index=True)


def ab_section(report: MonitoringReport, variants: dict[str, dict]) -> None:
    """The A/B arms with what each sets and 95 % intervals, and each variant's verdict against the control."""
    if report.ab is None:
        return
    st.subheader("A/B variants")

    def rate(r) -> str:  # noqa: ANN001
        if r.value is None:
            return "-"
        low, high = r.interval
        return f"{r.value:.1%} [{low:.1%}, {high:.1%}]"

    st.dataframe(pd.DataFrame([{
        "arm": a.name, "sets": describe_choices(a.name, variants), "requests": a.requests,
        "p50 ms": a.latency_ms.get("p50"), "p95 ms": a.latency_ms.get("p95"),
        "p95 95% CI": "-" if "p95" not in a.latency_interval_ms else
        "{:.0f} to {:.0f}".format(*a.latency_interval_ms["p95"]),
        "errors": rate(a.errors), "abstention": rate(a.abstention), "grounded": rate(a.grounded),
        "helpful": rate(a.helpful), "feedback rate": rate(a.feedback_rate),
    } for a in report.ab.arms]), key="ab_table", hide_index=True)
    for v in report.ab.verdicts:
        text = f"**{escape_markdown(v.name)}: {escape_markdown(v.verdict)}**, {escape_markdown(v.reason)}"
        if v.verdict == "promote":
            st.success(text, icon=":material/trending_up:")
        elif v.verdict == "keep":
            st.warning(text, icon=":material/block:")
        else:
            st.info(text, icon=":material/hourglass_empty:")
        with st.expander(f"Tests of {v.name} against the control"):
            st.dataframe(pd.DataFrame([{
                "metric": c.metric, "test": c.test, "control": c.control, v.name: c.variant, "p-value": c.p_value,
                "significant": c.significant, "better": c.better,
            } for c in v.comparisons]), hide_index=True)


def latency_section(report: MonitoringReport) -> None:
    """p50/p95/p99 per stage, overall and per hour."""
    st.subheader("Latency per stage (ms)")
    overall = {stage: values for stage, values in report.latency_ms.items() if values}
    if overall:
        st.dataframe(pd.DataFrame(overall).T.reindex(columns=list(PERCENTILES)).round(1), key="latency_table")
        st.caption(f"{RETRIEVAL_PATH}: embed + search + rerank; {LLM_ANSWER}: whole answers written by an LLM.")
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


def errors_section(report: MonitoringReport) -> None:
    """The last failed requests, with their errors."""
    if report.recent_errors:
        st.subheader("Recent errors")
        st.dataframe(pd.DataFrame(report.recent_errors), key="errors_table", hide_index=True)


sidebar()
st.title("Monitoring")
report: MonitoringReport | None = None
window, collection, source = filters()
try:
    report = get_service().monitoring(window, collection=collection, source=source)
except Exception as exc:
    show_error(exc)
if report is not None and (report.known_collections or report.requests):
    filter_row(report)
if report is None or not report.requests:
    st.info(EMPTY_STATE, icon=":material/monitoring:")
else:
    summary_section(report)
    alerts_section(report)
    drift_section(report)
    quality_section(report)
    ab_section(report, get_service().ab_variants())
    latency_section(report)
    daily_section(report)
    errors_section(report)
