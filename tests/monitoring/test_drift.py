"""PSI and KS, the per-request signals, the embedding signals and the reference/current windows."""

import numpy as np
import pytest
from scipy.stats import ks_2samp

from monitoring.drift import (
    CENTROID_SIGNAL,
    DriftSettings,
    collection_drift,
    compare,
    component_signal,
    drift_checks,
    embedding_signals,
    ks_test,
    non_latin_share,
    psi,
    script_of,
    select_windows,
)
from tests.monitoring.conftest import log_requests, make_answer, make_trace, spiked_vectors

pytestmark = pytest.mark.unit

SMALL = DriftSettings(reference_requests=60, current_requests=60, min_requests=30)


def test_psi_is_near_zero_for_the_same_distribution_and_large_for_a_shift():
    rng = np.random.default_rng(0)
    reference = rng.normal(0, 1, 5000)
    assert psi(reference, rng.normal(0, 1, 5000)) < 0.01
    assert 0.1 < psi(reference, rng.normal(0.5, 1, 5000)) < 0.4  # half a standard deviation: "moderate"
    assert psi(reference, rng.normal(2, 1, 5000)) > 1.0
    assert psi(reference, reference) == pytest.approx(0.0)


def test_psi_bins_come_from_the_reference_quantiles_and_handle_ties():
    # A constant reference has two bins, "at most" and "above": a share of ones shows.
    assert psi([0.0] * 100, [0.0] * 100) == pytest.approx(0.0)
    assert psi([0.0] * 100, [0.0] * 50 + [1.0] * 50) > 1.0
    # Binary values: the abstention rate going from 10 % to 50 %.
    moved = psi([1.0] * 10 + [0.0] * 90, [1.0] * 50 + [0.0] * 50)
    assert moved > 0.5
    # The index only sees the reference's bins: a monotone change of scale inside one bin is invisible.
    assert psi(list(range(100)), list(range(100))) == pytest.approx(0.0)
    with pytest.raises(ValueError):
        psi([], [1.0])


def test_ks_test_is_scipys_two_sample_test():
    rng = np.random.default_rng(1)
    a, b = rng.normal(0, 1, 200), rng.normal(0.3, 1, 150)
    statistic, p_value = ks_test(a, b)
    expected = ks_2samp(a, b)
    assert statistic == pytest.approx(expected.statistic) and p_value == pytest.approx(expected.pvalue)


def test_small_windows_say_not_enough_data_and_noise_does_not_fire():
    rng = np.random.default_rng(2)
    few = compare(rng.normal(0, 1, 20), rng.normal(3, 1, 20), SMALL, collection="c", signal="s", kind="output")
    assert few.level == "ok" and few.psi is None and not few.enough_data
    assert "not enough data" in few.detail and "30 needed" in few.detail
    # 40 against 40 of one distribution: PSI alone is often above 0.1, the KS test says it is noise.
    noisy = [compare(rng.normal(0, 1, 40), rng.normal(0, 1, 40), SMALL, collection="c", signal="s", kind="output")
             for _ in range(20)]
    assert any(c.psi > 0.1 for c in noisy)
    assert sum(c.level != "ok" for c in noisy) <= 1
    shifted = compare(rng.normal(0, 1, 40), rng.normal(1.5, 1, 40), SMALL, collection="c", signal="s", kind="output")
    assert shifted.level == "critical" and shifted.p_value < 0.01 and shifted.psi > 0.2
    assert shifted.current_mean > shifted.reference_mean


def test_script_share_and_script():
    assert non_latin_share("How long is the warranty?") == 0.0
    assert non_latin_share("Сколько длится гарантия?") == 1.0
    assert non_latin_share("123 ?") == 0.0
    assert script_of("Wie lange gilt die Garantie?") == "LATIN" and script_of("保修期多长") == "CJK"


def test_embedding_signals_treat_reference_vectors_like_new_ones():
    rng = np.random.default_rng(3)
    reference, same = spiked_vectors(rng, 200), spiked_vectors(rng, 200)
    values = embedding_signals(reference, same, components=3)
    assert set(values) == {CENTROID_SIGNAL, *(component_signal(i) for i in (1, 2, 3))}
    for name, (ref, cur) in values.items():
        assert len(ref) == 200 and len(cur) == 200
        assert ks_test(ref, cur)[1] > 0.01, name  # out-of-sample reference values: no drift of its own
        assert np.std(ref) == pytest.approx(np.std(cur), rel=0.25), name
    moved = embedding_signals(reference, spiked_vectors(rng, 200, shift=3.0), components=3)
    ref_cos, cur_cos = moved[CENTROID_SIGNAL]
    assert cur_cos.mean() < ref_cos.mean() - 0.2


