"""What monitoring compares against: alert thresholds and drift windows, read from the settings."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

from core.settings import Settings
from monitoring.ab import ABSettings
from monitoring.drift import DriftSettings

Pair = tuple[float, float]  # (warning, critical)

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


@dataclass(frozen=True)
class MonitorConfig:
    """Alert thresholds as (warning, critical) pairs, and the drift settings."""

    retrieval_p95_ms: Pair = (100.0, 200.0)
    llm_answer_p95_ms: Pair = (5000.0, 15000.0)
    error_rate: Pair = (0.001, 0.01)
    psi: Pair = (0.1, 0.2)
    quality_drop: Pair = (0.02, 0.05)
    evaluation_every_days: float = 7.0
    new_chunks: int = 1000
    drift: DriftSettings = field(default_factory=DriftSettings)
    ab: ABSettings = field(default_factory=ABSettings)

    @classmethod
    def from_settings(cls, settings: Settings) -> MonitorConfig:
        """The thresholds and windows the settings name (`RAG_ALERT_*`, `RAG_DRIFT_*`)."""
        return cls(
            retrieval_p95_ms=settings.alert_retrieval_p95_ms,
            llm_answer_p95_ms=settings.alert_llm_answer_p95_ms,
            error_rate=settings.alert_error_rate,
            psi=settings.alert_psi,
            quality_drop=settings.alert_quality_drop,
            evaluation_every_days=settings.alert_evaluation_every_days,
            new_chunks=settings.alert_new_chunks,
            drift=DriftSettings(
                reference_requests=settings.drift_reference_requests,
                current_requests=settings.drift_current_requests,
                min_requests=settings.drift_min_requests,
                bins=settings.drift_bins,
                psi_warning=settings.alert_psi[0],
                psi_critical=settings.alert_psi[1],
                p_value=settings.drift_p_value,
                components=settings.drift_components,
                reference_from=parse_time(settings.drift_reference_from),
                reference_until=parse_time(settings.drift_reference_until),
                reference_after=settings.drift_reference_after,
            ),
            ab=ABSettings(alpha=settings.ab_alpha, min_effect=settings.ab_min_effect),
        )


def parse_time(value: str | None) -> float | None:
    """An ISO date or date-time (UTC unless it names its zone) as a timestamp; None stays None."""
    if value is None or not value.strip():
        return None
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError as exc:
        raise ValueError(f"{value!r} is not an ISO date or time (e.g. 2025-01-31 or 2025-01-31T08:00)") from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def parse_window(window: str | None, now: float | None = None) -> float | None:
    """The start of a window such as 30m, 12h, 1d, 2w ("all" or None: no start)."""
    if window is None or window.strip().lower() in ("", "all"):
        return None
    match = _DURATION.match(window.lower())
    if not match:
        raise ValueError(f"Window {window!r}: use a number and a unit s, m, h, d or w (e.g. 1d, 12h), or all.")
    seconds = float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    return (time.time() if now is None else now) - seconds
