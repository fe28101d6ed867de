"""Experiment tracking: an evaluation run logged to MLflow, when MLflow is installed (`pip install
'rag-qa[mlflow]'`) and RAG_MLFLOW is not "off". Parameters (data set, chunker and sizes,
retrieval, reranker, answerer, model, ...), metrics (ours, and the LlamaIndex starter's under
"starter."), and report.json as an artifact. By default a local file store under
RAG_HOME/mlruns (`mlflow ui --backend-store-uri file://RAG_HOME/mlruns`); MLFLOW_TRACKING_URI
points at a server instead.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.settings import Settings

_METRIC_KEY = re.compile(r"[^A-Za-z0-9_\-. /]")


@dataclass(frozen=True)
class TrackedRun:
    """Where an evaluation run was logged."""

    run_id: str
    tracking_uri: str
    experiment: str


def mlflow_installed() -> bool:
    try:
        import mlflow  # noqa: F401
    except ImportError:
        return False
    return True


def tracking_uri(settings: Settings) -> str:
    """MLFLOW_TRACKING_URI when set, else a file store under RAG_HOME."""
    return os.environ.get("MLFLOW_TRACKING_URI") or (Path(settings.home).resolve() / "mlruns").as_uri()


def metric_key(name: str) -> str:
    """An MLflow metric name: hit@5 -> hit_at_5 (MLflow allows letters, digits, _ - . / and spaces)."""
    return _METRIC_KEY.sub("_", name.replace("@", "_at_"))


def flat_params(settings: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """Settings as MLflow parameters: scalars as they are, lists and dicts as JSON."""
    params: dict[str, str] = {}
    for key, value in settings.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            params.update(flat_params(value, f"{name}."))
        elif isinstance(value, list | tuple):
            params[name] = json.dumps(list(value))
        else:
            params[name] = str(value)
    return params


def flat_metrics(metrics: Mapping[str, Any], prefix: str = "") -> dict[str, float]:
    """The numeric metrics (nested ones, such as the starter's, under their prefix)."""
    found: dict[str, float] = {}
    for key, value in metrics.items():
        if isinstance(value, Mapping):
            found.update(flat_metrics(value, f"{prefix}{key}."))
        elif isinstance(value, int | float) and not isinstance(value, bool):
            found[metric_key(f"{prefix}{key}")] = float(value)
    return found


def log_evaluation(settings: Settings, summary: Mapping[str, Any], report: Mapping[str, Any] | None = None,
                   experiment: str = "rag-eval") -> TrackedRun | None:
    """Log one evaluation run (`rag eval --json`'s summary, report.json's content); None when MLflow
    is not installed or RAG_MLFLOW=off."""
    if settings.mlflow == "off" or not mlflow_installed():
        return None
    from mlflow.entities import Metric, Param
    from mlflow.tracking import MlflowClient

    uri = tracking_uri(settings)
    if uri.startswith("file:"):
        # MLflow 3 asks for a database store; a local file store is what needs no server or extra package.
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    client = MlflowClient(tracking_uri=uri)
    found = client.get_experiment_by_name(experiment)
    experiment_id = found.experiment_id if found is not None else client.create_experiment(experiment)
    dataset = str(summary.get("dataset", ""))
    run = client.create_run(experiment_id, run_name=f"{dataset} {time.strftime('%Y-%m-%d %H:%M')}",
                            tags={"dataset": dataset, "source": "rag eval"})
    params = {"dataset": dataset, "questions": str(summary.get("questions", "")),
              **flat_params(summary.get("settings") or {})}
    metrics = {**flat_metrics(summary.get("metrics") or {}), "seconds": float(summary.get("seconds") or 0.0)}
    now = int(time.time() * 1000)
    client.log_batch(run.info.run_id, metrics=[Metric(k, v, now, 0) for k, v in metrics.items()],
                     params=[Param(k, v[:6000]) for k, v in params.items()])
    if report is not None:
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "report.json"
            path.write_text(json.dumps(report, indent=1, ensure_ascii=False, default=str), encoding="utf-8")
            client.log_artifact(run.info.run_id, str(path))
    client.set_terminated(run.info.run_id)
    return TrackedRun(run.info.run_id, uri, experiment)
