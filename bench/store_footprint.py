"""The vector store alone, at growing sizes: memory and disk per chunk, and search latency.

Fills one collection with chunk-shaped points (384-dimensional unit vectors as MiniLM makes,
BM25 vectors of Zipf-distributed words and a payload of the shape ingestion writes, ~1 KB of text) through the app's store
(`store.factory.make_store`, so RAG_QDRANT_URL and the RAG_QDRANT_* layout settings apply), then runs
hybrid searches with a filter at each size. No embedding model is loaded: the process holds the
store and little else, so the growth of its resident memory is what the store costs.

- Embedded (Qdrant Edge, the default): the process's resident memory (all, peak, anonymous, mapped
  files), the bytes per chunk it grew by from one size to the next, and disk_mb of the shard folder.
- A Qdrant server (RAG_QDRANT_URL set): the store lives in the server, so the client's memory says
  nothing; the search figures include the network. Read the server's own memory from its /metrics
  or /telemetry while the collection is full. The collection is deleted at the end.

Usage: python bench/store_footprint.py [--sizes 10000 100000] [--queries 200] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DIM = 384  # all-MiniLM-L6-v2
COLLECTION = "footprint"
WORDS = (
    "pump heat water tank sensor valve pressure flow outdoor indoor unit defrost compressor fan coil "
    "warranty service filter error code display firmware update schedule energy report installer "
    "refrigerant pipe insulation noise level power supply fuse breaker cable thermostat zone revenue "
    "quarter fiscal operating income segment liquidity lease derivative goodwill impairment tax"
).split()


class Vocabulary:
    """20,000 made-up words drawn with Zipf's law, as words of real text are: BM25's posting lists
    are long for a few words and short for most (a small vocabulary would put every chunk in every list)."""

    def __init__(self, rng: random.Random, size: int = 20_000) -> None:
        letters = "abcdefghijklmnopqrstuvwxyz"
        self.words = list(dict.fromkeys("".join(rng.choices(letters, k=rng.randint(4, 10))) for _ in range(size)))
        self.cumulative = list(np.cumsum([1 / (rank + 1) ** 1.07 for rank in range(len(self.words))]))
        self.rng = rng

    def text(self, n: int) -> str:
        return " ".join(self.rng.choices(self.words, cum_weights=self.cumulative, k=n))

    def question(self, n: int) -> str:
        """Content words: neither the commonest nor the rarest."""
        return " ".join(self.rng.choices(self.words[100:5000], k=n))


def memory_mb() -> dict[str, float]:
    """This process's resident memory, MB: all of it, its peak, and the part that is anonymous
    (heap: only swap can take it back) as against file pages mapped in (the OS can evict them)."""
    fields = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM", "RssAnon", "RssFile"):
            fields[key] = round(int(value.split()[0]) / 1024, 1)
    return {"rss_mb": fields["VmRSS"], "peak_rss_mb": fields["VmHWM"], "anon_mb": fields["RssAnon"],
            "file_mb": fields["RssFile"]}


def folder_mb(path: Path) -> float:
    return round(sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 2**20, 1)


def pct(values: list[float], p: int) -> float:
    return round(float(np.percentile(values, p)), 2)


def payload(rng: random.Random, vocabulary: Vocabulary, index: int) -> dict[str, Any]:
    """A chunk's payload with the fields and sizes ingestion writes (ingest/pipeline.py)."""
    document = index // 50
    terms = {w: round(rng.uniform(1, 20), 3) for w in rng.sample(WORDS, 20)}
    return {
        "collection": COLLECTION, "document_id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"doc-{document}")),
        "source": f"filing-{document}.pdf", "file_name": f"filing-{document}.pdf",
        "file_type": rng.choice(["pdf", "docx", "html", "txt"]), "title": None, "created": None,
        "doc_terms": str(terms), "sha256": uuid.uuid4().hex * 2, "doc_pages": 40, "doc_chunks": 50,
        "chunker": "sentence",
        "chunker_settings": "{'chunk_overlap': 20, 'chunk_size': 200, 'name': 'sentence', 'tokenizer': 'cl100k_base'}",
        "embedding_model": "all-MiniLM-L6-v2", "ingested_at": "2026-01-01T00:00:00+00:00",
        "text": vocabulary.text(150), "chunk_index": index % 50, "page": 1 + index % 40,
        "start": 0, "end": 1000, "heading_path": [], "token_count": 200, "level": "leaf",
        "parent_id": None, "position": index % 50,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=None)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--quick", action="store_true", help="2,000 and 5,000 points")
    args = parser.parse_args()
    sizes = sorted(args.sizes or ([2_000, 5_000] if args.quick else [10_000, 100_000]))

    with tempfile.TemporaryDirectory() as home:
        os.environ["RAG_HOME"] = home
        from qdrant_edge import Bm25

        from core.settings import Settings
        from store.base import Point, QuerySpec, SparseVec
        from store.factory import make_store

        settings = Settings()
        bm25 = Bm25()
        rng, nrng = random.Random(7), np.random.default_rng(7)
        vocabulary = Vocabulary(rng)
        base = memory_mb()
        store = make_store(settings)
        backend = store.name
        if store.collection_exists(COLLECTION):
            store.delete_collection(COLLECTION)
        store.create_collection(COLLECTION, DIM)
        result: dict[str, Any] = {"backend": backend, "layout": {
            k: v for k, v in settings.model_dump().items()
            if k.startswith("qdrant_") and k not in ("qdrant_url", "qdrant_api_key")},
            "base": base, "load": os.getloadavg()[0]}
        filled, previous = 0, None
        for size in sizes:
            t0 = time.perf_counter()
            while filled < size:
                n = min(500, size - filled)  # small batches: little garbage in the RSS
                dense = nrng.normal(size=(n, DIM)).astype(np.float32)
                dense /= np.linalg.norm(dense, axis=1, keepdims=True)
                points = []
                for i in range(n):
                    body = payload(rng, vocabulary, filled + i)
                    sparse = bm25.embed_document(body["text"])
                    points.append(Point(id=str(uuid.uuid4()), payload=body, dense=dense[i].tolist(),
                                        sparse=SparseVec(list(sparse.indices), list(sparse.values))))
                store.upsert(COLLECTION, points)
                filled += n
            fill_s = time.perf_counter() - t0
            t0 = time.perf_counter()
            store.optimize(COLLECTION)  # Edge builds its HNSW index only when asked; a server, by itself
            optimize_s = time.perf_counter() - t0
            times: list[float] = []
            filters = {"file_type": ["pdf", "docx", "html", "txt"]}  # keeps every point, as the app's does
            for q in range(args.queries):
                vector = nrng.normal(size=DIM).astype(np.float32)
                vector /= np.linalg.norm(vector)
                words = vocabulary.question(6)
                sparse = bm25.embed_query(words)
                spec = QuerySpec(dense=vector.tolist(), sparse=SparseVec(list(sparse.indices), list(sparse.values)),
                                 mode="hybrid", top_k=20, candidates=60, filters=filters)
                t1 = time.perf_counter()
                store.query(COLLECTION, spec)
                if q >= 10:  # the first few page the index in
                    times.append((time.perf_counter() - t1) * 1000)
            memory = memory_mb()
            row: dict[str, Any] = {"points": store.count(COLLECTION), "fill_s": round(fill_s, 1),
                                   "optimize_s": round(optimize_s, 1),
                                   "search_ms_p50": pct(times, 50), "search_ms_p95": pct(times, 95)}
            if backend == "edge":
                row |= memory | {"disk_mb": folder_mb(Path(home))}
                if previous:
                    grown = size - previous[0]
                    row["bytes_per_chunk_since_last_size"] = {
                        k: round((memory[k] - previous[1][k]) * 2**20 / grown) for k in ("rss_mb", "anon_mb")}
                previous = (size, memory)
            result[f"{size // 1000}k" if size % 1000 == 0 else str(size)] = row
            print(size, json.dumps(row), flush=True)
        if backend != "edge":
            store.delete_collection(COLLECTION)
        store.close()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
