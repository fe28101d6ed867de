"""Ingestion benchmark: a corpus into a temporary RAG_HOME; prints JSON with per-stage seconds.

Usage: python bench/ingest.py [CORPUS_DIR] [--chunker sentence] [--chunk-size 200]
Default corpus: ../shared/eval/docugami_sec_10q when present, else data/documents.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def default_corpus() -> Path:
    shared = ROOT.parent / "shared" / "eval" / "docugami_sec_10q" / "data" / "v1" / "docs"
    return shared if shared.is_dir() else ROOT / "data" / "documents"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("corpus", nargs="?", type=Path, default=default_corpus())
    parser.add_argument("--chunker", default="sentence")
    parser.add_argument("--chunk-size", type=int, default=200)
    parser.add_argument("--chunk-overlap", type=int, default=20)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as home:
        os.environ["RAG_HOME"] = home
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        from rag.service import RagService

        service = RagService()
        t0 = time.perf_counter()
        service.embedder.warm_up()
        warm = time.perf_counter() - t0
        options = service.chunking_options(args.chunker, args.chunk_size, args.chunk_overlap)
        report = service.ingest([args.corpus], "bench", options)
        chunks = report.chunks_added
        result = {
            "corpus": str(args.corpus),
            "chunker": args.chunker,
            "chunk_size": args.chunk_size,
            "files": len(report.files),
            "failed": [f.path for f in report.failed],
            "pages": sum(f.pages for f in report.files),
            "chunks": chunks,
            "seconds": round(report.seconds, 3),
            "chunks_per_s": round(chunks / report.seconds, 1) if report.seconds else None,
            "model_load_s": round(warm, 3),
            "stage_seconds": {k: round(v, 3) for k, v in report.stage_seconds.items()},
            "stage_share": {k: round(v / report.seconds, 3) for k, v in report.stage_seconds.items()} if report.seconds else {},
        }
        service.close()
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
