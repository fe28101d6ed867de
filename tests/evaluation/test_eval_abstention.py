"""The abstention trade-off curve from recorded confidences, and calibration's choice on it."""

from __future__ import annotations

import pytest

from evaluation.abstention import (
    CurvePoint,
    Decision,
    choose_threshold,
    curve_point,
    decision_from_row,
    feasible,
    thresholds,
    tradeoff_curve,
)

pytestmark = pytest.mark.unit


def answerable(confidence, found=True, answered=None, forced=False):
    return Decision("answerable", confidence, confidence >= 0.5 if answered is None else answered, forced, found)


def negative(kind, confidence, forced=False):
    return Decision(kind, confidence, confidence >= 0.5, forced)


def test_decisions_follow_the_threshold_unless_the_abstention_had_another_reason() -> None:
    assert answerable(0.4).answered_at(0.3) and not answerable(0.4).answered_at(0.45)
    assert answerable(0.4).answered_at(0.4)  # reaching the threshold is enough
    assert not answerable(0.9, forced=True).answered_at(0.1)  # e.g. no sources: no threshold helps
    # No confidence (an LLM answerer): what the run did, at every threshold.
    assert Decision("answerable", None, True).answered_at(0.99)
    assert not Decision("answerable", None, False).answered_at(0.01)


def test_rows_become_decisions() -> None:
    row = {"answerable": True, "abstained": True, "confidence": 0.3, "metrics": {"hit@5": 1.0}}
    assert decision_from_row(row, 0.5) == Decision("answerable", 0.3, False, False, True)
    # Abstained although the confidence reached the threshold: another reason, it stays abstained.
    forced = {**row, "confidence": 0.7}
    assert decision_from_row(forced, 0.5).forced
    assert decision_from_row({**row, "confidence": None}, 0.5).forced
    missed = {**row, "metrics": {"hit@5": 0.0}}
    assert decision_from_row(missed, 0.5).found is False
    assert decision_from_row({**row, "metrics": {"hit@5": None}}, 0.5) is None  # no gold documents
    assert decision_from_row({**row, "abstained": None}, 0.5) is None  # retrieval only
    hard = {"answerable": False, "negative": "hard", "abstained": False, "confidence": 0.6, "metrics": {}}
    assert decision_from_row(hard, 0.5) == Decision("hard", 0.6, True, False, True)


def test_curve_rates_by_hand() -> None:
    decisions = [
        answerable(0.9), answerable(0.6), answerable(0.35), answerable(0.2),
        answerable(0.95, found=False),  # gold document not in the top 5: outside the answered rate
        negative("foreign", 0.1), negative("foreign", 0.3),
        negative("hard", 0.4), negative("hard", 0.55),
    ]
    at_03 = curve_point(decisions, 0.3)
    assert at_03.answered_rate == 0.75  # 0.9, 0.6, 0.35 of the four found
    assert at_03.refusal == {"foreign": 0.5, "hard": 0.0}
    at_05 = curve_point(decisions, 0.5)
    assert at_05.answered_rate == 0.5 and at_05.refusal == {"foreign": 1.0, "hard": 0.5}
    assert curve_point([answerable(0.9)], 0.5).refusal == {}  # kinds absent: no rate
    curve = tradeoff_curve(decisions, [0.1, 0.5, 0.9])
    assert [p.threshold for p in curve] == [0.1, 0.5, 0.9]
    # More threshold, fewer answers and more refusals: both monotone.
    rates = [p.answered_rate for p in tradeoff_curve(decisions, thresholds(0.05, decisions))]
    assert rates == sorted(rates, reverse=True)
    assert curve[0].to_dict() == {"threshold": 0.1, "answered_rate": 1.0, "refusal_rate_foreign": 0.0,
                                  "refusal_rate_hard": 0.0}


def test_threshold_grid() -> None:
    assert thresholds(0.25) == [0.25, 0.5, 0.75, 1.0]
    assert thresholds(0.25, include=[0.51, 0.0]) == [0.25, 0.5, 0.51, 0.75, 1.0]
    assert thresholds(0.5, [answerable(1.04)]) == [0.5, 1.0, 1.5]  # past the highest confidence
    with pytest.raises(ValueError):
        thresholds(0)


