"""The deployment files: compose services, ports, volumes, health checks and the app's URL wiring."""

from __future__ import annotations

import os
import re
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
    assert "HEALTHCHECK" in text and "http://127.0.0.1:8501/health" in text
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


# -- the optional local LLM: Ollama under the "ollama" profile ------------------------------------

def interpolated(value: str, env: dict[str, str]) -> str:
    """Compose's ${VAR:-default} and ${VAR} as `docker compose` fills them from `env`."""
    return re.sub(r"\$\{(\w+)(?::-([^}]*))?\}", lambda m: env.get(m.group(1)) or (m.group(2) or ""), value)


def test_ollama_is_optional_pinned_and_keeps_its_models(compose):
    ollama = compose["services"]["ollama"]
    assert ollama["profiles"] == ["ollama"]  # `docker compose up` alone does not start it
    image, _, tag = ollama["image"].partition(":")
    assert image == "ollama/ollama" and tag and tag != "latest"
    source, target = ollama["volumes"][0].split(":")
    assert target == "/root/.ollama" and source in compose["volumes"]
    assert ollama["ports"] == ["127.0.0.1:11434:11434"]  # no authentication: loopback only
    assert ollama["healthcheck"]["test"] == ["CMD", "ollama", "list"]
    # The window must hold the sources and the reply; Ollama's own default would cut them off.
    assert int(ollama["environment"]["OLLAMA_CONTEXT_LENGTH"]) >= 8192


def test_the_model_is_pulled_once_ollama_is_healthy(compose):
    pull = compose["services"]["ollama-pull"]
    assert pull["profiles"] == ["ollama"] and pull["image"] == compose["services"]["ollama"]["image"]
    assert pull["depends_on"]["ollama"]["condition"] == "service_healthy"
    assert pull["environment"]["OLLAMA_HOST"] == "http://ollama:11434"
    assert pull["restart"] == "no"
    assert [interpolated(part, {}) for part in pull["command"]] == ["pull", "llama3.2:1b"]
    assert interpolated(pull["command"][1], {"OLLAMA_MODEL": "qwen2.5:0.5b"}) == "qwen2.5:0.5b"


def test_app_answers_with_the_ollama_service_when_asked(compose, tmp_path, monkeypatch):
    from core.settings import Settings
    from llm.local_servers import OllamaProvider
    from llm.registry import make_provider

    app = compose["services"]["app"]
    assert "ollama" not in app["depends_on"]  # the app runs without the profile
    environment = {name: interpolated(str(value), {"RAG_ANSWERER": "ollama,extractive"})
                   for name, value in app["environment"].items()}
    assert environment["RAG_ANSWERER"] == "ollama,extractive"
    assert interpolated(app["environment"]["RAG_ANSWERER"], {}) == "extractive"  # the default stays offline
    pulled = interpolated(compose["services"]["ollama-pull"]["command"][1], {})
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("RAG_QDRANT_URL")
    provider = make_provider(Settings(home=tmp_path).answerer.split(",")[0], Settings(home=tmp_path))
    assert isinstance(provider, OllamaProvider)
    assert provider.base_url == "http://ollama:11434/v1" and provider.model == pulled


@pytest.mark.skipif(shutil.which("docker-compose") is None, reason="docker-compose is not installed")
def test_docker_compose_fills_in_the_ollama_profile():
    env = {k: v for k, v in os.environ.items() if k not in ("RAG_ANSWERER", "OLLAMA_MODEL", "RAG_OLLAMA_HOST")}
    env.update(RAG_ANSWERER="ollama,extractive", OLLAMA_MODEL="qwen2.5:0.5b", OLLAMA_HOST="0.0.0.0")
    result = subprocess.run(["docker-compose", "-f", str(COMPOSE), "--profile", "ollama", "config"],
                            capture_output=True, text=True, cwd=REPO_ROOT, timeout=60, env=env)
    assert result.returncode == 0, result.stderr
    services = yaml.safe_load(result.stdout)["services"]
    assert {name for name, service in services.items() if service.get("profiles")} == {"ollama", "ollama-pull"}
    assert services["ollama-pull"]["command"] == ["pull", "qwen2.5:0.5b"]
    app = services["app"]["environment"]
    assert app["RAG_ANSWERER"] == "ollama,extractive" and app["RAG_OLLAMA_MODEL"] == "qwen2.5:0.5b"
    assert app["OLLAMA_HOST"] == "http://ollama:11434"  # the shell's OLLAMA_HOST (a listen address) stays out
