"""Evaluation: run a data set against chosen settings, see metrics per setting, drill into questions, compare to the baseline."""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from rag.service import RagService
from rag.web import (
    dataset_label,
    escape_markdown,
    get_service,
    records,
    run_rows,
    show_error,
    sidebar,
    unique_runs,
)

EMPTY_STATE = ("No evaluation results yet: run `rag eval` from the command line, or start a run above "
               "when a data set is offered.")


def runner_section(service: RagService) -> None:
    """Pick a data set and settings, run with progress."""
    try:
        datasets = service.evaluation_datasets()
    except Exception as exc:
        show_error(exc)
        return
    if not datasets:
        st.info("No evaluation data sets are installed.")
        return
    st.subheader("Run an evaluation")
    with st.form("evaluation_run"):
        dataset = st.selectbox("Data set", datasets, format_func=dataset_label)
        left, middle, right = st.columns(3)
        top_k = left.number_input("top_k", 1, 50, service.settings.top_k)
        reranker = middle.text_input("Reranker", service.settings.reranker)
        answerer = right.text_input("Answerer", service.settings.answerer)
        limit = st.number_input("Questions (0 = all)", 0, 10_000, 0)
        go = st.form_submit_button("Run", type="primary", icon=":material/play_arrow:")
    if go:
        bar = st.progress(0.0, text="Starting...")

        def progress(done: int, total: int) -> None:
            bar.progress(done / max(total, 1), text=f"{done} of {total} questions")

        try:
            result = service.run_evaluation(dataset, top_k=int(top_k), reranker=reranker, answerer=answerer,
                                            limit=int(limit) or None, progress=progress)
        except Exception as exc:
            show_error(exc)
            return
        bar.progress(1.0, text="Done")
        st.session_state["evaluation_last"] = result


def runs_section(runs: list[dict[str, Any]]) -> None:
    """Runs as a table, metrics as a chart, baseline comparison and per-question drill-down.

    Each run is a dict as `RagService.evaluation_runs` gives it, one per id."""
    rows = run_rows(runs)
    st.subheader("Runs")
    st.dataframe(rows, hide_index=True)
    table = pd.DataFrame(rows)
    metric_cols = [c for c in table.columns if c.startswith("metrics.") and pd.api.types.is_numeric_dtype(table[c])]
    if metric_cols:
        chart = table.set_index("run")[metric_cols]
        chart.columns = [c.removeprefix("metrics.") for c in chart.columns]
        st.bar_chart(chart.T if len(chart) > 1 else chart, stack=False)
    for run in runs:
        if run.get("baseline_delta"):
            st.caption(f"Against the stored baseline: {escape_markdown(run['name'])}")
            st.dataframe(records([run["baseline_delta"]]), hide_index=True)
    chosen = st.selectbox("Questions of run", range(len(runs)), format_func=lambda i: runs[i]["name"])
    questions = runs[chosen].get("questions")
    if questions:
        st.dataframe(records(questions), hide_index=True)
    else:
        st.caption("This run kept no per-question details.")


sidebar()
st.title("Evaluation")
service = get_service()
runner_section(service)
runs: list[dict[str, Any]] = []
try:
    runs = service.evaluation_runs()
except Exception as exc:
    show_error(exc)
last = st.session_state.get("evaluation_last")
runs = unique_runs([*runs, last] if last is not None else runs)
if runs:
    runs_section(runs)
else:
    st.info(EMPTY_STATE, icon=":material/science:")
