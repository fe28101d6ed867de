"""The request log, the report's figures and its alerts (thresholds, actions, since when)."""

import sqlite3
import time

import numpy as np
import pytest

from monitoring.alerts import ACTIONS, EvaluationStatus, status_of
from monitoring.config import MonitorConfig, parse_time, parse_window
from monitoring.metrics import build_report, percentiles
from monitoring.request_log import MIGRATIONS, RequestLog
from tests.monitoring.conftest import make_answer, make_trace

pytestmark = pytest.mark.unit


def test_log_survives_reopen_and_records_feedback_source_and_drift_inputs(tmp_path):
    log = RequestLog(tmp_path / "log.sqlite")
    trace = make_trace("what?", vector=[0.5, -0.25, 1.0], source="cli", variant="b", top_score=0.7)
    rid = log.record(trace, make_answer(confidence=0.8))
    assert rid == trace.request_id
    log.record(make_trace("boom?", dense=None, sparse=None), None, error="RagError: down")
    assert log.set_feedback(rid, helpful=False)
    assert not log.set_feedback("unknown", helpful=True)
    log.close()
    rows = RequestLog(tmp_path / "log.sqlite").rows()
    assert [r.question for r in rows] == ["what?", "boom?"]
    first, failed = rows
    assert first.feedback == -1 and first.sources[0]["page"] == 2
    assert first.collection == "c" and first.top_score == 0.7 and first.timings == trace.timings_ms
    assert (first.source, first.variant, first.confidence) == ("cli", "b", 0.8)
    assert first.query_vector.tolist() == [0.5, -0.25, 1.0]  # float16 holds these exactly
    assert first.dense_scores == [0.6, 0.55, 0.5, 0.45, 0.4] and first.sparse_scores == [7.0, 5.0, 3.0]
    assert first.retrieval_path_ms == pytest.approx(10.0)
    assert failed.error.startswith("RagError") and failed.query_vector is None and failed.dense_scores is None


def test_a_log_of_the_first_schema_is_migrated_and_its_rows_still_read(tmp_path):
    path = tmp_path / "old.sqlite"
    conn = sqlite3.connect(path)
    conn.executescript(MIGRATIONS[0])
    conn.execute("PRAGMA user_version = 1")
    conn.execute("INSERT INTO requests VALUES ('r1', 1.0, 'c', 'q?', 'a', 0, 1, 'extractive', 'none', 0, 1, 2, 0.0, "
                 "'{\"total\": 5}', 0.4, '[]', NULL, NULL)")
    conn.commit()
    conn.close()
    log = RequestLog(path)
    [row] = log.rows()
    assert row.id == "r1" and row.source == "" and row.query_vector is None and row.timings == {"total": 5}
    log.record(make_trace("new"), make_answer())
    assert log.sources() == ["", "web"]
    version = sqlite3.connect(path).execute("PRAGMA user_version").fetchone()[0]
    assert version == len(MIGRATIONS)


def test_rows_filter_by_time_collection_and_source(log):
    for i, (collection, source) in enumerate([("a", "web"), ("a", "cli"), ("b", "api"), ("a", "web")]):
        log.record(make_trace(f"q{i}", collection=collection, source=source), make_answer())
    assert [r.question for r in log.rows(collection="a", source="web")] == ["q0", "q3"]
    assert [r.question for r in log.rows(limit=2)] == ["q2", "q3"]
    assert [r.question for r in log.first_rows(None, 2, collection="a")] == ["q0", "q1"]
    assert log.collections() == ["a", "b"] and log.sources() == ["api", "cli", "web"]
    report = build_report(log, source="web", evaluations=None)
    assert report.requests == 2 and report.sources == {"web": 2}


