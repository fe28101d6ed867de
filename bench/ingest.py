"""Ingestion benchmark: a corpus into a temporary RAG_HOME, against the LlamaIndex starter pipeline, in one run.

Usage: python bench/ingest.py [CORPUS_DIR] [--chunker sentence] [--chunk-size 200] [--no-starter] [--quick]
                              [--batch-points N]  (points per store commit; 1 commits each file alone)
Default corpus: ../shared/eval/docugami_sec_10q when present, else data/documents (--quick: data/documents).

Prints the per-stage seconds, then one JSON object on the last line:
- chunks, seconds, chunks_per_s: our ingestion, end to end (reading, chunking, embedding, storing);
- embed_only_chunks_per_s: the same backend embedding the same texts in the same batches, alone;
  pipeline_efficiency = chunks_per_s / embed_only_chunks_per_s (how much of the wall-clock is the
  embedder's work);
- peak_rss_mb: this process's peak resident memory after our ingestion (before the starter runs);
- store_write_calls, store_flushes, store_seconds: the store's write calls (points written, deleted or
  marked) and flushes during our ingestion, and the seconds spent in the store stage;
- starter_seconds: the LlamaIndex starter on the same corpus (SimpleDirectoryReader, SentenceSplitter
  1024/20, VectorStoreIndex with the same model on torch fp32 in LlamaIndex's default batches of 10,
  qdrant-client local mode with `path=`); speedup_vs_starter = starter_seconds / seconds;
- embedded_tokens_per_s_vs_starter: word pieces the model actually reads per second (each text cut at
  the model's window, 256 for MiniLM), ours over the starter's. The starter's 1024-token chunks are cut
  to a quarter; ours fit whole.
Both sides load their model before the clock starts.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def default_corpus() -> Path:
    shared = ROOT.parent / "shared" / "eval" / "docugami_sec_10q" / "data" / "v1" / "docs"
    return shared if shared.is_dir() else ROOT / "data" / "documents"


class RecordingEmbedder:
    """Wraps an embedder's `embed`: keeps each batch of texts and the seconds spent embedding."""

    def __init__(self, embedder: Any) -> None:
        self.embedder = embedder
        self.original = embedder.embed
        self.batches: list[list[str]] = []
        self.seconds = 0.0
        embedder.embed = self.embed  # the instance attribute shadows the method for every caller

    def embed(self, texts: list[str]) -> Any:
        self.batches.append(list(texts))
        t0 = time.perf_counter()
        try:
            return self.original(texts)
        finally:
            self.seconds += time.perf_counter() - t0

    def replay_seconds(self) -> float:
        """The same batches embedded again, alone: the embedder's own time."""
        t0 = time.perf_counter()
        for batch in self.batches:
            self.original(batch)
        return time.perf_counter() - t0


class CountingStore:
    """Counts the calls of a store's write primitives (each write call, each flush) from now on."""

    WRITES = ("_write", "_delete", "_set_payload")

    def __init__(self, store: Any) -> None:
        self.calls: dict[str, int] = dict.fromkeys((*self.WRITES, "_flush"), 0)
        for name in self.calls:
            setattr(store, name, self._counted(name, getattr(store, name)))  # the instance shadows the method

    def _counted(self, name: str, primitive: Any) -> Any:
        def counted(*args: Any) -> Any:
            self.calls[name] += 1
            return primitive(*args)

        return counted

    @property
    def writes(self) -> int:
        return sum(self.calls[name] for name in self.WRITES)


def window_tokens(texts: list[str], window: int) -> int:
    """Word pieces the model reads of these texts: each cut at its window."""
    from tokenizers import Tokenizer

    from retrieval.embedder import BUNDLED_MINILM, local_model_folder

    tokenizer = Tokenizer.from_file(str(local_model_folder(BUNDLED_MINILM) / "tokenizer.json"))
    tokenizer.no_truncation()
    tokenizer.no_padding()
    return sum(min(len(e.ids), window) for e in tokenizer.encode_batch(texts))


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux


