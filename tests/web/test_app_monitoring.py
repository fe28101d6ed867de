"""The Monitoring page through AppTest: a drift alert with what to do, the drift table, the filters
by source and collection, and a question asked on the Chat page logged as "web"."""

from __future__ import annotations

import re

import pytest

from tests.monitoring.conftest import log_requests


def _plain(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", str(text))


@pytest.fixture
def monitored(web_home, monkeypatch):  # noqa: ANN001, ANN201
    """The app's service with small drift windows and a log of 60 usual questions from the web app,
    5 from the API, then 60 unusual ones from the command line (other words, other embeddings,
    lower scores, half of them abstained)."""
    for name, value in {"RAG_DRIFT_REFERENCE_REQUESTS": "60", "RAG_DRIFT_CURRENT_REQUESTS": "60",
                        "RAG_DRIFT_MIN_REQUESTS": "30"}.items():
        monkeypatch.setenv(name, value)
    from rag.web import get_service

    service = get_service()
    log = service.request_log
    log_requests(log, 60, collection="samples", source="web", seed=1)
    log_requests(log, 5, collection="samples", source="api", seed=2)
    log_requests(log, 60, collection="samples", source="cli", seed=3, question="quarterly revenue in the filing",
                 score=0.3, vector_shift=3.0, abstain_every=2)
    log_requests(log, 3, collection="other", source="web", seed=4)
    return service


def _drift_tables(at) -> dict:  # noqa: ANN001
    """The drift tables by collection."""
    tables = [d.value for d in at.dataframe if "signal" in d.value.columns]
    return {table["collection"].iloc[0]: table for table in tables}


def _metrics(at) -> dict[str, str]:  # noqa: ANN001
    return {m.label: m.value for m in at.metric}


@pytest.mark.integration
def test_drift_alert_with_its_action_and_the_drift_table(app, monitored) -> None:  # noqa: ANN001
    at = app.switch_page("pages/monitoring.py").run()
    assert not at.exception, at.exception
    assert _metrics(at)["Requests"] == "128"
    [drift_alert] = [_plain(e.value) for e in at.error if "Drift in" in _plain(e.value)]
    assert "of 'samples'" in drift_alert and "query embedding: cosine to reference centroid" in drift_alert
    assert "drift_psi = " in drift_alert and "threshold 0.2" in drift_alert and "since 20" in drift_alert
    assert "What to do: Evaluate on recent questions" in drift_alert
    table = _drift_tables(at)["samples"]
    levels = dict(zip(table["signal"], table["level"], strict=True))
    assert levels["abstention"] == "critical" and levels["top-1 retrieval score (dense cosine)"] == "critical"
    assert levels["feedback (helpful = 1)"] == "not enough data"
    assert set(table["n current"]) >= {60}
    other = _drift_tables(at)["other"]  # 3 requests: nothing to compare yet
    assert set(other["level"]) == {"not enough data"}
    # The scheduled evaluation is due (none has run): shown, without changing the status.
    assert any("No evaluation run yet" in _plain(i.value) for i in at.info)


@pytest.mark.integration
def test_filters_by_source_and_collection(app, monitored) -> None:  # noqa: ANN001
    at = app.switch_page("pages/monitoring.py").run()
    assert at.selectbox(key="monitor_source").options == ["(all)", "api", "cli", "web"]
    at.selectbox(key="monitor_source").set_value("api").run()
    assert not at.exception, at.exception
    assert _metrics(at)["Requests"] == "5"
    assert not [e for e in at.error if "Drift in" in _plain(e.value)]  # 5 API requests: not enough to compare
    at.selectbox(key="monitor_source").set_value("(all)").run()
    at.selectbox(key="monitor_collection").set_value("other").run()
    assert not at.exception, at.exception
    assert _metrics(at)["Requests"] == "3"
    assert list(_drift_tables(at)) == ["other"]


@pytest.mark.integration
def test_a_question_on_the_chat_page_is_logged_as_web(app, service, tmp_path) -> None:  # noqa: ANN001
    notes = tmp_path / "zephyr.txt"
    notes.write_text("The Zephyr turbine has three blades made of carbon fibre. It produces 4.2 megawatts.\n")
    service.ingest([notes], "samples")
    at = app.run()
    at.chat_input[0].set_value("What are the Zephyr blades made of?").run()
    assert not at.exception, at.exception
    at.switch_page("pages/monitoring.py").run()
    assert at.selectbox(key="monitor_source").options == ["(all)", "web"]
    at.selectbox(key="monitor_source").set_value("web").run()
    assert _metrics(at)["Requests"] == "1"
    assert [r.source for r in service.request_log.rows()] == ["web"]


@pytest.mark.integration
def test_ab_comparison_with_intervals_and_a_verdict(app, web_home, monkeypatch) -> None:  # noqa: ANN001
    import json

    import numpy as np

    monkeypatch.setenv("RAG_AB", "b:0.2")
    monkeypatch.setenv("RAG_AB_VARIANTS", json.dumps({"b": {"weights": [3, 1], "top_k": 3}}))

    from rag.web import get_service
    from tests.monitoring.conftest import make_answer, make_trace

    log = get_service().request_log
    rng = np.random.default_rng(0)
    for i in range(900):
        log.record(make_trace(f"q{i}", variant="control", total_ms=float(rng.normal(100, 10))), make_answer())
        log.record(make_trace(f"q{i}", variant="b", total_ms=float(rng.normal(130, 10))), make_answer())
    log.record(make_trace("one", variant="c"), make_answer())
    at = app.switch_page("pages/monitoring.py").run()
    assert not at.exception, at.exception
    [arms] = [d.value for d in at.dataframe if "arm" in d.value.columns]
    assert list(arms["arm"]) == ["control", "b", "c"] and list(arms["requests"]) == [900, 900, 1]
    assert list(arms["sets"]) == ["the settings as they are", "weights=[3.0, 1.0], top_k=3 (20% of sessions)",
                                  "not in RAG_AB now"]
    assert arms["p50 ms"].iloc[1] > arms["p50 ms"].iloc[0]
    assert "[" in arms["abstention"].iloc[0]  # a 95 % interval beside each rate
    [keep] = [_plain(w.value) for w in at.warning if "b: keep" in _plain(w.value)]
    assert "worse: latency_ms" in keep
    [wait] = [_plain(i.value) for i in at.info if "c: not enough data" in _plain(i.value)]
    assert "more requests per arm needed" in wait
