"""Query latency benchmark in one run: retrieval and the whole extractive pipeline at 10k and 100k
chunks in the embedded Qdrant Edge store, the serving process's memory and cold start, and the
LlamaIndex starter's retriever on the same data.

The sample documents are ingested for real; synthetic points (random unit vectors, BM25 vectors of
random word mixes, payloads like the ingestion's, 50 chunks per synthetic document) fill the
collection up to each size; then the store builds its search index (`VectorStore.optimize`: Edge
searches new points by brute force until then), timed as index_s. For each size:

- retrieve_ms_p50/p95/p99: `HybridRetriever.retrieve` as the answer pipeline calls it (query embedding,
  dense and BM25 search with a filter, fusion, document boosts, parents), the sample questions;
- pipeline_ms_p95: the whole extractive answer (`RagService.ask`) of the same questions;
- dense_recall_at_10: of each question's exact dense top 10, the share the HNSW index finds;
- rss_mb: resident memory of a `rag serve` process on that collection after answering the questions
  over HTTP (`--no-serve` skips it); cold_start_s: from starting `rag serve` to its first answer.

At the smallest size (10k) the LlamaIndex starter retriever answers the same questions on the same
data: VectorStoreIndex over qdrant-client local mode (`path=`), the bundled MiniLM in torch fp32
through the starter pipeline's embedding adapter (bench/ingest.py), its default similarity_top_k
raised to ours; the sample documents go through its own reader and splitter, the synthetic points with
the same vectors and texts as ours; it runs in a process of its own. starter_retrieve_ms_p95 and
retrieve_speedup_vs_starter (starter p95 / ours) come from it; starter_search_ms_p95 and
search_speedup_vs_starter compare the searches alone, without the query's embedding (ours:
search_ms_p95, hybrid search, fusion, boosts and parents; its: the vector store's dense query).

`--real DIR` (or RAG_BENCH_REAL=DIR): a data set folder (`rag eval convert docugami SRC OUT`: documents/
and questions.jsonl) is ingested into its own collection (minutes for docugami) and its questions asked
once: real_pipeline_ms_p50/p95.

The growth from the smallest to the largest size is printed too: fill seconds per 1k chunks and the
p95 ratios. `--sizes 10000 100000 1000000` adds 1M when there is memory (about 1 KB of payload and
1.6 KB of vectors a chunk). `--quick`: 1k and 3k chunks, one round, `rag serve` at 3k only.

The last line of output is one JSON object.

Usage: python bench/query.py [--sizes 10000 100000] [--repeats 3] [--quick] [--real DIR] [--no-starter]
       [--no-serve] [--home DIR] [--profile FILE]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import multiprocessing
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

WORDS = (
    "pump heat water tank sensor valve pressure flow outdoor indoor unit defrost compressor fan coil "
    "warranty service filter error code display firmware update schedule energy report installer "
    "refrigerant pipe insulation noise level power supply fuse breaker cable thermostat zone"
).split()
COLLECTION = "bench"
REAL_COLLECTION = "real"
# The retrieval filter: every file type the collection holds (a filter that keeps every point, so the
# figures measure filtering without changing what is found).
FILE_TYPES = ["pdf", "docx", "md", "html", "txt"]


def label(size: int) -> str:
    """10000 -> "10k", 1000000 -> "1M"."""
    if size >= 1_000_000 and size % 1_000_000 == 0:
        return f"{size // 1_000_000}M"
    if size >= 1000 and size % 1000 == 0:
        return f"{size // 1000}k"
    return str(size)


def pct(values: list[float], p: float) -> float:
    return round(float(np.percentile(np.asarray(values), p)), 2)


def log(*parts: Any) -> None:
    print(*parts, file=sys.stderr, flush=True)


class Fill:
    """The synthetic points, generated once in order: the starter gets the same ones as the store."""

    def __init__(self, dim: int, seed: int = 7) -> None:
        self.dim = dim
        self.rng = random.Random(seed)
        self.nrng = np.random.default_rng(seed)
        self.made = 0
        self.kept: list[tuple[str, list[float]]] = []  # (text, vector) of the first `keep` points
        self.keep = 0

    def batch(self, n: int) -> tuple[np.ndarray, list[str]]:
        dense = self.nrng.normal(size=(n, self.dim)).astype(np.float32)
        dense /= np.linalg.norm(dense, axis=1, keepdims=True)
        texts = [" ".join(self.rng.choices(WORDS, k=60)) for _ in range(n)]
        room = max(0, self.keep - len(self.kept))
        self.kept.extend(zip(texts[:room], dense[:room].tolist(), strict=True))
        self.made += n
        return dense, texts


def synthetic_payload(number: int, text: str, service: Any) -> dict[str, Any]:
    """The payload of the `number`-th synthetic chunk, with the fields the ingestion stores (50 chunks
    a document, 30 document terms copied into each, as the pipeline copies them)."""
    document = number // 50
    name = f"synthetic-{document}.txt"
    terms = random.Random(document).sample(WORDS, 30)
    return {
        "text": text, "collection": COLLECTION, "document_id": f"synthetic-{document}", "source": name,
        "file_name": name, "file_type": "txt", "title": name, "created": f"2023-{1 + document % 12:02d}-01",
        "doc_terms": {word: round(100.0 / (rank + 1), 3) for rank, word in enumerate(terms)},
        "sha256": f"{document:064x}", "doc_pages": 10, "doc_chunks": 50, "chunker": "sentence",
        "chunker_settings": {"chunk_size": 200, "chunk_overlap": 20}, "embedding_model": service.embedder.model_name,
        "ingested_at": "2026-01-01T00:00:00+00:00", "page": 1 + (number % 50) // 5, "chunk_index": number % 50,
        "level": "leaf",
    }


def fill(service: Any, fill_points: Fill, target: int) -> float:
    """Add synthetic points until the collection holds `target`; the seconds it took."""
    from store.base import Point

    t0 = time.perf_counter()
    have = service.store.count(COLLECTION)
    batch = 2000
    while have < target:
        n = min(batch, target - have)
        dense, texts = fill_points.batch(n)
        sparse = service.sparse.encode_documents(texts)
        points = [
            Point(id=str(uuid.uuid4()), payload=synthetic_payload(fill_points.made - n + i, t, service),
                  dense=dense[i].tolist(), sparse=sparse[i])
            for i, t in enumerate(texts)
        ]
        service.store.upsert(COLLECTION, points)
        have += n
    return time.perf_counter() - t0


def measure(service: Any, questions: list[str], repeats: int, top_k: int) -> dict[str, list[float]]:
    """Retrieval and whole-pipeline milliseconds of each question, `repeats` rounds."""
    from core.trace import Trace

    filters = {"file_type": FILE_TYPES}
    retrieve, search, pipeline = [], [], []
    for _ in range(repeats):
        for q in questions:
            trace = Trace(question=q, collection=COLLECTION)
            t0 = time.perf_counter()
            service.retriever.retrieve(COLLECTION, q, top_k, filters, trace=trace)
            retrieve.append((time.perf_counter() - t0) * 1000)
            search.append(trace.timings_ms["retrieve"])  # all but the query's embedding
            t0 = time.perf_counter()
            service.ask(q, COLLECTION)
            pipeline.append((time.perf_counter() - t0) * 1000)
    return {"retrieve": retrieve, "search": search, "pipeline": pipeline}


def dense_recall(service: Any, questions: list[str], k: int = 10) -> float | None:
    """Of each question's exact (brute-force) dense top k, the share the indexed search finds: what
    Edge's HNSW index costs in quality (None on another store)."""
    import qdrant_edge as edge

    if service.store.name != "edge":
        return None
    shard = service.store._entry(COLLECTION).shard

    def top(vector: list[float], exact: bool) -> set[str]:
        request = edge.QueryRequest(limit=k, query=edge.Query.Nearest(vector, using="dense"),
                                    params=edge.SearchParams(exact=exact))
        return {str(p.id) for p in shard.query(request)}

    shares = []
    for q in questions:
        vector = service.embedder.embed_query(q).tolist()
        shares.append(len(top(vector, False) & top(vector, True)) / k)
    return round(float(np.mean(shares)), 3)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mb(pid: int) -> tuple[float, float]:
    """(resident, peak resident) MB of a process, from /proc."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0]) / 1024
    return round(fields["VmRSS"]), round(fields["VmHWM"])


def serve_and_ask(home: str, questions: list[str], timeout: float = 120.0) -> dict[str, Any]:
    """Start `rag serve` on this RAG_HOME, time its first answer, ask every question over HTTP, then
    read its memory and stop it."""
    import httpx

    port = free_port()
    env = {**os.environ, "RAG_HOME": home}
    t0 = time.perf_counter()
    server = subprocess.Popen(
        [str(ROOT / ".venv" / "bin" / "rag"), "serve", "--port", str(port), "--address", "127.0.0.1", "--no-samples"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    url = f"http://127.0.0.1:{port}/api/v1/collections/{COLLECTION}/ask"
    try:
        first = None
        with httpx.Client(timeout=60) as client:
            while time.perf_counter() - t0 < timeout:
                if server.poll() is not None:
                    raise RuntimeError(f"rag serve stopped: {server.stderr.read().decode()[-2000:]}")  # type: ignore[union-attr]
                try:
                    response = client.post(url, json={"question": questions[0]})
                except httpx.TransportError:
                    time.sleep(0.1)
                    continue
                if response.status_code == 200:
                    first = time.perf_counter() - t0
                    break
                time.sleep(0.1)
            if first is None:
                raise RuntimeError("rag serve gave no answer in time")
            for q in questions:
                client.post(url, json={"question": q}).raise_for_status()
        rss, peak = rss_mb(server.pid)
        return {"cold_start_s": round(first, 2), "rss_mb": rss, "peak_rss_mb": peak}
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()


class Starter:
    """The LlamaIndex starter's retriever: VectorStoreIndex over qdrant-client local mode."""

    def __init__(self, work: Path, top_k: int) -> None:
        from llama_index.core import Settings as LlamaSettings
        from qdrant_client import QdrantClient

        from ingest.chunkers import LlamaIndexEmbedding
        from retrieval.embedder import SentenceEmbedder

        embedder = SentenceEmbedder(backend="torch")
        embedder.warm_up()
        self.embed_model = LlamaIndexEmbedding(embedder, embed_batch_size=10)  # LlamaIndex's default batch
        LlamaSettings.llm = None  # type: ignore[assignment]  # no LLM: retrieval only
        self.client = QdrantClient(path=str(work / "starter-qdrant"))
        self.top_k = top_k
        self.index: Any = None

    def build(self, documents_dir: Path, synthetic: list[tuple[str, list[float]]]) -> float:
        from llama_index.core import SimpleDirectoryReader, StorageContext, VectorStoreIndex
        from llama_index.core.node_parser import SentenceSplitter
        from llama_index.core.schema import TextNode
        from llama_index.vector_stores.qdrant import QdrantVectorStore

        t0 = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()):
            documents = SimpleDirectoryReader(input_dir=str(documents_dir), recursive=True).load_data()
        store = QdrantVectorStore(client=self.client, collection_name="starter")
        self.index = VectorStoreIndex.from_documents(
            documents, storage_context=StorageContext.from_defaults(vector_store=store),
            embed_model=self.embed_model, transformations=[SentenceSplitter(chunk_size=1024, chunk_overlap=20)])
        nodes = [TextNode(text=text, embedding=vector, metadata={"file_name": f"synthetic-{i // 50}.txt"})
                 for i, (text, vector) in enumerate(synthetic)]
        for start in range(0, len(nodes), 2000):
            self.index.insert_nodes(nodes[start:start + 2000])
        return time.perf_counter() - t0

    def count(self) -> int:
        return self.client.count("starter").count

    def measure(self, questions: list[str], repeats: int) -> tuple[list[float], list[float]]:
        """Milliseconds of its retriever (query embedding and search), and of the search alone."""
        from llama_index.core.vector_stores.types import VectorStoreQuery

        retriever = self.index.as_retriever(similarity_top_k=self.top_k)
        retriever.retrieve(questions[0])  # warm-up
        times, search = [], []
        for _ in range(repeats):
            for q in questions:
                t0 = time.perf_counter()
                retriever.retrieve(q)
                times.append((time.perf_counter() - t0) * 1000)
                vector = self.embed_model.get_query_embedding(q)
                t0 = time.perf_counter()
                self.index.vector_store.query(VectorStoreQuery(query_embedding=vector, similarity_top_k=self.top_k))
                search.append((time.perf_counter() - t0) * 1000)
        return times, search

    def close(self) -> None:
        self.client.close()


