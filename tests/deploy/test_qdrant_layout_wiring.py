"""The Qdrant collection-layout settings (RAG_QDRANT_SHARDS, ...) reach the app in compose and Kubernetes."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest
import yaml

from core.settings import Settings
from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.unit

COMPOSE = REPO_ROOT / "docker-compose.yml"
DEPLOYMENTS = [REPO_ROOT / "deploy/k8s/base/deployment.yaml",
               REPO_ROOT / "deploy/k8s/overlays/canary/deployment-canary.yaml"]
LAYOUT = sorted(f"RAG_{name.upper()}" for name in Settings.model_fields
                if name.startswith("qdrant_") and name not in ("qdrant_url", "qdrant_api_key"))
CHOSEN = {"RAG_QDRANT_SHARDS": "6", "RAG_QDRANT_REPLICATION_FACTOR": "2", "RAG_QDRANT_WRITE_CONSISTENCY": "2",
          "RAG_QDRANT_ON_DISK_PAYLOAD": "true", "RAG_QDRANT_ON_DISK_VECTORS": "true",
          "RAG_QDRANT_QUANTIZATION": "scalar", "RAG_QDRANT_OVERSAMPLING": "3"}


def test_every_layout_setting_is_chosen_here() -> None:
    assert sorted(CHOSEN) == LAYOUT  # a new RAG_QDRANT_* setting must be wired below too


def test_compose_passes_each_layout_setting_from_the_shell_empty_by_default() -> None:
    environment = yaml.safe_load(COMPOSE.read_text())["services"]["app"]["environment"]
    for name in LAYOUT:
        assert environment[name] == f"${{{name}:-}}", name


@pytest.mark.skipif(shutil.which("docker-compose") is None, reason="docker-compose is not installed")
def test_docker_compose_fills_them_in_and_the_app_reads_them(monkeypatch: pytest.MonkeyPatch) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_QDRANT_")} | CHOSEN
    result = subprocess.run(["docker-compose", "-f", str(COMPOSE), "config"], capture_output=True, text=True,
                            cwd=REPO_ROOT, timeout=60, env=env)
    assert result.returncode == 0, result.stderr
    app = yaml.safe_load(result.stdout)["services"]["app"]["environment"]
    assert {name: app[name] for name in LAYOUT} == CHOSEN
    for name in LAYOUT:
        monkeypatch.setenv(name, app[name])
    settings = Settings(_env_file=None)
    assert (settings.qdrant_shards, settings.qdrant_replication_factor, settings.qdrant_write_consistency,
            settings.qdrant_on_disk_payload, settings.qdrant_quantization) == (6, 2, 2, True, "scalar")


@pytest.mark.parametrize("path", DEPLOYMENTS, ids=["stable", "canary"])
def test_kubernetes_pods_read_the_optional_settings_configmap(path) -> None:  # noqa: ANN001
    deployment = yaml.safe_load(path.read_text())
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    assert {"configMapRef": {"name": "rag-qa-settings", "optional": True}} in container["envFrom"]
    assert not {e["name"] for e in container["env"]} & set(LAYOUT)  # env would override the ConfigMap