def test_calibration_picks_the_most_answers_that_refuse_enough() -> None:
    curve = [
        CurvePoint(0.2, 0.98, {"foreign": 0.90, "hard": 0.30}),
        CurvePoint(0.3, 0.95, {"foreign": 0.96, "hard": 0.55}),
        CurvePoint(0.4, 0.90, {"foreign": 0.97, "hard": 0.60}),  # first to refuse enough of both
        CurvePoint(0.5, 0.80, {"foreign": 1.00, "hard": 0.80}),
    ]
    assert choose_threshold(curve).threshold == 0.4
    assert choose_threshold(curve, {"foreign": 0.95, "hard": 0.5}).threshold == 0.3
    assert choose_threshold(curve, {"foreign": 1.0, "hard": 0.9}) is None
    # A kind of negative the data lacks is not checked.
    only_foreign = [CurvePoint(0.2, 0.98, {"foreign": 0.96}), CurvePoint(0.3, 0.9, {"foreign": 1.0})]
    assert choose_threshold(only_foreign).threshold == 0.2
    assert feasible(CurvePoint(0.1, 1.0, {}))


def test_calibration_breaks_ties_toward_refusing_more_then_the_middle_of_a_plateau() -> None:
    plateau = [
        CurvePoint(0.30, 0.9, {"foreign": 0.96, "hard": 0.6}),
        CurvePoint(0.31, 0.9, {"foreign": 0.96, "hard": 0.7}),
        CurvePoint(0.32, 0.9, {"foreign": 0.96, "hard": 0.7}),
        CurvePoint(0.33, 0.9, {"foreign": 0.96, "hard": 0.7}),
        CurvePoint(0.34, 0.8, {"foreign": 1.0, "hard": 0.9}),
    ]
    assert choose_threshold(plateau).threshold == 0.32


def test_calibrate_pools_data_sets_and_reports_each(monkeypatch) -> None:
    """calibrate() on stub runs: the pooled curve decides, each set is shown at the chosen point."""
    from evaluation import calibrate as module
    from evaluation.runner import PipelineResult

    def row(kind, confidence, found=True):
        answered = confidence >= 0.5
        if kind == "answerable":
            return {"answerable": True, "abstained": not answered, "confidence": confidence,
                    "metrics": {"hit@5": 1.0 if found else 0.0}}
        return {"answerable": False, "negative": kind, "abstained": not answered, "confidence": confidence,
                "metrics": {}}

    runs = {
        "a": [row("answerable", 0.8), row("answerable", 0.45), row("foreign", 0.2), row("hard", 0.42)],
        "b": [row("answerable", 0.7), row("answerable", 0.3), row("foreign", 0.1), row("hard", 0.35)],
    }

    class StubDataset:
        def __init__(self, name):
            self.name = name

    class StubRunner:
        class service:  # noqa: N801
            from core.settings import Settings

            settings = Settings(abstain_threshold=0.5)

        def evaluate(self, dataset, config, **kwargs):
            assert config.answers and config.abstain_threshold == 0.5
            return PipelineResult(dataset.name, {}, {}, runs[dataset.name], {}, 0.0)

    result = module.calibrate(StubRunner(), [StubDataset("a"), StubDataset("b")])
    # Pooled: hard negatives at 0.42 and 0.35 must be refused >= 60 % (1 of 2 is 50 %: both, so
    # above 0.42); foreign ones are refused from 0.21 on. 0.43-0.45 then answer 0.8, 0.45 and 0.7
    # of the four: the middle of that plateau is chosen.
    assert result.chosen.threshold == pytest.approx(0.44)
    assert result.chosen.answered_rate == 0.75
    assert result.per_set["a"].answered_rate == 1.0 and result.per_set["b"].answered_rate == 0.5
    data = result.to_dict()
    assert data["questions"] == {"answerable": 4, "foreign": 2, "hard": 2}
    assert data["at_run_threshold"]["answered_rate"] == 0.5
    assert data["chosen"]["refusal_rate_hard"] == 1.0
    assert data["per_dataset_at_run_threshold"]["b"]["answered_rate"] == 0.5
    assert {p["threshold"] for p in data["per_dataset_curve"]["a"]} >= {0.05, 0.5, 1.0}
