"""A/B comparison: each variant against the control on the requests of a window.

Rates (errors, abstention, grounded answers, helpful feedback) with Wilson 95 % intervals and a
two-proportion z-test; latency percentiles with bootstrap 95 % intervals and the Mann-Whitney U
test. The verdict for a variant: "not enough data" until both arms have the requests needed to see
a difference of `min_effect` in a rate (with the number still needed), then "promote" when it is
significantly better somewhere and worse nowhere, else "keep" (the control).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np

from monitoring.request_log import RequestRow

CONTROL = "control"  # the name core/variants.py gives requests no variant gets
Z_95 = 1.959964
Z_POWER_80 = 0.841621
Verdict = Literal["promote", "keep", "not enough data"]


@dataclass(frozen=True)
class ABSettings:
    """How sure a verdict must be."""

    alpha: float = 0.01  # per comparison (five of them: about 0.05 for the family)
    min_effect: float = 0.05  # smallest rate difference to be able to see
    min_requests: int = 100  # per arm, whatever the rates


@dataclass
class Rate:
    """A share with its Wilson 95 % interval."""

    hits: int
    n: int

    @property
    def value(self) -> float | None:
        return self.hits / self.n if self.n else None

    @property
    def interval(self) -> tuple[float, float] | None:
        if not self.n:
            return None
        p, n = self.hits / self.n, self.n
        centre = (p + Z_95**2 / (2 * n)) / (1 + Z_95**2 / n)
        half = Z_95 * math.sqrt(p * (1 - p) / n + Z_95**2 / (4 * n * n)) / (1 + Z_95**2 / n)
        return max(0.0, centre - half), min(1.0, centre + half)

    def to_dict(self) -> dict[str, Any]:
        return {"hits": self.hits, "n": self.n, "value": self.value, "interval": self.interval}


@dataclass
class ArmStats:
    """One arm's figures."""

    name: str
    requests: int
    errors: Rate
    abstention: Rate
    grounded: Rate
    helpful: Rate  # among requests with feedback
    feedback_rate: Rate  # requests with feedback among answered ones
    latency_ms: dict[str, float] = field(default_factory=dict)
    latency_interval_ms: dict[str, tuple[float, float]] = field(default_factory=dict)
    latencies: list[float] = field(default_factory=list, repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "requests": self.requests,
                **{k: getattr(self, k).to_dict() for k in ("errors", "abstention", "grounded", "helpful",
                                                          "feedback_rate")},
                "latency_ms": self.latency_ms, "latency_interval_ms": self.latency_interval_ms}


@dataclass
class Comparison:
    """One metric, variant against control."""

    metric: str
    test: str
    control: float | None
    variant: float | None
    p_value: float | None
    significant: bool
    better: bool | None  # None when not significant, or not tested


@dataclass
class VariantVerdict:
    """What to do with one variant."""

    name: str
    verdict: Verdict
    reason: str
    needed: int = 0  # more requests per arm before a verdict
    comparisons: list[Comparison] = field(default_factory=list)


@dataclass
class ABReport:
    """The arms of the window and a verdict for each variant."""

    arms: list[ArmStats]
    verdicts: list[VariantVerdict]

    def to_dict(self) -> dict[str, Any]:
        return {"arms": [a.to_dict() for a in self.arms], "verdicts": [asdict(v) for v in self.verdicts]}


def arm_stats(name: str, rows: Sequence[RequestRow], seed: int = 0) -> ArmStats:
    """The figures of one arm's requests."""
    ok = [r for r in rows if r.error is None]
    answered = [r for r in ok if not r.abstained]
    rated = [r for r in ok if r.feedback is not None]
    latencies = [r.timings["total"] for r in ok if "total" in r.timings]
    stats = ArmStats(
        name, len(rows),
        errors=Rate(len(rows) - len(ok), len(rows)),
        abstention=Rate(sum(r.abstained for r in ok), len(ok)),
        grounded=Rate(sum(r.grounded for r in answered), len(answered)),
        helpful=Rate(sum(1 for r in rated if r.feedback and r.feedback > 0), len(rated)),
        feedback_rate=Rate(len(rated), len(ok)),
        latencies=latencies,
    )
    if latencies:
        arr = np.asarray(latencies, dtype=float)
        rng = np.random.default_rng(seed)
        samples = rng.choice(arr, size=(500, arr.size), replace=True)
        for q in (50, 95, 99):
            stats.latency_ms[f"p{q}"] = float(np.percentile(arr, q))
            boot = np.percentile(samples, q, axis=1)
            stats.latency_interval_ms[f"p{q}"] = (float(np.percentile(boot, 2.5)), float(np.percentile(boot, 97.5)))
    return stats