def test_checks_fire_on_shifted_requests_and_stay_quiet_on_stable_ones(log):
    log_requests(log, 60, seed=1)
    log_requests(log, 60, seed=2)
    stable = collection_drift(log, "c", SMALL)
    assert stable.windows.n_reference == 60 and stable.windows.n_current == 60
    assert stable.level == "ok", [(c.signal, c.detail) for c in stable.checks if c.level != "ok"]
    assert "top rerank score" not in {c.signal for c in stable.checks}  # no reranker: not watched
    log_requests(log, 60, question="quarterly revenue of the company in the latest filing", score=0.3,
                  vector_shift=3.0, abstain_every=2, seed=3)
    shifted = {c.signal: c for c in collection_drift(log, "c", SMALL).checks}
    for signal in (CENTROID_SIGNAL, "query length (words)", "top-1 retrieval score (dense cosine)",
                   "top-5 retrieval score (dense cosine, mean)", "abstention"):
        assert shifted[signal].level == "critical", shifted[signal]
    assert shifted["feedback (helpful = 1)"].detail.startswith("not enough data")


def test_questions_in_another_script_and_without_keyword_hits_drift(log):
    reference = [make_trace(f"how long is the warranty of model {i}") for i in range(40)]
    current = [make_trace(f"Сколько длится гарантия модели {i}", sparse=[]) for i in range(40)]
    for trace in reference + current:
        log.record(trace, make_answer())
    rows = log.rows()
    checks = {c.signal: c for c in drift_checks(rows[:40], rows[40:], SMALL, "c")}
    assert checks["non-Latin script share"].level == "critical"
    assert checks["no keyword hit (BM25 top score 0)"].level == "critical"
    assert checks["no keyword hit (BM25 top score 0)"].current_mean == 1.0
    assert not checks[CENTROID_SIGNAL].enough_data  # these requests carry no query vectors


def test_reference_window_starts_at_the_last_reindex_and_fills_first(log):
    log_requests(log, 30, seed=4)  # before the re-index: never compared
    log.mark("reindex", "c", {"chunks_added": 100})
    log_requests(log, 40, seed=5)
    reference, current, windows = select_windows(log, "c", SMALL)
    assert len(reference) == 40 and current == [] and "still filling: 40 of 60" in windows.note
    assert "re-index" in windows.reference_basis
    log_requests(log, 50, seed=6)
    reference, current, windows = select_windows(log, "c", SMALL)
    assert len(reference) == 60 and len(current) == 30 and not windows.note
    assert windows.reference_end < windows.current_start
    log.record(make_trace("failed"), None, error="boom")
    assert all(r.error is None for r in select_windows(log, "c", SMALL)[1])
    log.mark("reference", "c")
    reference, current, windows = select_windows(log, "c", SMALL)
    assert reference == [] and "reference mark" in windows.reference_basis


def test_the_reference_can_start_after_the_last_evaluation(log):
    from monitoring.alerts import EvaluationStatus
    from monitoring.config import MonitorConfig
    from monitoring.metrics import build_report

    after_evaluation = DriftSettings(reference_requests=20, current_requests=60, min_requests=10,
                                     reference_after="evaluation")
    log_requests(log, 10, seed=9)
    log.mark("reindex", "c")
    log_requests(log, 30, seed=10)
    evaluated = log.rows()[-1].ts + 1e-6
    log_requests(log, 30, seed=11)
    reference, _, windows = select_windows(log, "c", after_evaluation)  # no evaluation yet: the re-index
    assert windows.reference_basis == "first 20 requests after the last re-index"
    assert reference[0].ts < evaluated
    reference, current, windows = select_windows(log, "c", after_evaluation, last_evaluation=evaluated)
    assert windows.reference_basis == "first 20 requests after the last evaluation"
    assert len(reference) == 20 and reference[0].ts > evaluated and len(current) == 10
    _, _, windows = select_windows(log, "c", SMALL, last_evaluation=evaluated)  # the default: the re-index
    assert windows.reference_basis == "first 60 requests after the last re-index"
    report = build_report(log, config=MonitorConfig(drift=after_evaluation),
                          evaluations=[EvaluationStatus("docugami", evaluated, {}), EvaluationStatus("x", 0.0, {})])
    assert report.drift[0].windows.reference_basis == "first 20 requests after the last evaluation"
    log.mark("reference", "c")  # a new reference after the evaluation wins
    reference, _, windows = select_windows(log, "c", after_evaluation, last_evaluation=evaluated)
    assert reference == [] and windows.reference_basis == "first 20 requests after the last reference mark"


def test_a_fixed_reference_period_and_the_current_window_start(log):
    log_requests(log, 40, seed=7)
    middle = log.rows()[-1].ts
    log_requests(log, 40, seed=8)
    fixed = DriftSettings(reference_requests=10, current_requests=100, min_requests=30, reference_from=0.0,
                          reference_until=middle + 1e-6)
    reference, current, windows = select_windows(log, "c", fixed)
    assert len(reference) == 40 and len(current) == 40 and windows.reference_basis == "fixed reference period"
    _, current, _ = select_windows(log, "c", fixed, current_since=log.rows()[-5].ts)
    assert len(current) == 5


def test_embeddings_of_another_size_are_named_not_compared(log):
    for i in range(40):
        log.record(make_trace(f"q{i}", vector=np.ones(8)), make_answer())
    for i in range(40):
        log.record(make_trace(f"q{i}", vector=np.ones(16)), make_answer())
    rows = log.rows()
    checks = {c.signal: c for c in drift_checks(rows[:40], rows[40:], SMALL, "c")}
    assert "embedding model changed" in checks[CENTROID_SIGNAL].detail
