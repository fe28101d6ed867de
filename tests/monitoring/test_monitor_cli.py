"""`rag monitor`: status, figures and alerts from the request log, as text, JSON or Prometheus text,
with the exit code cron acts on."""

from __future__ import annotations

import json
import sqlite3
import time

import pytest
from prometheus_client.parser import text_string_to_metric_families
from typer.testing import CliRunner

from core.settings import get_settings
from monitoring.request_log import RequestLog
from rag.cli import app
from tests.monitoring.conftest import make_answer, make_trace

pytestmark = pytest.mark.unit

runner = CliRunner()


def _log() -> RequestLog:
    return RequestLog(get_settings().logs_dir / "requests.sqlite")


def _fill(requests: int, errors: int = 0, *, source: str = "web", collection: str = "c") -> None:
    log = _log()
    for i in range(requests):
        log.record(make_trace(f"q{i}", source=source, collection=collection), make_answer())
    for _ in range(errors):
        log.record(make_trace("bad", source=source, collection=collection), None, error="RagError: store busy")
    log.close()


def _monitor(*args: str):  # noqa: ANN202
    return runner.invoke(app, ["monitor", *args])


def test_all_well_exits_0_and_says_so():
    _fill(30)
    result = _monitor("--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["status"] == "ok" and data["requests"] == 30 and data["window"] == "1d"
    assert data["latency_ms"]["retrieval_path"]["p95"] == pytest.approx(10.0)
    # No evaluation run yet: an info alert that does not change the exit code.
    assert [a["metric"] for a in data["alerts"]] == ["evaluation_age_days"]
    text = _monitor()
    assert text.exit_code == 0 and text.output.startswith("OK (window 1d")


def test_warnings_exit_1_and_each_alert_says_what_to_do():
    _fill(199, 1)  # 0.5 % errors: above the 0.1 % warning, below the 1 % critical
    result = _monitor("--json")
    assert result.exit_code == 1, result.output
    [alert] = [a for a in json.loads(result.output)["alerts"] if a["metric"] == "error_rate"]
    assert alert["level"] == "warning" and alert["value"] == pytest.approx(0.005) and alert["threshold"] == 0.001
    assert alert["window"] == "1d" and alert["since"].endswith("+00:00") and "provider key" in alert["action"]
    text = _monitor()
    assert text.exit_code == 1
    assert "WARNING error_rate" in text.output and "-> Read the errors" in text.output


def test_critical_exits_2():
    _fill(20, 5)
    assert _monitor().exit_code == 2
    assert json.loads(_monitor("--json").output)["recent_errors"][0]["error"] == "RagError: store busy"


def test_window_collection_and_source_filters():
    _fill(10, source="cli", collection="a")
    _fill(5, source="web", collection="b")
    log = _log()
    log.record(make_trace("old", collection="a"), None, error="boom")
    log.close()
    with sqlite3.connect(get_settings().logs_dir / "requests.sqlite") as conn:
        conn.execute("UPDATE requests SET ts = ? WHERE question = 'old'", (time.time() - 3 * 86400,))
    assert json.loads(_monitor("--json").output)["requests"] == 15  # the old failure is outside 1d
    everything = json.loads(_monitor("--json", "--window", "all").output)
    assert everything["requests"] == 16 and everything["status"] == "critical"
    only_cli = json.loads(_monitor("--json", "--source", "cli").output)
    assert only_cli["requests"] == 10 and only_cli["sources"] == {"cli": 10}
    only_b = json.loads(_monitor("--json", "--collection", "b").output)
    assert only_b["requests"] == 5 and [d["collection"] for d in only_b["drift"]] == ["b"]
    bad = _monitor("--json", "--window", "yesterday")
    assert bad.exit_code == 2 and "unit s, m, h, d or w" in json.loads(bad.output)["error"]


def test_prometheus_text_carries_the_same_figures():
    _fill(199, 1)
    result = _monitor("--prometheus")
    assert result.exit_code == 1
    families = {f.name: f for f in text_string_to_metric_families(result.output)}
    assert families["rag_monitor_status"].samples[0].value == 1
    assert families["rag_monitor_requests"].samples[0].value == 200
    assert families["rag_monitor_error_rate"].samples[0].value == pytest.approx(0.005)
    latency = {(s.labels["stage"], s.labels["quantile"]): s.value for s in families["rag_monitor_latency_ms"].samples}
    assert latency[("retrieval_path", "0.95")] == pytest.approx(10.0)
    alerts = {s.labels["metric"]: s for s in families["rag_monitor_alert"].samples}
    assert alerts["error_rate"].labels["level"] == "warning"


def test_new_reference_marks_the_collection():
    result = _monitor("--new-reference", "--collection", "c")
    assert result.exit_code == 0 and "from now on" in result.output
    log = _log()
    assert [e.kind for e in log.events(collection="c")] == ["reference"]
    log.close()
    assert _monitor("--new-reference").exit_code == 2  # which collection?


@pytest.mark.integration
def test_a_question_asked_on_the_command_line_is_logged_with_its_source_and_drift_inputs(tmp_path):
    from rag.service import RagService

    notes = tmp_path / "zephyr.txt"
    notes.write_text("The Zephyr turbine has three blades made of carbon fibre. It produces 4.2 megawatts.\n")
    service = RagService()
    service.ingest([notes], "notes")
    service.close()
    asked = runner.invoke(app, ["ask", "What are the Zephyr blades made of?", "--collection", "notes"])
    assert asked.exit_code == 0, asked.output
    data = json.loads(_monitor("--json").output)
    assert data["sources"] == {"cli": 1} and data["requests"] == 1
    log = _log()
    [row] = log.rows()
    assert [e.kind for e in log.events(collection="notes")] == ["reindex"]  # a new collection: a new index
    log.close()
    assert row.source == "cli" and row.query_vector is not None and row.query_vector.shape == (384,)
    assert row.dense_scores and 0 < row.dense_scores[0] <= 1 and row.sparse_scores and row.sparse_scores[0] > 0
