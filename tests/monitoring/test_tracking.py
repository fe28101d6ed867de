"""Evaluation runs logged to MLflow: parameters, metrics and report.json, in a file store under
RAG_HOME; nothing when MLflow is absent or RAG_MLFLOW=off."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from core.settings import Settings
from monitoring.tracking import flat_metrics, flat_params, log_evaluation, metric_key

pytestmark = pytest.mark.unit

SUMMARY = {
    "dataset": "samples", "questions": 25, "seconds": 12.5,
    "settings": {"chunker": "sentence", "chunk_size": 200, "retrieval": "hybrid", "weights": [1.0, 1.0],
                 "reranker": "none", "answerer": "extractive", "embedding_model": "bundled:all-MiniLM-L6-v2"},
    "metrics": {"hit@5": 0.92, "MRR@10": 0.81, "answered_rate": 0.9, "questions_scored": 25, "note": "text",
                "starter": {"hit@5": 0.7}},
}


def test_names_and_values_mlflow_accepts():
    assert metric_key("hit@5") == "hit_at_5" and metric_key("page_MRR@10") == "page_MRR_at_10"
    assert flat_params({"weights": [1.0, 2.0], "a": {"b": 3}}) == {"weights": "[1.0, 2.0]", "a.b": "3"}
    metrics = flat_metrics(SUMMARY["metrics"])
    assert metrics["hit_at_5"] == 0.92 and metrics["starter.hit_at_5"] == 0.7 and "note" not in metrics


def test_nothing_is_logged_without_mlflow_or_when_off(monkeypatch, rag_home):
    monkeypatch.setitem(sys.modules, "mlflow", None)  # import mlflow fails, as when it is not installed
    assert log_evaluation(Settings(), SUMMARY) is None
    monkeypatch.delitem(sys.modules, "mlflow")
    assert log_evaluation(Settings(mlflow="off"), SUMMARY) is None
    assert not (Path(rag_home) / "mlruns").exists()


def test_a_run_is_logged_to_a_file_store_under_rag_home(rag_home, monkeypatch):
    pytest.importorskip("mlflow", reason="MLflow is not installed: pip install 'rag-qa[mlflow]'")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    from mlflow.tracking import MlflowClient

    tracked = log_evaluation(Settings(), SUMMARY, {"dataset": "samples", "rows": [{"id": "q1"}]})
    assert tracked is not None and tracked.tracking_uri == (Path(rag_home).resolve() / "mlruns").as_uri()
    client = MlflowClient(tracking_uri=tracked.tracking_uri)
    run = client.get_run(tracked.run_id)
    assert run.data.params["chunker"] == "sentence" and run.data.params["dataset"] == "samples"
    assert run.data.params["weights"] == "[1.0, 1.0]" and run.data.params["questions"] == "25"
    assert run.data.metrics["hit_at_5"] == 0.92 and run.data.metrics["starter.hit_at_5"] == 0.7
    assert run.data.metrics["seconds"] == 12.5 and run.info.status == "FINISHED"
    [artifact] = client.list_artifacts(tracked.run_id)
    assert artifact.path == "report.json"
    local = client.download_artifacts(tracked.run_id, "report.json")
    assert json.loads(Path(local).read_text())["rows"] == [{"id": "q1"}]
    again = log_evaluation(Settings(), SUMMARY)  # the same experiment, a new run
    assert again.experiment == "rag-eval" and again.run_id != tracked.run_id