def test_report_percentiles_errors_and_cost(log):
    for ms in range(1, 101):
        log.record(make_trace(f"q{ms}", total_ms=float(ms * 10)), make_answer())
    for _ in range(25):
        log.record(make_trace("q"), None, error="boom")
    report = build_report(log)
    assert report.requests == 125 and report.errors == 25
    assert report.latency_ms["total"]["p50"] == pytest.approx(505.0)
    assert report.latency_ms["total"]["p99"] > report.latency_ms["total"]["p95"] > report.latency_ms["total"]["p50"]
    assert report.per_day[0]["cost_usd"] == pytest.approx(0.1)
    assert report.per_day[0]["input_tokens"] == 100 * 100
    [alert] = [a for a in report.alerts if a.metric == "error_rate"]
    assert alert.level == "critical" and alert.value == pytest.approx(0.2) and alert.threshold == 0.01
    assert alert.action == ACTIONS["errors"] and alert.window == "all" and alert.since is not None
    assert report.recent_errors[-1]["error"] == "boom" and report.status == "critical"


def test_error_rate_thresholds_are_the_production_ones(log):
    config = MonitorConfig()
    assert config.error_rate == (0.001, 0.01) and config.retrieval_p95_ms == (100.0, 200.0)
    assert config.psi == (0.1, 0.2) and config.quality_drop == (0.02, 0.05)
    for i in range(199):
        log.record(make_trace(f"q{i}"), make_answer())
    log.record(make_trace("bad"), None, error="boom")  # 1 of 200 = 0.5 %: above 0.1 %, below 1 %
    report = build_report(log, config=config)
    assert [(a.metric, a.level) for a in report.alerts] == [("error_rate", "warning")]
    assert report.status == "warning"


@pytest.mark.parametrize(("retrieval_ms", "level"), [(80.0, None), (150.0, "warning"), (250.0, "critical")])
def test_retrieval_path_p95_alert(log, retrieval_ms, level):
    for i in range(40):
        log.record(make_trace(f"q{i}", retrieval_ms=retrieval_ms, total_ms=retrieval_ms + 20), make_answer())
    alerts = {a.metric: a for a in build_report(log).alerts}
    if level is None:
        assert "retrieval_p95_ms" not in alerts
        return
    alert = alerts["retrieval_p95_ms"]
    assert alert.level == level and alert.value == pytest.approx(retrieval_ms)
    assert alert.threshold == (100.0 if level == "warning" else 200.0)
    assert "reranker" in alert.action


def test_latency_alerts_wait_for_enough_requests_and_llm_answers_have_their_own_pair(log):
    for i in range(10):
        log.record(make_trace(f"q{i}", retrieval_ms=500.0, total_ms=600.0), make_answer())
    assert not [a for a in build_report(log).alerts if a.metric.endswith("p95_ms")]  # p95 of 10 is the max
    for i in range(30):
        log.record(make_trace(f"llm{i}", retrieval_ms=50.0, total_ms=8000.0), make_answer(provider="openai:gpt-4o-mini"))
    report = build_report(log)
    alerts = {a.metric: a for a in report.alerts}
    assert alerts["llm_answer_p95_ms"].level == "warning" and alerts["llm_answer_p95_ms"].threshold == 5000.0
    assert report.latency_ms["llm_answer"]["p50"] == pytest.approx(8000.0)
    custom = build_report(log, config=MonitorConfig(llm_answer_p95_ms=(1000.0, 2000.0)))
    assert {a.metric: a.level for a in custom.alerts}["llm_answer_p95_ms"] == "critical"


def test_an_alert_keeps_the_time_it_was_first_seen_and_forgets_it_once_resolved(log):
    config = MonitorConfig(error_rate=(0.1, 0.5))
    log.record(make_trace("bad"), None, error="boom")
    first = build_report(log, config=config, now=1000.0)
    assert first.alerts[0].since == 1000.0 and first.alerts[0].level == "critical"
    again = build_report(log, config=config, now=2000.0)
    assert again.alerts[0].since == 1000.0
    for i in range(19):
        log.record(make_trace(f"q{i}"), make_answer())
    assert not build_report(log, config=config, now=3000.0).alerts  # 1 of 20: resolved
    for _ in range(3):
        log.record(make_trace("bad"), None, error="boom")
    back = build_report(log, config=config, now=4000.0).alerts
    assert back[0].level == "warning" and back[0].since == 4000.0  # a new episode
    # Another scope (one source) has its own episodes.
    assert build_report(log, config=config, source="web", now=5000.0).alerts[0].since == 5000.0