def two_proportion_z(a: Rate, b: Rate) -> float | None:
    """Two-sided p-value of the two-proportion z-test (pooled); None without data or variance."""
    if not a.n or not b.n:
        return None
    pooled = (a.hits + b.hits) / (a.n + b.n)
    se = math.sqrt(pooled * (1 - pooled) * (1 / a.n + 1 / b.n))
    if se == 0:
        return 1.0
    z = (b.hits / b.n - a.hits / a.n) / se
    return math.erfc(abs(z) / math.sqrt(2))


def mann_whitney(a: Sequence[float], b: Sequence[float]) -> float | None:
    """Two-sided p-value of the Mann-Whitney U test; None without data."""
    if not a or not b:
        return None
    from scipy.stats import mannwhitneyu

    return float(mannwhitneyu(a, b, alternative="two-sided").pvalue)


def needed_per_arm(control_rate: float | None, settings: ABSettings) -> int:
    """Requests per arm for the z-test at `alpha` (two-sided) to see a rate difference of `min_effect`
    with power 0.8, around the control's rate (kept within 5-50 %)."""
    from scipy.stats import norm

    p = min(max(control_rate if control_rate is not None else 0.1, 0.05), 0.5)
    z_alpha = float(norm.ppf(1 - settings.alpha / 2))
    n = (z_alpha + Z_POWER_80) ** 2 * 2 * p * (1 - p) / settings.min_effect**2
    return max(settings.min_requests, math.ceil(n))


def compare_arms(control: ArmStats, variant: ArmStats, settings: ABSettings) -> list[Comparison]:
    """Errors, abstention, groundedness, helpful feedback (z-test) and latency (Mann-Whitney U)."""
    comparisons = []
    for metric, higher_is_better in (("errors", False), ("abstention", False), ("grounded", True),
                                     ("helpful", True)):
        a, b = getattr(control, metric), getattr(variant, metric)
        p = two_proportion_z(a, b)
        significant = p is not None and p < settings.alpha
        better = None
        if significant and a.value is not None and b.value is not None:
            better = (b.value > a.value) == higher_is_better
        comparisons.append(Comparison(metric, "two-proportion z", a.value, b.value, p, significant, better))
    p = mann_whitney(control.latencies, variant.latencies)
    significant = p is not None and p < settings.alpha
    control_median, variant_median = control.latency_ms.get("p50"), variant.latency_ms.get("p50")
    better = None
    if significant and control_median is not None and variant_median is not None:
        better = variant_median < control_median
    comparisons.append(Comparison("latency_ms", "Mann-Whitney U", control_median, variant_median, p, significant,
                                  better))
    return comparisons


def ab_report(rows: Sequence[RequestRow], settings: ABSettings | None = None) -> ABReport | None:
    """The comparison of the window's variants, or None when no request carries a variant."""
    settings = settings or ABSettings()
    arms_rows: dict[str, list[RequestRow]] = {}
    for row in rows:
        if row.variant:
            arms_rows.setdefault(row.variant, []).append(row)
    if not arms_rows:
        return None
    names = sorted(arms_rows, key=lambda n: (n != CONTROL, n))
    arms = [arm_stats(n, arms_rows[n]) for n in names]
    control = arms[0] if names[0] == CONTROL else arm_stats(CONTROL, [])
    verdicts = []
    for arm in arms:
        if arm.name == CONTROL:
            continue
        comparisons = compare_arms(control, arm, settings)
        needed = needed_per_arm(control.abstention.value, settings)
        short = needed - min(control.requests, arm.requests)
        if short > 0:
            verdicts.append(VariantVerdict(
                arm.name, "not enough data",
                f"{short} more requests per arm needed ({needed} each to see a {settings.min_effect:.0%} difference "
                f"in a rate; control {control.requests}, {arm.name} {arm.requests})", short, comparisons))
            continue
        worse = [c for c in comparisons if c.significant and c.better is False]
        better = [c for c in comparisons if c.significant and c.better]
        if worse:
            verdicts.append(VariantVerdict(arm.name, "keep", "worse: " + _list(worse), 0, comparisons))
        elif better:
            verdicts.append(VariantVerdict(arm.name, "promote", "better: " + _list(better) + "; worse nowhere", 0,
                                           comparisons))
        else:
            verdicts.append(VariantVerdict(arm.name, "keep", "no significant difference "
                                           f"(alpha {settings.alpha:g} per metric)", 0, comparisons))
    return ABReport(arms, verdicts)


def _list(comparisons: Sequence[Comparison]) -> str:
    return ", ".join(f"{c.metric} {_fmt(c.control)} -> {_fmt(c.variant)} (p {c.p_value:.2g})" for c in comparisons)


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3g}"
