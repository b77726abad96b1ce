"""Canonical per-record column names of a run, whatever its source (FIT file or Strava streams).

Every metric function takes a DataFrame with (a subset of) these columns. Missing values are NaN;
running-dynamics values that the device wrote as 0 or 0xFFFF are already NaN here.
"""

TIMESTAMP = "timestamp"  # datetime64[ns, UTC]
DISTANCE = "distance_m"  # cumulative metres
SPEED = "speed_mps"  # enhanced_speed, else speed
HEART_RATE = "heart_rate_bpm"
ALTITUDE = "altitude_m"  # enhanced_altitude, else altitude
POWER = "power_w"
CADENCE = "cadence_spm"  # steps per minute = 2 * (cadence + fractional_cadence)
GCT = "gct_ms"  # ground contact time (stance_time)
GCT_BALANCE = "gct_balance_pct"  # % of contact time on the LEFT foot (stance_time_balance)
VERTICAL_OSCILLATION = "vertical_oscillation_mm"
VERTICAL_RATIO = "vertical_ratio_pct"
STEP_LENGTH = "step_length_mm"
GRADE = "grade_pct"  # Strava grade_smooth; derived from altitude/distance for FIT
MOVING = "moving"  # bool, Strava `moving` stream; absent for FIT

RUN_COLUMNS = (
    TIMESTAMP,
    DISTANCE,
    SPEED,
    HEART_RATE,
    ALTITUDE,
    POWER,
    CADENCE,
    GCT,
    GCT_BALANCE,
    VERTICAL_OSCILLATION,
    VERTICAL_RATIO,
    STEP_LENGTH,
)

RESOLUTION = {GCT_BALANCE: 100.0, SPEED: 1000.0, CADENCE: 64.0, GCT: 10.0}
"""Steps per unit in which FIT devices record these columns (0.01 %, 1 mm/s, 1/128 cycle = 1/64
step, 0.1 ms). Only a hint for sorting them fast (summary.Ranked): values off this grid are
detected and sorted the ordinary way, with the same result."""
