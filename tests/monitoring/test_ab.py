"""A/B variants: routing by share and session, and the comparison with a verdict."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pytest

from core.variants import CONTROL, assign, parse_variants
from monitoring.ab import ABSettings, Rate, ab_report, needed_per_arm, two_proportion_z
from monitoring.request_log import RequestRow

pytestmark = pytest.mark.unit


def test_observed_shares_match_the_setting_over_many_sessions():
    variants = parse_variants("b:0.2,c:0.1", {"b": {"top_k": 3}, "c": {"mode": "dense"}})
    counts = Counter(assign(variants, f"session-{i}").name for i in range(20_000))
    assert counts["b"] / 20_000 == pytest.approx(0.2, abs=0.01)
    assert counts["c"] / 20_000 == pytest.approx(0.1, abs=0.01)
    assert counts[CONTROL] / 20_000 == pytest.approx(0.7, abs=0.01)
    # Sticky: a session's questions all go to the same arm, in any process.
    assert {assign(variants, "session-42").name for _ in range(50)} == {assign(variants, "session-42").name}
    assert assign(variants, "x").pipeline_options() in ({"top_k": 3}, {"mode": "dense"}, {})


@pytest.mark.parametrize(("spec", "definitions", "message"), [
    ("b:1.5", {}, "share in \\(0, 1\\]"),
    ("b", {}, "name:share"),
    ("b:0.6,c:0.6", {}, "more than 1"),
    ("b:0.1,b:0.1", {}, "twice"),
    ("control:0.1", {}, "name yours otherwise"),
    ("b:0.1", {"b": {"chunker": "fixed"}}, "unknown choice"),
    ("b:0.1", {"b": {"mode": "fuzzy"}}, "mode must be"),
    ("b:0.1", {"b": {"weights": [1.0]}}, "weights must be"),
    ("b:0.1", {"b": {"weights": [0, 0]}}, "weights must be"),
    ("b:0.1", {"b": {"weights": [-1, 2]}}, "weights must be"),
    ("b:0.1", {"b": {"weights": "dense"}}, "weights must be"),
    ("b:0.1", {"b": {}, "c": {"top_k": 2}}, "gives no share"),
    ("", {"b": {"top_k": 2}}, "gives none a share"),
])
def test_bad_variant_settings_say_what_to_fix(spec, definitions, message):
    with pytest.raises(ValueError, match=message):
        parse_variants(spec, definitions)


def test_off_without_a_setting():
    assert parse_variants("", {}) == () and parse_variants(None) == ()


def _row(variant: str, total_ms: float, *, abstained: bool = False, error: bool = False, grounded: bool = True,
         feedback: int | None = None) -> RequestRow:
    return RequestRow(
        id="", ts=0.0, collection="c", question="q", answer=None if error else "a", abstained=abstained,
        grounded=grounded, provider="extractive", reranker="none", cache_hit=False, input_tokens=0, output_tokens=0,
        cost_usd=0.0, timings={} if error else {"total": total_ms}, top_score=None, sources=[],
        error="boom" if error else None, feedback=feedback, variant=variant)


def _arm(variant: str, n: int, *, latency: float = 100.0, abstain: float = 0.1, seed: int = 0) -> list[RequestRow]:
    rng = np.random.default_rng(seed)
    return [_row(variant, float(rng.normal(latency, 10)), abstained=bool(rng.random() < abstain)) for _ in range(n)]


def test_a_slower_variant_is_kept_out():
    report = ab_report(_arm(CONTROL, 900, seed=1) + _arm("b", 900, latency=115.0, seed=2))
    [verdict] = report.verdicts
    assert verdict.verdict == "keep" and "latency_ms" in verdict.reason and verdict.reason.startswith("worse")
    latency = next(c for c in verdict.comparisons if c.metric == "latency_ms")
    assert latency.test == "Mann-Whitney U" and latency.p_value < 1e-6 and latency.better is False
    control, b = report.arms
    assert control.name == CONTROL and b.latency_ms["p50"] > control.latency_ms["p50"]
    low, high = b.latency_interval_ms["p95"]
    assert low <= b.latency_ms["p95"] <= high


def test_a_variant_that_abstains_more_is_kept_out():
    report = ab_report(_arm(CONTROL, 900, abstain=0.10, seed=3) + _arm("b", 900, abstain=0.25, seed=4))
    [verdict] = report.verdicts
    abstention = next(c for c in verdict.comparisons if c.metric == "abstention")
    assert abstention.test == "two-proportion z" and abstention.significant and abstention.better is False
    assert verdict.verdict == "keep" and "abstention" in verdict.reason


def test_a_faster_variant_as_good_otherwise_is_promoted():
    report = ab_report(_arm(CONTROL, 900, seed=5) + _arm("b", 900, latency=80.0, seed=6))
    [verdict] = report.verdicts
    assert verdict.verdict == "promote" and "latency_ms" in verdict.reason and "worse nowhere" in verdict.reason


def test_no_difference_keeps_the_control():
    report = ab_report(_arm(CONTROL, 900, seed=7) + _arm("b", 900, seed=8))
    assert report.verdicts[0].verdict == "keep" and "no significant difference" in report.verdicts[0].reason


def test_the_verdict_waits_while_data_are_too_few_and_says_how_many_more():
    report = ab_report(_arm(CONTROL, 40, seed=9) + _arm("b", 30, latency=200.0, seed=10))
    [verdict] = report.verdicts
    needed = needed_per_arm(report.arms[0].abstention.value, ABSettings())
    assert verdict.verdict == "not enough data" and verdict.needed == needed - 30
    assert f"{needed - 30} more requests per arm" in verdict.reason


def test_rates_intervals_and_tests():
    rate = Rate(10, 100)
    low, high = rate.interval
    assert low < 0.1 < high and 0.05 < low and high < 0.18
    assert Rate(0, 0).value is None and Rate(0, 0).interval is None
    assert two_proportion_z(Rate(10, 100), Rate(10, 100)) == pytest.approx(1.0)
    assert two_proportion_z(Rate(100, 1000), Rate(200, 1000)) < 1e-8
    assert two_proportion_z(Rate(0, 10), Rate(0, 10)) == 1.0
    # 10 % abstention, 5 points to see, power 0.8: (1.96 + 0.84)^2 x 2 x 0.1 x 0.9 / 0.05^2 = 565.2 per arm.
    assert needed_per_arm(0.1, ABSettings(alpha=0.05, min_effect=0.05)) == 566
    assert needed_per_arm(0.1, ABSettings(alpha=0.01, min_effect=0.05)) == 841  # z of 2.58 at alpha 0.01
    assert ab_report([_row("", 10.0)]) is None  # no variants: no comparison


def test_errors_grounded_and_feedback_are_compared():
    control = [_row(CONTROL, 100.0, feedback=1) for _ in range(900)]
    variant = ([_row("b", 100.0, error=True) for _ in range(90)]
               + [_row("b", 100.0, grounded=False, feedback=-1) for _ in range(450)]
               + [_row("b", 100.0, feedback=1) for _ in range(360)])
    [verdict] = ab_report(control + variant).verdicts
    worse = {c.metric for c in verdict.comparisons if c.better is False}
    assert worse == {"errors", "grounded", "helpful"} and verdict.verdict == "keep"


def test_rag_monitor_ab_prints_arms_and_verdicts(log_path, monkeypatch):
    from typer.testing import CliRunner

    monkeypatch.setenv("RAG_AB", "b:0.1")
    monkeypatch.setenv("RAG_AB_VARIANTS", json.dumps({"b": {"mode": "dense", "weights": [1, 0.5]}}))
    from core.settings import get_settings

    get_settings.cache_clear()  # read again with the variants (the log_path fixture read them first)

    from monitoring.request_log import RequestLog
    from rag.cli import app
    from tests.monitoring.conftest import make_answer, make_trace

    log = RequestLog(log_path)
    for i in range(30):
        log.record(make_trace(f"q{i}", variant=CONTROL), make_answer())
        log.record(make_trace(f"q{i}", variant="b", total_ms=300.0), make_answer())
    log.close()
    runner = CliRunner()
    result = runner.invoke(app, ["monitor", "--ab", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert [a["name"] for a in data["arms"]] == [CONTROL, "b"]
    assert data["verdicts"][0]["verdict"] == "not enough data" and data["verdicts"][0]["needed"] > 0
    text = runner.invoke(app, ["monitor", "--ab"])
    assert "b: not enough data" in text.output and "A/B variants" in text.output
    assert data["variants"] == {"b": {"share": 0.1, "mode": "dense", "weights": [1.0, 0.5]}}
    assert "b sets: mode=dense, weights=[1.0, 0.5] (10% of sessions)" in text.output
    assert "control sets: the settings as they are" in text.output
    full = json.loads(runner.invoke(app, ["monitor", "--json"]).output)
    assert full["ab"]["verdicts"][0]["name"] == "b"
    prometheus = runner.invoke(app, ["monitor", "--prometheus"]).output
    assert 'rag_monitor_ab_verdict{variant="b",verdict="not enough data"} 1.0' in prometheus


@pytest.fixture
def log_path():
    from core.settings import get_settings

    return get_settings().logs_dir / "requests.sqlite"