def run_starter(corpus: Path, work: Path) -> dict[str, Any]:
    """The LlamaIndex starter pipeline on the corpus, into qdrant-client's local mode."""
    import contextlib
    import io

    from llama_index.core import SimpleDirectoryReader, StorageContext, VectorStoreIndex
    from llama_index.core.node_parser import SentenceSplitter
    from llama_index.vector_stores.qdrant import QdrantVectorStore
    from qdrant_client import QdrantClient

    from ingest.chunkers import LlamaIndexEmbedding
    from retrieval.embedder import SentenceEmbedder

    embedder = SentenceEmbedder(backend="torch")
    embedder.warm_up()
    recorder = RecordingEmbedder(embedder)
    embed_model = LlamaIndexEmbedding(embedder, embed_batch_size=10)  # LlamaIndex's default batch
    client = QdrantClient(path=str(work / "starter-qdrant"))
    t0 = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):  # its reader prints the files it skips
        documents = SimpleDirectoryReader(input_dir=str(corpus), recursive=True).load_data()
    store = QdrantVectorStore(client=client, collection_name="starter")
    index = VectorStoreIndex.from_documents(
        documents, storage_context=StorageContext.from_defaults(vector_store=store), embed_model=embed_model,
        transformations=[SentenceSplitter(chunk_size=1024, chunk_overlap=20)])
    seconds = time.perf_counter() - t0
    texts = [t for batch in recorder.batches for t in batch]
    client.close()
    del index
    return {"seconds": seconds, "chunks": len(texts), "embed_seconds": recorder.seconds,
            "tokens_read": window_tokens(texts, embedder.max_tokens),
            "tokens_total": window_tokens(texts, 10**9)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("corpus", nargs="?", type=Path, default=None)
    parser.add_argument("--chunker", default="sentence")
    parser.add_argument("--chunk-size", type=int, default=200)
    parser.add_argument("--chunk-overlap", type=int, default=20)
    parser.add_argument("--no-starter", action="store_true", help="skip the LlamaIndex starter pipeline")
    parser.add_argument("--quick", action="store_true", help="the sample documents (under a minute)")
    parser.add_argument("--batch-points", type=int, default=None,
                        help="points staged per store commit (default: the pipeline's; 1: one commit per file)")
    args = parser.parse_args()
    corpus = args.corpus or (ROOT / "data" / "documents" if args.quick else default_corpus())

    with tempfile.TemporaryDirectory() as home:
        os.environ["RAG_HOME"] = home
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        from rag.service import RagService

        service = RagService()
        t0 = time.perf_counter()
        service.embedder.warm_up()
        warm = time.perf_counter() - t0
        options = service.chunking_options(args.chunker, args.chunk_size, args.chunk_overlap)
        # One small file first, off the clock: imports and first-use loads of the chunker and the store.
        warm_file = Path(home) / "warm-up.txt"
        warm_file.write_text("A first sentence to chunk. " * 40, encoding="utf-8")
        service.ingest([warm_file], "warm-up", options)
        recorder = RecordingEmbedder(service.embedder)
        counter = CountingStore(service.store)
        if args.batch_points is not None:
            service.pipeline.batch_points = args.batch_points
        report = service.ingest([corpus], "bench", options)
        rss = peak_rss_mb()
        chunks = report.chunks_added
        texts = [t for batch in recorder.batches for t in batch]
        embed_only = recorder.replay_seconds()
        tokens_read = window_tokens(texts, service.embedder.max_tokens)
        result: dict[str, Any] = {
            "corpus": str(corpus),
            "backend": service.embedder.backend,
            "chunker": args.chunker,
            "chunk_size": args.chunk_size,
            "files": len(report.files),
            "failed": [f.path for f in report.failed],
            "pages": sum(f.pages for f in report.files),
            "chunks": chunks,
            "seconds": round(report.seconds, 3),
            "chunks_per_s": round(chunks / report.seconds, 1) if report.seconds else None,
            "embed_only_chunks_per_s": round(len(texts) / embed_only, 1) if embed_only else None,
            "pipeline_efficiency": round(embed_only / report.seconds, 3) if report.seconds else None,
            "peak_rss_mb": round(rss),
            "store_write_calls": counter.writes,
            "store_flushes": counter.calls["_flush"],
            "store_seconds": round(report.stage_seconds["store"], 3),
            "batch_points": service.pipeline.batch_points,
            "model_load_s": round(warm, 3),
            "tokens_read": tokens_read,
            "stage_seconds": {k: round(v, 3) for k, v in report.stage_seconds.items()},
            "stage_share": {k: round(v / report.seconds, 3) for k, v in report.stage_seconds.items()}
            if report.seconds else {},
        }
        service.close()
        if not args.no_starter:
            starter = run_starter(corpus, Path(home))
            ours_rate = tokens_read / report.seconds
            result.update({
                "starter_seconds": round(starter["seconds"], 3),
                "starter_chunks": starter["chunks"],
                "starter_tokens_read": starter["tokens_read"],
                "starter_tokens_cut": starter["tokens_total"] - starter["tokens_read"],
                "speedup_vs_starter": round(starter["seconds"] / report.seconds, 2),
                "embedded_tokens_per_s_vs_starter": round(ours_rate / (starter["tokens_read"] / starter["seconds"]), 2),
            })
    print(json.dumps({k: v for k, v in result.items() if k not in ("stage_seconds", "stage_share")}, indent=1),
          file=sys.stderr)
    print("stage seconds:", result["stage_seconds"], file=sys.stderr)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
