"""Abstention as a trade-off: how many answerable questions get an answer, how many negatives
are refused, at each threshold on the answerer's confidence.

One evaluation run records each question's confidence (`Answer.confidence`: what the
extractive answerer compares with its threshold). Whether a question would be answered at
another threshold follows from that alone, so the whole curve comes from one run: answered when
the confidence reaches the threshold, unless the run abstained for another reason (no sources, an
answerer without a confidence), which no threshold changes.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

NEGATIVE_KINDS = ("foreign", "hard")
# The targets: refuse at least this share of each kind of negative.
MIN_REFUSAL: dict[str, float] = {"foreign": 0.95, "hard": 0.60}
CURVE_STEP = 0.05  # thresholds shown in reports
CALIBRATION_STEP = 0.01  # thresholds tried by calibration


@dataclass(frozen=True)
class Decision:
    """One question as the curve sees it.

    kind: "answerable", "foreign" or "hard". found: for answerable questions, a gold document is
    among the first 5 retrieved (the population of the answered rate). confidence: None when the
    answerer gives none (its outcome is then fixed). answered: what the run did. forced: the run
    abstained for a reason other than the threshold.
    """

    kind: str
    confidence: float | None
    answered: bool
    forced: bool = False
    found: bool = True

    def answered_at(self, threshold: float) -> bool:
        """Whether the question is answered when the threshold is `threshold`."""
        if self.forced:
            return False
        if self.confidence is None:
            return self.answered
        return self.confidence >= threshold


def decision_from_row(row: Mapping[str, Any], threshold: float) -> Decision | None:
    """A runner row as a Decision; None for rows without an answer (retrieval-only runs) or an
    answerable question without gold documents (the answered rate cannot tell whether its
    document was found). `threshold` is the one the run used."""
    if row.get("abstained") is None:
        return None
    confidence = row.get("confidence")
    abstained = bool(row["abstained"])
    forced = abstained and (confidence is None or float(confidence) >= threshold)
    if row.get("answerable", True):
        hit = (row.get("metrics") or {}).get("hit@5")
        if hit is None:
            return None
        return Decision("answerable", confidence, not abstained, forced, found=hit >= 1.0)
    kind = row.get("negative") or "foreign"
    return Decision(kind, confidence, not abstained, forced)


@dataclass(frozen=True)
class CurvePoint:
    """Rates at one threshold. answered_rate: over answerable questions whose gold document is in
    the top 5; refusal: per kind of negative present, the share refused."""

    threshold: float
    answered_rate: float | None
    refusal: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """{"threshold", "answered_rate", "refusal_rate_foreign", "refusal_rate_hard"} (kinds present)."""
        data: dict[str, Any] = {"threshold": round(self.threshold, 4),
                                "answered_rate": _round(self.answered_rate)}
        data.update({f"refusal_rate_{kind}": _round(rate) for kind, rate in self.refusal.items()})
        return data


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def thresholds(step: float = CURVE_STEP, decisions: Sequence[Decision] = (), include: Iterable[float] = ()) -> list[float]:
    """step, 2 step, ... up to 1 (or past the highest confidence), plus `include`, sorted. Not 0:
    there even a source without a single sentence would count as answered."""
    if step <= 0:
        raise ValueError(f"step must be > 0 (got {step})")
    top = max([1.0] + [d.confidence for d in decisions if d.confidence is not None])
    count = math.ceil(top / step - 1e-9)
    grid = {round(i * step, 6) for i in range(1, count + 1)}
    grid.update(round(float(t), 6) for t in include if t > 0)
    return sorted(grid)


def curve_point(decisions: Sequence[Decision], threshold: float) -> CurvePoint:
    """The answered rate and the refusal rate per kind of negative at one threshold."""
    found = [d for d in decisions if d.kind == "answerable" and d.found]
    answered = sum(1 for d in found if d.answered_at(threshold)) / len(found) if found else None
    refusal = {}
    for kind in NEGATIVE_KINDS:
        negatives = [d for d in decisions if d.kind == kind]
        if negatives:
            refusal[kind] = sum(1 for d in negatives if not d.answered_at(threshold)) / len(negatives)
    return CurvePoint(threshold, answered, refusal)


def tradeoff_curve(decisions: Sequence[Decision], at: Iterable[float]) -> list[CurvePoint]:
    """One CurvePoint per threshold in `at`, in that order."""
    return [curve_point(decisions, t) for t in at]


def feasible(point: CurvePoint, min_refusal: Mapping[str, float] = MIN_REFUSAL) -> bool:
    """True when every kind of negative present is refused at least as often as required."""
    return all(point.refusal[kind] >= need - 1e-9 for kind, need in min_refusal.items() if kind in point.refusal)


def choose_threshold(curve: Sequence[CurvePoint], min_refusal: Mapping[str, float] = MIN_REFUSAL) -> CurvePoint | None:
    """The point that answers most while refusing enough of each kind of negative; None when no
    point refuses enough. Ties (a plateau where the answered rate does not move) go to the point
    that refuses most, then to the middle of what is left, so a small shift in the confidences of
    unseen questions moves the outcome least."""
    allowed = [p for p in curve if feasible(p, min_refusal) and p.answered_rate is not None]
    if not allowed:
        return None
    best = max(p.answered_rate or 0.0 for p in allowed)
    top = [p for p in allowed if (p.answered_rate or 0.0) >= best - 1e-9]
    most = max(sum(p.refusal.values()) for p in top)
    top = sorted((p for p in top if sum(p.refusal.values()) >= most - 1e-9), key=lambda p: p.threshold)
    return top[(len(top) - 1) // 2]
