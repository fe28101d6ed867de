"""Drift: a reference window of requests against a current window, signal by signal.

Input signals describe the questions (query embedding against the reference's centroid and
principal components, query length, script share, share with no keyword in the collection);
output signals describe what the pipeline did with them (raw top-1 / top-5 search scores, rerank
score, abstention, answer length, citations, confidence, feedback). Each is compared by the
population stability index (PSI, bins at the reference's quantiles) and the two-sample
Kolmogorov-Smirnov test. A signal drifts when its PSI passes the threshold *and* the KS test says
the difference is not sampling noise (p below `p_value`): small windows give PSI values of 0.1
and more from noise alone (about (bins - 1) x (1/n_ref + 1/n_cur)).
"""

from __future__ import annotations

import unicodedata
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from monitoring.request_log import RequestLog, RequestRow

Level = Literal["ok", "warning", "critical"]
Kind = Literal["input", "output"]

# Half a request added to every bin (additive smoothing): an empty bin would make the logarithm
# infinite, and a tiny stand-in share lets one empty bin of a small window dominate the index.
BIN_SMOOTHING = 0.5


@dataclass(frozen=True)
class DriftSettings:
    """Windows and thresholds of drift detection (core/settings.py holds the defaults)."""

    reference_requests: int = 500
    current_requests: int = 500
    min_requests: int = 50
    bins: int = 10
    psi_warning: float = 0.1
    psi_critical: float = 0.2
    p_value: float = 0.01
    components: int = 3
    # A fixed reference period (timestamps); None: the first requests after the last re-index.
    reference_from: float | None = None
    reference_until: float | None = None
    # Without a fixed period, the reference starts after the collection's last re-index ("reindex"),
    # or after the last evaluation run ("evaluation"); a reference mark (`rag monitor --new-reference`)
    # after either wins.
    reference_after: str = "reindex"


@dataclass
class DriftCheck:
    """One signal of one collection: reference window vs current window."""

    collection: str
    signal: str
    kind: Kind
    level: Level
    n_reference: int
    n_current: int
    psi: float | None = None
    ks: float | None = None
    p_value: float | None = None
    reference_mean: float | None = None
    current_mean: float | None = None
    detail: str = ""

    @property
    def enough_data(self) -> bool:
        return self.psi is not None


@dataclass
class DriftWindows:
    """Which requests were compared, and why the reference starts where it does."""

    collection: str
    reference_basis: str
    reference_start: float | None = None
    reference_end: float | None = None
    n_reference: int = 0
    current_start: float | None = None
    current_end: float | None = None
    n_current: int = 0
    note: str = ""


@dataclass
class CollectionDrift:
    """The drift checks of one collection with their windows."""

    windows: DriftWindows
    checks: list[DriftCheck] = field(default_factory=list)

    @property
    def level(self) -> Level:
        return worst(c.level for c in self.checks)


def worst(levels: object) -> Level:
    """The most severe of some levels ("ok" when there are none)."""
    order = {"ok": 0, "warning": 1, "critical": 2}
    found: Level = "ok"
    for level in levels:  # type: ignore[attr-defined]
        if order[level] > order[found]:
            found = level
    return found


def psi(reference: Sequence[float], current: Sequence[float], bins: int = 10) -> float:
    """Population stability index: sum over bins of (cur% - ref%) x ln(cur% / ref%), with bins cut
    at the reference's quantiles (ties merge bins; a constant reference gives "at most" and "above")
    and half a request added to each bin."""
    ref = np.asarray(reference, dtype=float)
    cur = np.asarray(current, dtype=float)
    if ref.size == 0 or cur.size == 0:
        raise ValueError("PSI needs values in both windows")
    edges = np.unique(np.quantile(ref, np.linspace(0, 1, bins + 1)[1:-1]))
    # Bin i holds values in (edge[i-1], edge[i]]; the last bin everything above the last edge.
    ref_counts = np.bincount(np.searchsorted(edges, ref, side="left"), minlength=edges.size + 1) + BIN_SMOOTHING
    cur_counts = np.bincount(np.searchsorted(edges, cur, side="left"), minlength=edges.size + 1) + BIN_SMOOTHING
    ref_share, cur_share = ref_counts / ref_counts.sum(), cur_counts / cur_counts.sum()
    return float(np.sum((cur_share - ref_share) * np.log(cur_share / ref_share)))


