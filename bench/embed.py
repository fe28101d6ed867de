"""Embedding benchmark: torch fp32, ONNX fp32 and ONNX int8 on the same chunks, in one run.

Usage: python bench/embed.py [CORPUS_DIR] [--chunks 512] [--chunk-size 200] [--rounds 3] [--quick]

The chunks are the app's own (the sentence chunker over the corpus's documents, default
../shared/eval/docugami_sec_10q when present, else data/documents). The three backends embed
them in turns, round after round, so a burst of load on a shared machine hits all three alike;
each figure is the median of its rounds. Prints a line per round, then one JSON object:
fp32_chunks_per_s, onnx_fp32_chunks_per_s, int8_chunks_per_s, int8_speedup (over torch fp32),
int8_cosine (mean cosine of each chunk's int8 vector to its torch vector), and more.
Exporting the model (the first run on a machine) is timed apart: export_seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

BACKENDS = ("torch", "onnx", "onnx-int8")
KEYS = {"torch": "fp32_chunks_per_s", "onnx": "onnx_fp32_chunks_per_s", "onnx-int8": "int8_chunks_per_s"}


def default_corpus() -> Path:
    shared = ROOT.parent / "shared" / "eval" / "docugami_sec_10q" / "data" / "v1" / "docs"
    return shared if shared.is_dir() else ROOT / "data" / "documents"


def corpus_chunks(corpus: Path, limit: int, chunk_size: int) -> list[str]:
    """Up to `limit` chunk texts of the corpus, spread over its files, as the app embeds them."""
    from ingest.chunkers import make_chunker
    from ingest.pipeline import collect_files, context_header
    from ingest.readers import SUPPORTED_EXTENSIONS, read_document

    chunker = make_chunker("sentence", chunk_size, min(20, chunk_size // 10))
    per_file: list[list[str]] = []
    for path, _ in collect_files([corpus], SUPPORTED_EXTENSIONS):
        try:
            document = read_document(path)
        except Exception:  # noqa: BLE001 - a file the readers refuse is simply not in the sample
            continue
        header = context_header(document)  # as the pipeline embeds a chunk: its document's name first
        per_file.append([header + c.text for c in chunker.split(document) if c.level != "parent"])
        if sum(len(t) for t in per_file) >= 4 * limit:
            break
    # Round-robin over the files, so the sample is not one document's.
    texts: list[str] = []
    while len(texts) < limit and any(per_file):
        for chunks in per_file:
            if chunks and len(texts) < limit:
                texts.append(chunks.pop(0))
    return texts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("corpus", nargs="?", type=Path, default=default_corpus())
    parser.add_argument("--chunks", type=int, default=512)
    parser.add_argument("--chunk-size", type=int, default=200, help="tokens per chunk (the app's default)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="64 chunks, one round")
    args = parser.parse_args()
    if args.quick:
        args.chunks, args.rounds = 64, 1

    import numpy as np

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    with tempfile.TemporaryDirectory() as home:
        os.environ.setdefault("RAG_HOME", home)
        from core.settings import get_settings
        from retrieval.embedder import SentenceEmbedder
        from retrieval.onnx_export import cpu_instruction_set

        texts = corpus_chunks(args.corpus, args.chunks, args.chunk_size)
        embedders = {b: SentenceEmbedder(batch_size=args.batch_size, backend=b, cache_dir=get_settings().onnx_dir)
                     for b in BACKENDS}
        load_s = {}
        for backend, embedder in embedders.items():
            t0 = time.perf_counter()
            embedder.warm_up()
            embedder.embed(texts[:8])  # first-call allocations out of the timed runs
            load_s[backend] = round(time.perf_counter() - t0, 2)
        tokenizer = embedders["onnx"]._load().runner
        tokens = [min(len(e.ids), tokenizer.max_length) for e in tokenizer.encode(texts)]

        rates: dict[str, list[float]] = {b: [] for b in BACKENDS}
        vectors: dict[str, np.ndarray] = {}
        for round_no in range(1, args.rounds + 1):
            # Each round starts with another backend, so none always runs first.
            order = BACKENDS[round_no % 3:] + BACKENDS[:round_no % 3]
            for backend in order:
                t0 = time.perf_counter()
                vectors[backend] = embedders[backend].embed(texts)
                rates[backend].append(len(texts) / (time.perf_counter() - t0))
            print(f"round {round_no}: " + ", ".join(f"{b} {rates[b][-1]:.1f}/s" for b in BACKENDS), file=sys.stderr)

        def cosines(backend: str) -> np.ndarray:
            return (vectors[backend] * vectors["torch"]).sum(axis=1)

        median = {b: statistics.median(rates[b]) for b in BACKENDS}
        result = {
            "chunks": len(texts),
            "corpus": str(args.corpus),
            "tokens_mean": round(float(np.mean(tokens)), 1),
            "tokens_max": int(max(tokens)),
            "rounds": args.rounds,
            "batch_size": args.batch_size,
            "cpu": cpu_instruction_set(),
            "threads": os.cpu_count(),
            "load_seconds": load_s,  # ONNX: includes the export on a machine's first run
            KEYS["torch"]: round(median["torch"], 1),
            KEYS["onnx"]: round(median["onnx"], 1),
            KEYS["onnx-int8"]: round(median["onnx-int8"], 1),
            "onnx_fp32_speedup": round(median["onnx"] / median["torch"], 2),
            "onnx_fp32_cosine": round(float(cosines("onnx").mean()), 5),
            "int8_speedup": round(median["onnx-int8"] / median["torch"], 2),
            "int8_cosine": round(float(cosines("onnx-int8").mean()), 5),
            "int8_cosine_min": round(float(cosines("onnx-int8").min()), 5),
        }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
