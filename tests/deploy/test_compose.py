"""The deployment files: compose services, ports, volumes, health checks and the app's URL wiring."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.unit

COMPOSE = REPO_ROOT / "docker-compose.yml"


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def test_qdrant_service_is_pinned_with_volume_and_healthcheck(compose):
    qdrant = compose["services"]["qdrant"]
    image, _, tag = qdrant["image"].partition(":")
    assert image == "qdrant/qdrant" and tag and tag != "latest"
    assert "6333:6333" in qdrant["ports"]
    volume = qdrant["volumes"][0].split(":")
    assert volume[1] == "/qdrant/storage" and volume[0] in compose["volumes"]
    assert qdrant["healthcheck"]["test"]


def test_app_is_built_here_and_points_at_qdrant(compose):
    app = compose["services"]["app"]
    assert app["build"] == "."
    assert app["environment"]["RAG_QDRANT_URL"] == "http://qdrant:6333"
    assert app["depends_on"]["qdrant"]["condition"] == "service_healthy"
    assert "8501:8501" in app["ports"]
    assert any(v.split(":")[1] == "/var/lib/rag" for v in app["volumes"])


def test_dockerfile_base_healthcheck_and_home():
    text = (REPO_ROOT / "Dockerfile").read_text()
    assert text.splitlines()[0].strip() == "FROM python:3.11-slim"
    assert "HEALTHCHECK" in text and "/_stcore/health" in text
    assert "RAG_HOME=/var/lib/rag" in text
    for folder in ("rag", "ingest", "retrieval", "llm", "evaluation", "monitoring", "pages", "data"):
        assert f"COPY {folder} " in text, folder
    assert (REPO_ROOT / "app.py").exists()


@pytest.mark.skipif(shutil.which("docker-compose") is None, reason="docker-compose is not installed")
def test_docker_compose_validates_the_file():
    result = subprocess.run(["docker-compose", "-f", str(COMPOSE), "config", "-q"], capture_output=True, text=True,
                            cwd=REPO_ROOT, timeout=60)
    assert result.returncode == 0, result.stderr


def test_env_example_lists_every_setting_and_loads(tmp_path, monkeypatch):
    from core.settings import Settings

    example = REPO_ROOT / ".env.example"
    names = {line.split("=", 1)[0] for line in example.read_text().splitlines() if line and not line.startswith("#")}
    expected = {f"RAG_{name.upper()}" for name in Settings.model_fields}
    assert expected <= names, expected - names
    (tmp_path / ".env").write_text(example.read_text())
    monkeypatch.chdir(tmp_path)
    for name in names:
        monkeypatch.delenv(name, raising=False)
    settings = Settings()
    assert settings.chunk_size == 200 and settings.qdrant_url is None
    assert Path(settings.home) == Path(".rag_home")