def ks_test(reference: Sequence[float], current: Sequence[float]) -> tuple[float, float]:
    """Two-sample Kolmogorov-Smirnov: (statistic, p-value)."""
    from scipy.stats import ks_2samp

    result = ks_2samp(np.asarray(reference, dtype=float), np.asarray(current, dtype=float))
    return float(result.statistic), float(result.pvalue)


# Per-request signals ------------------------------------------------------------------------

def _words(text: str | None) -> float:
    return float(len((text or "").split()))


def non_latin_share(text: str) -> float:
    """Share of the letters of a text that are not Latin script (0 for English, 1 for Russian or Chinese)."""
    letters = [ch for ch in text if ch.isalpha()]
    if not letters:
        return 0.0
    return sum(1 for ch in letters if not unicodedata.name(ch, "").startswith("LATIN")) / len(letters)


def script_of(text: str) -> str:
    """The script most letters of a text are written in (LATIN, CYRILLIC, CJK, ARABIC, ...)."""
    counts = Counter(unicodedata.name(ch, "UNKNOWN").split()[0] for ch in text if ch.isalpha())
    return counts.most_common(1)[0][0] if counts else "NONE"


def _no_keyword_hit(row: RequestRow) -> float | None:
    if row.sparse_scores is None:  # no sparse search ran
        return None
    return 1.0 if not row.sparse_scores or row.sparse_scores[0] <= 0 else 0.0


def _top5(row: RequestRow) -> float | None:
    return float(np.mean(row.dense_scores[:5])) if row.dense_scores else None


def _answered(row: RequestRow) -> bool:
    return row.error is None and not row.abstained


# name -> (kind, value of one request or None when the request does not have it)
ROW_SIGNALS: dict[str, tuple[Kind, Callable[[RequestRow], float | None]]] = {
    "query length (words)": ("input", lambda r: _words(r.question)),
    "non-Latin script share": ("input", lambda r: non_latin_share(r.question or "")),
    "no keyword hit (BM25 top score 0)": ("input", _no_keyword_hit),
    "top-1 retrieval score (dense cosine)": ("output", lambda r: r.dense_scores[0] if r.dense_scores else None),
    "top-5 retrieval score (dense cosine, mean)": ("output", _top5),
    "top rerank score": ("output", lambda r: r.rerank_top),
    "abstention": ("output", lambda r: 1.0 if r.abstained else 0.0),
    "answer length (words)": ("output", lambda r: _words(r.answer) if _answered(r) else None),
    "citations per answer": ("output", lambda r: float(len(r.sources)) if _answered(r) else None),
    "answer confidence": ("output", lambda r: r.confidence),
    "feedback (helpful = 1)": ("output", lambda r: None if r.feedback is None else (1.0 if r.feedback > 0 else 0.0)),
}
CENTROID_SIGNAL = "query embedding: cosine to reference centroid"


def component_signal(number: int) -> str:
    return f"query embedding: projection on reference PC{number}"


