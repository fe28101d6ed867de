"""Evaluation reports: report.json (everything, per question) and report.md (tables for people)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from evaluation.metrics import PASSAGE_METRIC_NAMES, RETRIEVAL_METRIC_NAMES
from evaluation.runner import EvalRun, metric_definitions

ANSWER_METRICS = ("exact_match", "token_f1", "semantic_similarity", "correct_answer_rate", "faithfulness",
                  "citation_precision", "citation_page_accuracy", "cited_passage_rate", "answered_rate", "cost_usd")
ABSTENTION_METRICS = ("answered_rate_gold_in_top5", "refusal_rate_foreign", "refusal_rate_hard",
                      "abstention_accuracy", "foreign_negatives", "hard_negatives", "unanswerable_questions")


def write_reports(run: EvalRun, out: str | Path) -> tuple[Path, Path]:
    """Write report.json and report.md into `out` (created); returns both paths."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    json_path = out / "report.json"
    json_path.write_text(json.dumps(run.to_dict(), indent=1, ensure_ascii=False, default=str), encoding="utf-8")
    md_path = out / "report.md"
    md_path.write_text(markdown_report(run), encoding="utf-8")
    return json_path, md_path


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def markdown_table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """A GitHub-flavoured Markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def retrieval_names(metrics: Mapping[str, Any]) -> list[str]:
    """The retrieval metrics present: document level, then page level, then passage level."""
    names = [n for n in RETRIEVAL_METRIC_NAMES if n in metrics]
    names += [f"page_{n}" for n in RETRIEVAL_METRIC_NAMES if f"page_{n}" in metrics]
    return names + [n for n in PASSAGE_METRIC_NAMES if n in metrics]


def curve_table(curve: Sequence[Mapping[str, Any]]) -> str:
    """The abstention trade-off curve as a Markdown table: threshold, answered rate, refusal per kind."""
    kinds = [k for k in ("refusal_rate_foreign", "refusal_rate_hard") if any(k in p for p in curve)]
    return markdown_table(["threshold", "answered_rate_gold_in_top5", *kinds],
                          [[p["threshold"], p.get("answered_rate"), *(p.get(k) for k in kinds)] for p in curve])


def markdown_report(run: EvalRun) -> str:
    """The report a person reads: settings, ours against the starter, answers, latency, definitions."""
    ours = run.ours
    parts = [f"# Evaluation: {run.dataset}", "",
             f"{run.questions} questions ({ours.metrics.get('questions_scored', 0)} with gold documents), "
             f"{run.seconds:.1f} s. Data set: `{run.dataset_path}`.", ""]
    settings = ours.settings
    parts += ["## Settings", "", markdown_table(["setting", "value"], [(k, settings[k]) for k in settings]), ""]
    parts += ["## Retrieval", ""]
    header = ["metric", "ours"] + (["LlamaIndex starter", "difference"] if run.starter else [])
    rows = []
    for name in retrieval_names(ours.metrics):
        row: list[Any] = [name, ours.metrics.get(name)]
        if run.starter:
            theirs = run.starter.metrics.get(name)
            mine = ours.metrics.get(name)
            row += [theirs, None if theirs is None or mine is None else round(mine - theirs, 3)]
        rows.append(row)
    parts += [markdown_table(header, rows), ""]
    if run.starter:
        parts += ["LlamaIndex starter: SentenceSplitter 1024/20, dense top-k, no reranker, measured on the "
                  "same questions with the same embedder and store in this run.", ""]
    answer_rows = [(n, ours.metrics[n]) for n in ANSWER_METRICS if n in ours.metrics]
    if answer_rows:
        parts += ["## Answers", "", markdown_table(["metric", "value"], answer_rows), ""]
    abstention_rows = [(n, ours.metrics[n]) for n in ABSTENTION_METRICS if n in ours.metrics]
    if abstention_rows:
        threshold = settings.get("abstain_threshold")
        parts += ["## Abstention", "", f"Answerer's threshold in this run: {_cell(threshold)}.", "",
                  markdown_table(["metric", "value"], abstention_rows), ""]
        curve = ours.metrics.get("abstention_curve") or []
        if curve:
            parts += ["Trade-off curve (from the confidences recorded in this run):", "", curve_table(curve), ""]
    latency = ours.metrics.get("latency_ms") or {}
    if latency:
        parts += ["## Latency (ms)", "",
                  markdown_table(["stage", "p50", "p95"], [(s, v["p50"], v["p95"]) for s, v in latency.items()]), ""]
    ingestion = [(r.label, r.ingestion.get("chunks"), r.ingestion.get("files"),
                  "reused" if r.ingestion.get("reused") else f"{r.ingestion.get('seconds', 0):.1f} s")
                 for r in (ours, run.starter) if r is not None]
    parts += ["## Ingestion", "", markdown_table(["pipeline", "chunks", "files", "ingestion"], ingestion), ""]
    if ours.notes:
        parts += ["## Notes", ""] + [f"- {n}" for n in ours.notes] + [""]
    parts += ["## Definitions", ""] + [f"- **{k}**: {v}" for k, v in metric_definitions().items()] + [""]
    return "\n".join(parts)


def grid_table(cells: Sequence[Mapping[str, Any]], metrics: Sequence[str] = ("hit@5", "MRR@10", "recall@10")) -> str:
    """One Markdown table for a grid: one row per cell (`label` plus metric values)."""
    return markdown_table(["pipeline", *metrics], [[c["label"], *(c["metrics"].get(m) for m in metrics)] for c in cells])