def _evaluation(drop: float, *, scored: int = 25, created: float | None = None) -> EvaluationStatus:
    baseline = {"metrics": {"hit@5": 0.9, "token_f1": 0.6, "questions_scored": 25, "cost_usd": 0.0}}
    metrics = {"hit@5": 0.9 - drop, "token_f1": 0.6 - drop / 2, "questions_scored": scored, "cost_usd": 9.0}
    return EvaluationStatus("samples", time.time() if created is None else created, metrics, baseline)


@pytest.mark.parametrize(("drop", "level"), [(0.01, None), (0.03, "warning"), (0.06, "critical")])
def test_answer_quality_against_the_committed_baseline(log, drop, level):
    report = build_report(log, evaluations=[_evaluation(drop)])
    [check] = report.quality
    assert check.metric == "hit@5" and check.drop == pytest.approx(drop)
    alerts = [a for a in report.alerts if a.metric == "quality_drop"]
    if level is None:
        assert not alerts and check.level == "ok"
        return
    assert alerts[0].level == level and alerts[0].action == ACTIONS["quality"]
    assert "hit@5" in alerts[0].message


def test_a_partial_evaluation_run_is_not_compared_with_the_baseline(log):
    report = build_report(log, evaluations=[_evaluation(0.5, scored=10)])
    assert not report.quality[0].comparable and "without --limit" in report.quality[0].detail
    assert not [a for a in report.alerts if a.metric == "quality_drop"]


def test_scheduled_evaluation_and_new_data_volume(log):
    assert [a.metric for a in build_report(log, evaluations=[]).alerts] == ["evaluation_age_days"]
    assert build_report(log, evaluations=[]).status == "ok"  # info alerts do not change the status
    old = _evaluation(0.0, created=time.time() - 10 * 86400)
    [alert] = build_report(log, evaluations=[old]).alerts
    assert alert.level == "info" and alert.value == pytest.approx(10, abs=0.1) and alert.action == ACTIONS["scheduled"]
    recent = _evaluation(0.0, created=time.time() - 60)
    log.mark("ingest", "docs", {"chunks_added": 700})
    assert not build_report(log, evaluations=[recent]).alerts
    log.mark("ingest", "docs", {"chunks_added": 400})
    [grown] = build_report(log, evaluations=[recent]).alerts
    assert (grown.metric, grown.level, grown.value, grown.collection) == ("new_chunks", "warning", 1100.0, "docs")
    assert "rag calibrate DATASET --collection docs" in grown.action
    assert not build_report(log, evaluations=None).alerts  # evaluations unknown: no schedule or quality alerts


def test_windows_times_and_statuses():
    now = 1_000_000.0
    assert parse_window("1d", now) == now - 86400 and parse_window("12h", now) == now - 43200
    assert parse_window("all") is None and parse_window(None) is None
    with pytest.raises(ValueError, match="unit s, m, h, d or w"):
        parse_window("yesterday")
    assert parse_time("1970-01-02") == 86400.0 and parse_time("") is None
    with pytest.raises(ValueError, match="ISO"):
        parse_time("tuesday")
    assert status_of([]) == "ok"


def test_settings_carry_the_thresholds(monkeypatch):
    from core.settings import Settings

    monkeypatch.setenv("RAG_ALERT_PSI", "[0.15, 0.3]")
    monkeypatch.setenv("RAG_DRIFT_REFERENCE_FROM", "2025-01-01")
    config = MonitorConfig.from_settings(Settings())
    assert config.psi == (0.15, 0.3) and config.drift.psi_warning == 0.15 and config.drift.psi_critical == 0.3
    assert config.drift.reference_from == parse_time("2025-01-01")
    assert config.retrieval_p95_ms == (100.0, 200.0) and config.error_rate == (0.001, 0.01)
    monkeypatch.setenv("RAG_ALERT_PSI", "[0.3, 0.1]")
    with pytest.raises(ValueError, match="warning <= critical"):
        Settings()


def test_percentiles_edges():
    assert percentiles([]) == {}
    assert percentiles([7.0])["p95"] == 7.0
    assert percentiles(list(np.arange(101.0)))["p99"] == pytest.approx(99.0)