def embedding_signals(
    reference: np.ndarray, current: np.ndarray, components: int = 3,
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Cosine to the reference centroid and projections on the reference's first principal
    components, for the reference (each left out of what it is compared to) and the current rows.

    The reference's own values are computed out of sample (leave-one-out centroid; components
    fitted on the other folds, signs aligned), so they spread like new questions do: in-sample
    projections of a few hundred 384-d vectors overstate the variance along the top components.
    """
    ref = _unit(reference)
    cur = _unit(current)
    total = ref.sum(axis=0)
    others = total[None, :] - ref
    ref_cos = np.einsum("ij,ij->i", ref, others) / np.maximum(np.linalg.norm(others, axis=1), 1e-12)
    cur_cos = cur @ (total / max(float(np.linalg.norm(total)), 1e-12))
    out = {CENTROID_SIGNAL: (ref_cos, cur_cos)}
    k = min(components, ref.shape[0] - 1, ref.shape[1])
    if k <= 0:
        return out
    mean, axes = _principal_axes(ref, k)
    cur_proj = (cur - mean) @ axes.T
    ref_proj = np.empty((ref.shape[0], k))
    folds = np.arange(ref.shape[0]) % 5
    for fold in range(5):
        held = folds == fold
        if not held.any() or (~held).sum() <= k:
            ref_proj[held] = (ref[held] - mean) @ axes.T
            continue
        fold_mean, fold_axes = _principal_axes(ref[~held], k)
        signs = np.sign(np.einsum("ij,ij->i", fold_axes, axes))
        signs[signs == 0] = 1.0
        ref_proj[held] = (ref[held] - fold_mean) @ (fold_axes * signs[:, None]).T
    for i in range(k):
        out[component_signal(i + 1)] = (ref_proj[:, i], cur_proj[:, i])
    return out


def _unit(vectors: np.ndarray) -> np.ndarray:
    arr = np.asarray(vectors, dtype=np.float64)
    return arr / np.maximum(np.linalg.norm(arr, axis=1, keepdims=True), 1e-12)


def _principal_axes(vectors: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    mean = vectors.mean(axis=0)
    _, _, vt = np.linalg.svd(vectors - mean, full_matrices=False)
    return mean, vt[:k]


# Comparing windows --------------------------------------------------------------------------

def compare(
    reference: Sequence[float], current: Sequence[float], settings: DriftSettings, *, collection: str, signal: str,
    kind: Kind,
) -> DriftCheck:
    """One signal's PSI and KS test, or "not enough data" when a window is too small."""
    ref = [float(v) for v in reference]
    cur = [float(v) for v in current]
    check = DriftCheck(collection, signal, kind, "ok", len(ref), len(cur),
                       reference_mean=float(np.mean(ref)) if ref else None,
                       current_mean=float(np.mean(cur)) if cur else None)
    if len(ref) < settings.min_requests or len(cur) < settings.min_requests:
        check.detail = (f"not enough data: {len(ref)} reference and {len(cur)} current values, "
                        f"{settings.min_requests} needed in each")
        return check
    check.psi = psi(ref, cur, settings.bins)
    check.ks, check.p_value = ks_test(ref, cur)
    significant = check.p_value < settings.p_value
    if significant and check.psi > settings.psi_critical:
        check.level = "critical"
    elif significant and check.psi > settings.psi_warning:
        check.level = "warning"
    noise = "" if significant else f"; not significant (p >= {settings.p_value:g})"
    check.detail = (f"PSI {check.psi:.3f}, KS {check.ks:.3f} (p {check.p_value:.2g}); mean "
                    f"{check.reference_mean:.3g} -> {check.current_mean:.3g}{noise}")
    return check


def drift_checks(
    reference: Sequence[RequestRow], current: Sequence[RequestRow], settings: DriftSettings, collection: str,
) -> list[DriftCheck]:
    """Every signal of one collection, reference rows against current rows (failed requests left out)."""
    ref_rows = [r for r in reference if r.error is None]
    cur_rows = [r for r in current if r.error is None]
    checks = []
    ref_vectors = [r.query_vector for r in ref_rows if r.query_vector is not None]
    cur_vectors = [r.query_vector for r in cur_rows if r.query_vector is not None]
    dims = {v.shape[0] for v in (*ref_vectors, *cur_vectors)}
    names = [CENTROID_SIGNAL, *(component_signal(i + 1) for i in range(settings.components))]
    if len(dims) > 1:
        for name in names:
            check = DriftCheck(collection, name, "input", "ok", len(ref_vectors), len(cur_vectors))
            check.detail = "query embeddings of different sizes (the embedding model changed): re-index and start a new reference"
            checks.append(check)
    elif ref_vectors and cur_vectors and len(ref_vectors) >= settings.min_requests:
        values = embedding_signals(np.stack(ref_vectors), np.stack(cur_vectors), settings.components)
        for name in names:
            if name in values:
                ref_values, cur_values = values[name]
                checks.append(compare(ref_values, cur_values, settings, collection=collection, signal=name,
                                      kind="input"))
    else:
        for name in names:
            checks.append(compare([0.0] * len(ref_vectors), [0.0] * len(cur_vectors), settings,
                                  collection=collection, signal=name, kind="input"))
    for name, (kind, value) in ROW_SIGNALS.items():
        ref_values = [v for v in (value(r) for r in ref_rows) if v is not None]
        cur_values = [v for v in (value(r) for r in cur_rows) if v is not None]
        if name == "top rerank score" and not ref_values and not cur_values:
            continue  # no reranker runs: nothing to watch
        checks.append(compare(ref_values, cur_values, settings, collection=collection, signal=name, kind=kind))
    return checks


