"""SIGKILL in the middle of ingesting changed documents, in a loop, as Qdrant's crash tester does it:
kill at a random moment, restart, check every document, repeat. After each kill the embedded store
opens at once (no lock left behind) and every document is whole, old version or new, never a mix and
never missing; ingesting again completes the change.

The quick loop runs the real ingestion pipeline and Qdrant Edge in a child process with a hashing
embedder (the embedder is not what is under test); the slow loop kills the real `rag ingest`.
"""

from __future__ import annotations

import hashlib
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from store.edge import EdgeStore
from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.integration

COLLECTION = "crash"
OPTIONS = "sentence", 40, 0

_INGEST_WITH_HASH_EMBEDDER = """
import sys
sys.path.insert(0, sys.argv[3])
from pathlib import Path
from ingest.pipeline import ChunkingOptions, IngestionPipeline
from retrieval.sparse import Bm25Encoder
from store.edge import EdgeStore
from tests.ingest.test_pipeline import HashEmbedder
from ingest.chunkers import make_chunker
store = EdgeStore(Path(sys.argv[1]))
# Commits of a few documents each (not one for all eight), so that kills land between commits.
pipeline = IngestionPipeline(store, HashEmbedder(), Bm25Encoder(), batch_points=40)
make_chunker("sentence", 40, 0)  # the imports done, so the kills land in the ingestion itself
if store.collection_exists("crash"):
    store.count("crash")  # the shard open
print("ready", flush=True)
def progress(event):
    if event["event"] == "done":
        print("done", event["index"], flush=True)
report = pipeline.ingest([Path(sys.argv[2])], "crash", ChunkingOptions("sentence", 40, 0), progress=progress)
assert not report.failed, report.failed
store.close()
print("done", flush=True)
"""


def write_version(folder: Path, version: int, documents: int) -> dict[str, str]:
    """Version `version` of every document (lengths change with it); returns each file's sha256."""
    folder.mkdir(parents=True, exist_ok=True)
    shas = {}
    for d in range(documents):
        sentences = 20 + (d * 7 + version * 13) % 25
        text = " ".join(f"Document {d} version {version} sentence {i} says the pump runs at {i} degrees."
                        for i in range(sentences))
        path = folder / f"doc{d:02d}.txt"
        path.write_text(text)
        shas[path.name] = hashlib.sha256(text.encode()).hexdigest()
    return shas


def stored_versions(root: Path) -> dict[str, str]:
    """Each stored document's sha256, after checking it is whole: one version, every chunk of it."""
    store = EdgeStore(root)
    try:
        found: dict[str, list] = {}
        for chunk in store.scroll(COLLECTION):
            found.setdefault(chunk.payload["source"], []).append(chunk)
        versions = {}
        for source, chunks in found.items():
            shas = {c.payload["sha256"] for c in chunks}
            assert len(shas) == 1, f"{source}: chunks of {len(shas)} versions mixed"
            assert len(chunks) == chunks[0].payload["doc_chunks"], f"{source}: {len(chunks)} chunks of a version " \
                f"that has {chunks[0].payload['doc_chunks']}"
            assert sorted(c.payload["chunk_index"] for c in chunks) == list(range(len(chunks))), source
            marks = {c.text.split(" sentence ")[0].split(" version ")[-1] for c in chunks}
            assert len(marks) == 1, f"{source}: texts of versions {marks}"
            versions[source] = shas.pop()
        return versions
    finally:
        store.close()


def run_child(args: list[str], env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO_ROOT,
                            env={**os.environ, "PYTHONPATH": str(REPO_ROOT), **env})


