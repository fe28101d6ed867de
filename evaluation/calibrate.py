"""Calibrate the abstention threshold on labelled data sets (`rag calibrate`).

Each data set's split is asked once, with answers, together with negatives: hard ones (its own
questions with their gold documents filtered out) and foreign ones (questions of another set).
The confidences recorded in those runs give the whole trade-off curve (evaluation/abstention.py);
the threshold chosen is the one that answers most of the answerable questions whose gold
document was retrieved, while refusing at least 95 % of foreign and 60 % of hard negatives.
Several data sets are pooled: their questions count together, as one set.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from evaluation.abstention import (
    CALIBRATION_STEP,
    CURVE_STEP,
    MIN_REFUSAL,
    CurvePoint,
    Decision,
    choose_threshold,
    curve_point,
    decision_from_row,
    thresholds,
    tradeoff_curve,
)
from evaluation.config import EvalConfig
from evaluation.datasets import Dataset, with_hard_negatives, with_unanswerable
from evaluation.runner import EvaluationRunner, PipelineResult


def with_negatives(
    dataset: Dataset,
    *,
    hard: int = 0,
    foreign_from: Sequence[Dataset] = (),
    foreign: int = 0,
) -> Dataset:
    """The data set with `hard` hard negatives and `foreign` foreign ones added, the foreign ones
    shared evenly among the sets in `foreign_from` (spread over each)."""
    added = list(with_hard_negatives(dataset, hard)) if hard else []
    others = [o for o in foreign_from if o.root != dataset.root]
    for i, other in enumerate(others):
        share = foreign // len(others) + (1 if i < foreign % len(others) else 0)
        if share:
            added += with_unanswerable(dataset, other, share)
    return dataset.with_questions(dataset.questions + added) if added else dataset


@dataclass
class CalibrationSet:
    """One data set's run and its questions as the curve sees them."""

    name: str
    result: PipelineResult
    decisions: list[Decision]


@dataclass
class Calibration:
    """The pooled curve, the chosen point (None: no threshold refuses enough) and each set's
    figures at the chosen threshold (at the run's threshold when none was chosen)."""

    sets: list[CalibrationSet]
    run_threshold: float
    min_refusal: dict[str, float]
    curve: list[CurvePoint]
    chosen: CurvePoint | None
    per_set: dict[str, CurvePoint] = field(default_factory=dict)

    @property
    def decisions(self) -> list[Decision]:
        return [d for s in self.sets for d in s.decisions]

    def report_curve(self, step: float = CURVE_STEP) -> list[CurvePoint]:
        """The pooled curve at `step` intervals, plus the run's and the chosen thresholds."""
        include = [self.run_threshold] + ([self.chosen.threshold] if self.chosen else [])
        return tradeoff_curve(self.decisions, thresholds(step, self.decisions, include=include))

    def to_dict(self) -> dict[str, Any]:
        """The `rag calibrate --json` object."""
        counts = {kind: sum(1 for d in self.decisions if d.kind == kind) for kind in ("answerable", "foreign", "hard")}
        return {
            "datasets": [s.name for s in self.sets],
            "questions": counts,
            "answerable_with_gold_in_top5": sum(1 for d in self.decisions if d.kind == "answerable" and d.found),
            "run_threshold": self.run_threshold,
            "min_refusal": self.min_refusal,
            "chosen": None if self.chosen is None else self.chosen.to_dict(),
            "at_run_threshold": curve_point(self.decisions, self.run_threshold).to_dict(),
            "per_dataset": {name: point.to_dict() for name, point in self.per_set.items()},
            "per_dataset_at_run_threshold": {s.name: curve_point(s.decisions, self.run_threshold).to_dict()
                                             for s in self.sets},
            # Each set's own curve: pooling lets the largest set dominate the answered rate.
            "per_dataset_curve": {s.name: [p.to_dict() for p in tradeoff_curve(
                s.decisions, thresholds(CURVE_STEP, s.decisions, include=[self.run_threshold]))] for s in self.sets},
            "curve": [p.to_dict() for p in self.curve],
        }


def calibrate(
    runner: EvaluationRunner,
    datasets: Sequence[Dataset],
    config: EvalConfig | None = None,
    *,
    min_refusal: Mapping[str, float] = MIN_REFUSAL,
    step: float = CALIBRATION_STEP,
    on_question: Callable[[], None] | None = None,
    ingest_progress: Callable[[dict[str, Any]], None] | None = None,
) -> Calibration:
    """Run each data set once (answers on, no starter) and choose the threshold on the pooled
    confidences. The data sets carry their negatives already (see `with_negatives`)."""
    if not datasets:
        raise ValueError("Give at least one data set to calibrate on.")
    settings = runner.service.settings
    config = replace(config or EvalConfig(), answers=True).resolved(settings)
    threshold = float(config.abstain_threshold or 0.0)
    sets = []
    for dataset in datasets:
        result = runner.evaluate(dataset, config, on_question=on_question, ingest_progress=ingest_progress)
        decisions = [d for d in (decision_from_row(r, threshold) for r in result.rows) if d is not None]
        sets.append(CalibrationSet(dataset.name, result, decisions))
    pooled = [d for s in sets for d in s.decisions]
    if not any(d.kind == "answerable" and d.found for d in pooled):
        raise ValueError("No answerable question had its gold document in the top 5: nothing to calibrate on.")
    curve = tradeoff_curve(pooled, thresholds(step, pooled, include=[threshold]))
    chosen = choose_threshold(curve, min_refusal)
    at = chosen.threshold if chosen is not None else threshold
    per_set = {s.name: curve_point(s.decisions, at) for s in sets}
    return Calibration(sets, threshold, dict(min_refusal), curve, chosen, per_set)