def run_starter(home: str, top_k: int, synthetic: list[tuple[str, list[float]]], questions: list[str],
                repeats: int) -> dict[str, Any]:
    """The starter built on the sample documents and the synthetic points, then timed."""
    os.environ["RAG_HOME"] = home
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    starter = Starter(Path(home), top_k)
    try:
        build_s = starter.build(ROOT / "data" / "documents", synthetic)
        times, search = starter.measure(questions, repeats)
        return {"starter_points": starter.count(), "starter_build_s": round(build_s, 1),
                "starter_retrieve_ms_p50": pct(times, 50), "starter_retrieve_ms_p95": pct(times, 95),
                "starter_search_ms_p95": pct(search, 95)}
    finally:
        starter.close()


def ask_real(service: Any, dataset: Path) -> dict[str, Any]:
    """Ingest a data set into its own collection and ask each of its questions once."""
    from evaluation.datasets import load_dataset

    data = load_dataset(dataset)
    t0 = time.perf_counter()
    report = service.ingest([dataset / "documents"], REAL_COLLECTION)
    ingest_s = time.perf_counter() - t0
    service.ask(data.questions[0].question, REAL_COLLECTION)  # warm-up off the clock
    times, retrieve = [], []
    for q in data.questions:
        t0 = time.perf_counter()
        answer = service.ask(q.question, REAL_COLLECTION)
        times.append((time.perf_counter() - t0) * 1000)
        retrieve.append(answer.timings_ms.get("embed", 0.0) + answer.timings_ms.get("retrieve", 0.0))
    return {"real_dataset": str(dataset), "real_chunks": service.store.count(REAL_COLLECTION),
            "real_ingest_s": round(ingest_s, 1), "real_files": len(report.files), "real_questions": len(times),
            "real_pipeline_ms_p50": pct(times, 50), "real_pipeline_ms_p95": pct(times, 95),
            "real_retrieve_ms_p95": pct(retrieve, 95)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=None, help="chunks (default 10000 100000)")
    parser.add_argument("--repeats", type=int, default=None, help="rounds of the questions (default 3)")
    parser.add_argument("--quick", action="store_true", help="1k and 3k chunks, one round (under a minute)")
    parser.add_argument("--real", type=Path, default=os.environ.get("RAG_BENCH_REAL") or None,
                        help="a data set folder whose questions time the whole pipeline on real documents")
    parser.add_argument("--no-starter", action="store_true", help="skip the LlamaIndex starter retriever")
    parser.add_argument("--no-serve", action="store_true", help="skip `rag serve` (RSS, cold start)")
    parser.add_argument("--home", type=Path, default=None,
                        help="RAG_HOME to keep (reused by the next run: filled points stay)")
    parser.add_argument("--profile", type=Path, default=None,
                        help="cProfile the retrievals at the largest size into this file")
    args = parser.parse_args()
    sizes = sorted(args.sizes or ([1000, 3000] if args.quick else [10_000, 100_000]))
    repeats = args.repeats or (1 if args.quick else 3)

    with contextlib.ExitStack() as stack:
        home = str(args.home) if args.home else stack.enter_context(tempfile.TemporaryDirectory())
        os.environ["RAG_HOME"] = home
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        from evaluation.datasets import load_dataset
        from rag.service import RagService

        service = RagService()
        top_k = service.settings.top_k
        questions = [q.question for q in load_dataset(ROOT / "data").questions]
        if not service.store.collection_exists(COLLECTION) or service.store.count(COLLECTION) == 0:
            service.ingest([ROOT / "data" / "documents"], COLLECTION)
        real_points = service.store.count(COLLECTION)
        fill_points = Fill(service.embedder.dim)
        fill_points.keep = 0 if args.no_starter else max(0, sizes[0] - real_points)
        service.ask(questions[0], COLLECTION)  # warm-up: models load
        result: dict[str, Any] = {"backend": service.embedder.backend, "sample_chunks": real_points,
                                  "questions": len(questions),
                                  "repeats": repeats, "top_k": top_k, "load": os.getloadavg()[0]}
        if args.real:
            log(f"ingesting {args.real} ...")
            result.update(ask_real(service, args.real))
            log(json.dumps({k: v for k, v in result.items() if k.startswith("real")}))

        for size in sizes:
            if args.home and fill_points.made == 0 and service.store.count(COLLECTION) > real_points:
                fill_points.made = service.store.count(COLLECTION) - real_points  # points kept from a run before
            fill_s = fill(service, fill_points, size)
            t0 = time.perf_counter()
            service.store.optimize(COLLECTION)  # Edge's HNSW index: built once a batch of writes is done
            index_s = time.perf_counter() - t0
            service.ask(questions[0], COLLECTION)
            times = measure(service, questions, 1, top_k)  # a round off the clock: caches, page-ins
            if args.profile and size == sizes[-1]:
                import cProfile

                profiler = cProfile.Profile()
                profiler.enable()
                times = measure(service, questions, repeats, top_k)
                profiler.disable()
                profiler.dump_stats(str(args.profile))
            else:
                times = measure(service, questions, repeats, top_k)
            row: dict[str, Any] = {
                "points": service.store.count(COLLECTION),
                "fill_s": round(fill_s, 1),
                "index_s": round(index_s, 1),
                "queries": len(times["retrieve"]),
                "retrieve_ms_p50": pct(times["retrieve"], 50),
                "retrieve_ms_p95": pct(times["retrieve"], 95),
                "retrieve_ms_p99": pct(times["retrieve"], 99),
                "search_ms_p95": pct(times["search"], 95),
                "pipeline_ms_p50": pct(times["pipeline"], 50),
                "pipeline_ms_p95": pct(times["pipeline"], 95),
                "dense_recall_at_10": dense_recall(service, questions),
            }
            if not args.no_serve and (size == sizes[-1] or not args.quick):
                service.close()  # the server takes the store (one process holds an Edge shard)
                row.update(serve_and_ask(home, questions))
                service = RagService()
                service.ask(questions[0], COLLECTION)
            result[label(size)] = row
            log(label(size), json.dumps(row))

        if not args.no_starter:
            small = label(sizes[0])
            # In a process of its own: only LlamaIndex, qdrant-client and torch, nothing of ours beside it.
            with multiprocessing.get_context("spawn").Pool(1) as pool:
                starter = pool.apply(run_starter, (home, top_k, fill_points.kept, questions, repeats))
            result.update(starter)
            result["retrieve_speedup_vs_starter"] = round(
                result["starter_retrieve_ms_p95"] / result[small]["retrieve_ms_p95"], 2)
            result["search_speedup_vs_starter"] = round(
                result["starter_search_ms_p95"] / result[small]["search_ms_p95"], 2)
            log("starter", json.dumps({k: v for k, v in result.items() if k.startswith(("starter", "retrieve_"))}))

        if len(sizes) > 1:
            first, last = result[label(sizes[0])], result[label(sizes[-1])]
            added_first = max(1, sizes[0] - real_points)
            added_last = max(1, sizes[-1] - sizes[-2])
            result["growth"] = {
                "from": label(sizes[0]), "to": label(sizes[-1]), "chunks": round(sizes[-1] / sizes[0], 1),
                "fill_s_per_1k_chunks": [round(1000 * first["fill_s"] / added_first, 2),
                                         round(1000 * last["fill_s"] / added_last, 2)],
                "index_s": [first["index_s"], last["index_s"]],
                "retrieve_p95_ratio": round(last["retrieve_ms_p95"] / first["retrieve_ms_p95"], 2),
                "pipeline_p95_ratio": round(last["pipeline_ms_p95"] / first["pipeline_ms_p95"], 2),
            }
            if "rss_mb" in first:
                result["growth"]["rss_ratio"] = round(last["rss_mb"] / first["rss_mb"], 2)
            log("growth", json.dumps(result["growth"]))
        service.close()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