def crash_loop(rounds: int, documents: int, command: list[str], root: Path, folder: Path, env: dict[str, str],
               seed: int, *, says_ready: bool, whole_run: Callable[[], None] | None = None) -> None:
    """`rounds` kills of `command` while it ingests a changed version of `documents` documents.

    With `says_ready`, the command prints "ready" just before ingesting and "done N" after each
    document, and each kill lands after a random number of documents, a random moment into the next
    one; at least one must leave the documents part old, part new. `whole_run`, when given, runs the
    same ingestion in this process for the first version and the final re-run (no kill there).
    """
    rng = random.Random(seed)

    def start() -> tuple[subprocess.Popen, float]:
        child = run_child(command, env)
        if says_ready:
            assert child.stdout is not None and child.stdout.readline().strip() == "ready"
        return child, time.monotonic()

    # Version 0, ingested whole; its duration sets the window the kills land in.
    history = [write_version(folder, 0, documents)]
    started = time.monotonic()
    if whole_run is not None:
        whole_run()
    else:
        child, started = start()
        assert child.wait(timeout=600) == 0, child.stderr.read() if child.stderr else ""
    window = time.monotonic() - started
    before = stored_versions(root)
    assert before == history[0]
    killed_midway = 0
    for round_ in range(1, rounds + 1):
        history.append(write_version(folder, round_, documents))
        child, _ = start()
        if says_ready:
            # Past a random number of documents, then a random moment into the next one.
            target = rng.randint(1, documents - 1)
            assert child.stdout is not None
            line = "-"
            while line and line.split() != ["done", str(target)]:
                line = child.stdout.readline()  # "" at the end: the child stopped early
            time.sleep(rng.uniform(0.0, window / documents))
        else:
            time.sleep(rng.uniform(0.05, 0.95) * window)
        if child.poll() is None:
            child.send_signal(signal.SIGKILL)
        child.wait(timeout=60)
        stored = stored_versions(root)  # opens at once: the kill left no lock behind
        assert set(stored) == set(history[-1]), f"round {round_}: documents missing"
        for name, sha in stored.items():
            assert sha in (before[name], history[-1][name]), f"round {round_}: {name} is neither old nor new"
        newer = sum(stored[name] == history[-1][name] for name in stored)
        killed_midway += 0 < newer < documents
        before = stored
    # Ingesting again completes the change: every document at the last version.
    if whole_run is not None:
        whole_run()
    else:
        child, _ = start()
        assert child.wait(timeout=600) == 0, child.stderr.read() if child.stderr else ""
    assert stored_versions(root) == history[-1]
    if says_ready:
        assert killed_midway >= 1, "no kill landed between two documents: the loop tested nothing"


def ingest_here(root: Path, folder: Path) -> Callable[[], None]:
    """The child's ingestion, run whole in this process."""
    def run() -> None:
        from ingest.pipeline import ChunkingOptions, IngestionPipeline
        from retrieval.sparse import Bm25Encoder
        from tests.ingest.test_pipeline import HashEmbedder

        store = EdgeStore(root)
        try:
            report = IngestionPipeline(store, HashEmbedder(), Bm25Encoder()).ingest(
                [folder], COLLECTION, ChunkingOptions(*OPTIONS))
            assert not report.failed, report.failed
        finally:
            store.close()

    return run


def hash_command(root: Path, folder: Path) -> list[str]:
    return [sys.executable, "-c", _INGEST_WITH_HASH_EMBEDDER, str(root), str(folder), str(REPO_ROOT)]


def test_sigkill_mid_ingest_leaves_every_document_whole(tmp_path: Path) -> None:
    root, folder = tmp_path / "edge", tmp_path / "docs"
    crash_loop(3, 8, hash_command(root, folder), root, folder, {}, seed=15, says_ready=True,
               whole_run=ingest_here(root, folder))


@pytest.mark.slow
def test_sigkill_mid_ingest_crash_loop_20_rounds(tmp_path: Path) -> None:
    root, folder = tmp_path / "edge", tmp_path / "docs"
    crash_loop(20, 20, hash_command(root, folder), root, folder, {}, seed=20, says_ready=True,
               whole_run=ingest_here(root, folder))


@pytest.mark.slow
def test_sigkill_of_rag_ingest_crash_loop(tmp_path: Path) -> None:
    """The real command with the real embedder, killed at random moments."""
    home = tmp_path / "home"
    folder = tmp_path / "docs"
    command = [str(Path(sys.executable).parent / "rag"), "ingest", str(folder), "--collection", COLLECTION,
               "--chunk-size", "40", "--chunk-overlap", "0"]
    env = {"RAG_HOME": str(home)}
    root = home / "stores" / "edge"
    crash_loop(4, 20, command, root, folder, env, seed=6, says_ready=False)