_MARK_NAMES = {"reindex": "re-index", "reference": "reference mark", "evaluation": "evaluation"}


def select_windows(
    log: RequestLog, collection: str, settings: DriftSettings, *, source: str | None = None,
    current_since: float | None = None, last_evaluation: float | None = None,
) -> tuple[list[RequestRow], list[RequestRow], DriftWindows]:
    """The reference and current requests of one collection.

    Reference: the fixed period when one is set; else the first `reference_requests` answered
    requests after the collection's last re-index (or, with `reference_after="evaluation"`, after
    `last_evaluation`, the last evaluation run, when there is one), or after a later reference mark;
    after its first request when there is none of these. Current: the last `current_requests` answered requests after
    the reference, from `current_since` on (the monitored window).
    """
    if settings.reference_from is not None:
        reference = [r for r in log.rows(since=settings.reference_from, until=settings.reference_until,
                                         collection=collection, source=source) if r.error is None]
        basis = "fixed reference period"
    else:
        marks = [(e.ts, e.kind) for e in log.events(collection=collection) if e.kind in ("reindex", "reference")]
        if settings.reference_after == "evaluation" and last_evaluation is not None:
            # After the last evaluation instead of the last re-index (no evaluation yet: the re-index).
            marks = sorted([*(m for m in marks if m[1] == "reference"), (last_evaluation, "evaluation")])
        start = marks[-1][0] if marks else None
        basis = (f"first {settings.reference_requests} requests after the last {_MARK_NAMES[marks[-1][1]]}"
                 if marks else f"first {settings.reference_requests} requests logged")
        reference = [r for r in log.first_rows(start, settings.reference_requests * 2, collection=collection,
                                               source=source) if r.error is None][: settings.reference_requests]
    windows = DriftWindows(collection, basis, n_reference=len(reference))
    if reference:
        windows.reference_start, windows.reference_end = reference[0].ts, reference[-1].ts
    after = reference[-1].ts if reference else None
    since = max(v for v in (after, current_since) if v is not None) if (after or current_since) else None
    # The latest requests only (twice N, room for failed ones): a busy day holds far more than N.
    rows = log.rows(since=since, collection=collection, source=source, limit=settings.current_requests * 2)
    reference_ids = {r.id for r in reference}
    current = [r for r in rows if r.error is None and r.id not in reference_ids][-settings.current_requests:]
    windows.n_current = len(current)
    if current:
        windows.current_start, windows.current_end = current[0].ts, current[-1].ts
    if settings.reference_from is None and len(reference) < settings.reference_requests:
        windows.note = (f"the reference is still filling: {len(reference)} of {settings.reference_requests} "
                        "requests; the current window starts after it")
    return reference, current, windows


def collection_drift(
    log: RequestLog, collection: str, settings: DriftSettings, *, source: str | None = None,
    current_since: float | None = None, last_evaluation: float | None = None,
) -> CollectionDrift:
    """Windows and checks of one collection (`last_evaluation`: when the last evaluation ran)."""
    reference, current, windows = select_windows(log, collection, settings, source=source,
                                                 current_since=current_since, last_evaluation=last_evaluation)
    return CollectionDrift(windows, drift_checks(reference, current, settings, collection))
