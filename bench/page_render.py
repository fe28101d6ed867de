"""Cited-page benchmark: how long a PDF citation card waits for its page, and how often the passage is
found on it, over the app's own chunks of real PDFs.

Usage: python bench/page_render.py [CORPUS_DIR] [--chunks 60] [--width 900]

The chunks are the sentence chunker's (200 tokens, as ingestion makes them) over the corpus's PDFs
(default ../shared/eval/docugami_sec_10q when present, else the PDFs under data/documents), spread
over the files. For each chunk, its page is rendered and the chunk located (in this process, as the
renderer's worker does), then asked again (the cached picture). The worker process's first answer
is timed apart: it includes starting the process. Prints one JSON object: render_ms_median,
render_ms_p95, cached_ms_median, cached_speedup, located_share (chunks whose passage was boxed),
sentence_located_share, first_answer_ms (through PageRenderer), png_kb_median.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def pdf_chunks(corpus: Path, limit: int) -> list[tuple[Path, str, int, str, int, str]]:
    """(file, sha256, page, chunk text, start, its first sentence) for up to `limit` chunks."""
    from ingest.chunkers import make_chunker
    from ingest.readers import read_document

    chunker = make_chunker("sentence", 200, 20)
    per_file = []
    for path in sorted(corpus.rglob("*.pdf")):
        try:
            document = read_document(path)
        except Exception:  # noqa: BLE001 - a file the readers refuse is not in the sample
            continue
        sha = hashlib.sha256(path.read_bytes()).hexdigest()
        rows = []
        for chunk in chunker.split(document):
            if chunk.level == "parent" or not chunk.text.strip():
                continue
            first = chunk.text.split(". ")[0].strip()
            rows.append((path, sha, chunk.page, chunk.text, chunk.start, first if len(first) > 20 else ""))
        per_file.append(rows[:: max(1, len(rows) // 10)])
    picked: list[tuple[Path, str, int, str, int, str]] = []
    while len(picked) < limit and any(per_file):
        for rows in per_file:
            if rows and len(picked) < limit:
                picked.append(rows.pop(0))
    return picked


def main() -> None:
    from rag.pages_render import PageRenderer, render_page_view

    default = ROOT.parent / "shared" / "eval" / "docugami_sec_10q"
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("corpus", nargs="?", type=Path, default=default if default.is_dir() else ROOT / "data")
    parser.add_argument("--chunks", type=int, default=60)
    parser.add_argument("--width", type=int, default=900)
    args = parser.parse_args()
    chunks = pdf_chunks(args.corpus, args.chunks)
    if not chunks:
        sys.exit(f"no PDF chunks under {args.corpus}")
    with tempfile.TemporaryDirectory() as cache:
        renderer = PageRenderer(Path(cache) / "worker", width=args.width)
        path, sha, page, text, start, sentence = chunks[0]
        t0 = time.perf_counter()
        renderer.submit(path, sha, page, text, start, sentence).result(timeout=300)
        first_answer_ms = (time.perf_counter() - t0) * 1000
        renderer.close()
        render_ms, cached_ms, sizes, located, framed = [], [], [], 0, 0
        for path, sha, page, text, start, sentence in chunks:
            t0 = time.perf_counter()
            view = render_page_view(path, sha, page, cache, args.width, text, start, sentence)
            render_ms.append((time.perf_counter() - t0) * 1000)
            t0 = time.perf_counter()
            render_page_view(path, sha, page, cache, args.width, text, start, sentence)
            cached_ms.append((time.perf_counter() - t0) * 1000)
            sizes.append(view.image.stat().st_size / 1024)
            located += view.located
            framed += bool(view.sentence) or not sentence
    render_ms.sort()
    print(json.dumps({
        "corpus": str(args.corpus), "chunks": len(chunks), "width": args.width,
        "render_ms_median": round(statistics.median(render_ms), 1),
        "render_ms_p95": round(render_ms[int(0.95 * (len(render_ms) - 1))], 1),
        "cached_ms_median": round(statistics.median(cached_ms), 1),
        "cached_speedup": round(statistics.median(render_ms) / max(statistics.median(cached_ms), 1e-6), 1),
        "located_share": round(located / len(chunks), 3),
        "sentence_located_share": round(framed / len(chunks), 3),
        "first_answer_ms": round(first_answer_ms, 1),
        "png_kb_median": round(statistics.median(sizes), 1),
    }, indent=2))


if __name__ == "__main__":
    main()
