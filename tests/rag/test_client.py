"""The rag command as a client: the same commands against a running `rag serve` (found through this
RAG_HOME's server.json) and against the store directly print the same output and exit with the same codes."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rag.cli import app
from tests.rag.serve_process import RagServeProcess

pytestmark = [pytest.mark.integration, pytest.mark.slow]

KEY = "client-test-key"
MAX_FILE_MB = "0.01"  # 10 KB: big.txt is over it on both sides
TURBINE = ("Wind farm report. The Zephyr turbine produces 4.2 megawatts at a wind speed of twelve metres per "
           "second. Its blades are made of carbon fibre and measure sixty metres each.")
CANTEEN = "Staff canteen. Lunch is served from noon until two o'clock and the menu changes every Monday."

COMMANDS = [
    ["collections", "list"],
    ["collections", "create", "energy"],
    ["collections", "create", "bad name"],
    ["ingest", "{docs}", "--collection", "energy"],
    ["ingest", "{docs}", "--collection", "energy", "--json"],
    ["ingest", "{extra}/bad.xyz", "--collection", "energy"],
    ["ingest", "{extra}/missing.txt", "{docs}/turbine.txt", "--collection", "energy", "--chunk-size", "100"],
    ["ingest", "{docs}", "--collection", "energy", "--chunker", "words"],
    ["ingest", "{docs}", "--collection", "bad name"],
    ["docs", "list", "--collection", "energy"],
    ["docs", "list", "--collection", "energy", "--json"],
    ["ask", "How much power does the Zephyr turbine produce?", "--collection", "energy"],
    ["ask", "How much power does the Zephyr turbine produce?", "--collection", "energy", "--json", "--top-k", "2"],
    ["ask", "When is lunch served?", "-c", "energy", "--document", "sub/canteen.md", "--json"],
    ["ask", "When is lunch served?", "-c", "energy", "--document", "ghost.md"],
    ["ask", "anything", "--collection", "nope"],
    ["ask", "   ", "--collection", "energy", "--json"],
    ["docs", "delete", "sub/canteen.md", "--collection", "energy"],
    ["docs", "delete", "ghost.md", "--collection", "energy", "--json"],
    ["docs", "list", "--collection", "nope"],
    ["collections", "list", "--json"],
    ["collections", "delete", "energy"],
    ["collections", "delete", "energy", "--json"],
]

VOLATILE_JSON = {"seconds", "timings_ms", "request_id", "ingested_at"}


def normalised(text: str) -> str:
    """Output with what differs between any two runs (times, ids) replaced."""
    lines = []
    for line in text.splitlines():
        try:
            data = json.loads(line)
        except ValueError:
            data = None
        if isinstance(data, dict):
            line = json.dumps(_scrub(data), sort_keys=True)
        line = re.sub(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00", "<time>", line)
        line = re.sub(r" in \d+\.\d s\b", " in <s> s", line)
        line = re.sub(r"; \d+ ms;", "; <ms> ms;", line)
        lines.append(line)
    return "\n".join(lines)


def _scrub(value: object) -> object:
    if isinstance(value, dict):
        return {k: "<volatile>" if k in VOLATILE_JSON else _scrub(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrub(v) for v in value]
    return value


def make_documents(root: Path) -> tuple[Path, Path]:
    docs, extra = root / "docs", root / "extra"
    (docs / "sub").mkdir(parents=True)
    extra.mkdir()
    (docs / "turbine.txt").write_text(TURBINE)
    (docs / "sub" / "canteen.md").write_text(CANTEEN)
    (docs / ".hidden.txt").write_text("never taken")
    (docs / "photo.png").write_bytes(b"\x89PNG not taken from a folder")
    (docs / "big.txt").write_text("Too large. " * 1200)
    (docs / "empty.txt").write_text("")
    (extra / "bad.xyz").write_text("no reader takes this")
    return docs, extra


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RagServeProcess]:
    root = tmp_path_factory.mktemp("served")
    samples = root / "no_samples"
    samples.mkdir()
    server = RagServeProcess(root / "home", root / "serve.log", RAG_SAMPLES_DIR=str(samples),
                             RAG_MAX_FILE_MB=MAX_FILE_MB, RAG_API_KEYS=KEY)
    server.start()
    yield server
    server.stop()


def run_all(env: dict[str, str], docs: Path, extra: Path) -> list[tuple[list[str], int, str, str]]:
    runner = CliRunner()
    results = []
    for command in COMMANDS:
        args = [a.format(docs=docs, extra=extra) for a in command]
        result = runner.invoke(app, args, env=env, catch_exceptions=False)
        results.append((command, result.exit_code, normalised(result.stdout), normalised(result.stderr)))
    return results


def test_the_same_commands_print_the_same_through_the_server_and_directly(served, tmp_path, monkeypatch) -> None:  # noqa: ANN001
    docs, extra = make_documents(tmp_path)
    samples = tmp_path / "no_samples"
    samples.mkdir()
    for name in ("RAG_SERVER_URL", "RAG_SERVER_API_KEY", "RAG_QDRANT_URL", "RAG_ANSWERER", "RAG_RERANKER"):
        monkeypatch.delenv(name, raising=False)
    common = {"RAG_MAX_FILE_MB": MAX_FILE_MB, "RAG_SAMPLES_DIR": str(samples), "COLUMNS": "120"}
    # Through the server: this RAG_HOME is the server's, so its server.json leads there; the first key of
    # RAG_API_KEYS (the server's own setting in this shell) is the one sent.
    through_server = run_all({**common, "RAG_HOME": str(served.home), "RAG_API_KEYS": KEY}, docs, extra)
    directly = run_all({**common, "RAG_HOME": str(tmp_path / "direct_home")}, docs, extra)

    for (command, *server_side), (_, *direct_side) in zip(through_server, directly, strict=True):
        assert server_side == direct_side, f"rag {' '.join(command)}"
    codes = {" ".join(c): code for c, code, _, _ in directly}
    assert codes["ingest {docs} --collection energy"] == 1  # big.txt and empty.txt failed
    assert codes["ask anything --collection nope"] == 2 and codes["collections create bad name"] == 2
    assert codes["ask How much power does the Zephyr turbine produce? --collection energy"] == 0
    shown = {" ".join(c): out for c, _, out, _ in directly}
    assert "4.2 megawatts" in shown["ask How much power does the Zephyr turbine produce? --collection energy"]
    ingest = json.loads(shown["ingest {docs} --collection energy --json"])
    assert [(Path(f["path"]).name, f["status"]) for f in ingest["files"]] == [
        ("big.txt", "failed"), ("empty.txt", "failed"), ("canteen.md", "skipped"), ("turbine.txt", "skipped"),
        ("photo.png", "skipped")]  # a type no reader takes, found in the folder: skipped with the reason
    assert ingest["files"][-1]["error"]
    # The server really did the work: its store holds what the client sent, and the log shows no error.
    assert (served.home / "uploads" / "energy" / "sub" / "canteen.md").read_text() == CANTEEN
    assert "Traceback" not in served.log()


def test_a_key_is_needed_and_a_dead_server_is_passed_by(served, tmp_path, monkeypatch) -> None:  # noqa: ANN001
    for name in ("RAG_SERVER_URL", "RAG_SERVER_API_KEY", "RAG_API_KEYS"):
        monkeypatch.delenv(name, raising=False)
    runner = CliRunner()
    refused = runner.invoke(app, ["collections", "list"], env={"RAG_HOME": str(served.home)})
    assert refused.exit_code == 2
    assert f"The server at {served.url} needs an API key: set RAG_SERVER_API_KEY" in " ".join(refused.stderr.split())
    keyed = runner.invoke(app, ["collections", "list", "--json"],
                          env={"RAG_HOME": str(served.home), "RAG_SERVER_API_KEY": KEY})
    assert keyed.exit_code == 0 and "collections" in json.loads(keyed.stdout)
    twice = runner.invoke(app, ["serve", "--port", "9"], env={"RAG_HOME": str(served.home)})
    assert twice.exit_code == 2 and f"rag serve already runs for this RAG_HOME at {served.url}" in " ".join(
        twice.stderr.split())
    # RAG_SERVER_URL names a server that does not answer: the command opens its own store.
    alone = runner.invoke(app, ["collections", "list", "--json"],
                          env={"RAG_HOME": str(tmp_path / "home"), "RAG_SERVER_URL": "http://127.0.0.1:9"})
    assert alone.exit_code == 0 and json.loads(alone.stdout) == {"collections": []}
    # A stale server.json of a server that stopped (another instance id) is not trusted either.
    stale = tmp_path / "stale"
    stale.mkdir()
    (stale / "server.json").write_text(json.dumps({"url": served.url, "instance": "someone-else"}))
    other = runner.invoke(app, ["collections", "list", "--json"], env={"RAG_HOME": str(stale)})
    assert other.exit_code == 0 and json.loads(other.stdout) == {"collections": []}


def test_the_client_returns_what_the_service_returns() -> None:
    from dataclasses import fields

    from rag.client import CollectionSummary
    from rag.service import CollectionInfo

    assert [f.name for f in fields(CollectionSummary)] == [f.name for f in fields(CollectionInfo)]
