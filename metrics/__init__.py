"""Pure metric functions: FIT decoding, cleaning, per-run summaries, baselines, trends."""

from evenstride.metrics.baseline import Baseline, compute_baseline, mdc, typical_error
from evenstride.metrics.clean import CleanSettings, clean_samples
from evenstride.metrics.summary import (
    CadenceSpeedFit,
    PaceBands,
    RunSummary,
    fit_cadence_speed,
    summaries_frame,
    summarise_fit_run,
    summarise_run,
)
from evenstride.metrics.trend import (
    Assessment,
    TrendAssessment,
    TrendSettings,
    assess_athlete,
    assess_cadence_trend,
    assess_trend,
)
from evenstride.metrics.zones import zone_of_balance, zone_of_d

__all__ = [
    "Assessment",
    "Baseline",
    "CadenceSpeedFit",
    "CleanSettings",
    "PaceBands",
    "RunSummary",
    "TrendAssessment",
    "TrendSettings",
    "assess_athlete",
    "assess_cadence_trend",
    "assess_trend",
    "clean_samples",
    "compute_baseline",
    "fit_cadence_speed",
    "mdc",
    "summarise_fit_run",
    "summarise_run",
    "summaries_frame",
    "typical_error",
    "zone_of_balance",
    "zone_of_d",
]
