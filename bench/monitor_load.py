"""A scripted load for monitoring: questions of one evaluation set, then of another, asked of a
collection built from the first set's documents, each logged with source "eval". Then
`rag monitor --json --collection C` shows drift (and the page shows it too).

    rag eval convert covidqa ../shared/eval/covid_qa /tmp/covidqa
    rag eval convert docugami ../shared/eval/docugami_sec_10q /tmp/docugami
    export RAG_HOME=/tmp/rag_home_monitor RAG_DRIFT_REFERENCE_REQUESTS=60 RAG_DRIFT_CURRENT_REQUESTS=60
    python bench/monitor_load.py /tmp/covidqa /tmp/docugami --documents 4 --questions 60
    rag monitor --json --collection load --window all    # exit 2: drift is critical

Options: --documents N takes the N documents of the first set with the most questions per byte (its
questions about other documents are left out); --questions N asks N of its dev split, then N of
the second set; --ab-sessions K spreads the questions over K chat sessions (for RAG_AB).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("reference", type=Path, help="evaluation set whose documents and questions come first")
    parser.add_argument("other", type=Path, help="evaluation set whose questions come next")
    parser.add_argument("--collection", default="load")
    parser.add_argument("--documents", type=int, default=4)
    parser.add_argument("--questions", type=int, default=60)
    parser.add_argument("--ab-sessions", type=int, default=0)
    args = parser.parse_args()

    from evaluation.datasets import load_dataset
    from rag.service import RagService

    first, second = load_dataset(args.reference), load_dataset(args.other)
    folder = first.root / "documents"
    counts = Counter(d for q in first.questions for d in q.gold_documents)
    chosen = sorted(counts, key=lambda d: -counts[d] / (folder / d).stat().st_size)[: args.documents]
    own = [q.question for q in first.split("dev").questions if q.gold_documents and q.gold_documents <= set(chosen)]
    service = RagService(source="eval")
    started = time.perf_counter()
    report = service.ingest([folder / d for d in chosen], args.collection)
    asked = {first.name: 0, second.name: 0}
    for name, questions in ((first.name, own[: args.questions]),
                            (second.name, [q.question for q in second.questions][: args.questions])):
        for i, question in enumerate(questions):
            session = f"load-{i % args.ab_sessions}" if args.ab_sessions else None
            service.ask(question, args.collection, session=session)
            asked[name] += 1
    service.close()
    print(json.dumps({"collection": args.collection, "documents": chosen, "chunks": report.chunks_added,
                      "asked": asked, "seconds": round(time.perf_counter() - started, 1)}))


if __name__ == "__main__":
    main()
