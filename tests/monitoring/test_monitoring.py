import random

import pytest

from core.trace import Trace
from core.types import Answer, Citation, Usage
from monitoring.metrics import Thresholds, build_report, ks_statistic, percentiles
from monitoring.request_log import RequestLog

pytestmark = pytest.mark.unit


def _trace(question: str, total_ms: float = 100.0, top_score: float | None = None) -> Trace:
    """A request's trace as the answer pipeline leaves it."""
    trace = Trace(question=question, collection="c")
    for stage, ms in {"embed": 5.0, "retrieve": 10.0, "rerank": 0.0, "generate": total_ms - 15, "total": total_ms}.items():
        trace.add_time(stage, ms)
    if top_score is not None:
        trace.scores["context"] = [("c", top_score)]
    return trace


def _answer(abstained: bool = False) -> Answer:
    return Answer(
        text="x [1]",
        citations=[Citation(n=1, chunk_id="c", document="d.pdf", page=2, text="t", score=0.5)],
        abstained=abstained,
        usage=Usage(input_tokens=100, output_tokens=20),
        cost_usd=0.001,
    )


def test_log_survives_reopen_and_records_feedback(tmp_path):
    log = RequestLog(tmp_path / "log.sqlite")
    trace = _trace("what?", top_score=0.7)
    rid = log.record(trace, _answer())
    assert rid == trace.request_id
    log.record(_trace("boom?"), None, error="RagError: down")
    assert log.set_feedback(rid, helpful=False)
    assert not log.set_feedback("unknown", helpful=True)
    log.close()
    rows = RequestLog(tmp_path / "log.sqlite").rows()
    assert [r.question for r in rows] == ["what?", "boom?"]
    assert rows[0].feedback == -1 and rows[0].sources[0]["page"] == 2
    assert rows[0].collection == "c" and rows[0].top_score == 0.7 and rows[0].timings == trace.timings_ms
    assert rows[1].error.startswith("RagError")


def test_report_percentiles_errors_and_cost(tmp_path):
    log = RequestLog(tmp_path / "log.sqlite")
    for ms in range(1, 101):
        log.record(_trace(f"q{ms}", float(ms * 10)), _answer())
    for _ in range(25):
        log.record(_trace("q"), None, error="boom")
    report = build_report(log)
    assert report.requests == 125 and report.errors == 25
    assert report.latency_ms["total"]["p50"] == pytest.approx(505.0)
    assert report.latency_ms["total"]["p99"] > report.latency_ms["total"]["p95"] > report.latency_ms["total"]["p50"]
    assert report.per_day[0]["cost_usd"] == pytest.approx(0.1)
    assert report.per_day[0]["input_tokens"] == 100 * 100
    assert any(a.level == "critical" and "Error rate" in a.message for a in report.alerts)


def test_drift_fires_when_scores_shift_and_not_when_stable(tmp_path):
    rng = random.Random(0)
    stable = RequestLog(tmp_path / "stable.sqlite")
    for _ in range(80):
        stable.record(_trace("how long is the warranty", 50, rng.gauss(0.6, 0.05)), _answer())
    checks = {c.signal: c for c in build_report(stable).drift}
    assert checks["top retrieval score"].level == "ok"

    shifted = RequestLog(tmp_path / "shifted.sqlite")
    for i in range(80):
        score = rng.gauss(0.6, 0.05) if i < 40 else rng.gauss(0.3, 0.05)
        shifted.record(_trace("how long is the warranty", 50, score), _answer())
    report = build_report(shifted, thresholds=Thresholds(min_window=20))
    checks = {c.signal: c for c in report.drift}
    assert checks["top retrieval score"].level == "critical"
    assert checks["top retrieval score"].recent_mean < checks["top retrieval score"].reference_mean
    assert any("Drift in top retrieval score" in a.message for a in report.alerts)


def test_ks_and_percentiles_edges():
    assert ks_statistic([1, 2, 3], [1, 2, 3]) == 0.0
    assert ks_statistic([0, 0, 0], [1, 1, 1]) == 1.0
    assert percentiles([]) == {}
    assert percentiles([7.0])["p95"] == 7.0
