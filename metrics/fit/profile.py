"""The slice of the FIT profile the reader needs, taken from fitparse's profile tables.

fitparse (named by the design card) ships the Garmin FIT profile as Python data: message and field
names, scales, offsets, enum value names, sub-fields and components. We use those tables at run
time instead of hand-copying them, and use fitparse's decoder (and garmin-fit-sdk's) as test
oracles.
"""

from __future__ import annotations

from fitparse.profile import FIELD_TYPES, MESSAGE_TYPES

RECORD = 20
LAP = 19
SESSION = 18
FILE_ID = 0
SPORT = 12
EVENT = 21
DEVICE_INFO = 23
ACTIVITY = 34
FIELD_DESCRIPTION = 206
DEVELOPER_DATA_ID = 207
TIMESTAMP_FIELD = 253

# Non-record messages decoded into dicts (few per file, so plain struct is fast enough).
DICT_MESSAGES = {
    FILE_ID: "file_id",
    SPORT: "sport",
    SESSION: "session",
    LAP: "lap",
    EVENT: "event",
    DEVICE_INFO: "device_info",
    ACTIVITY: "activity",
    FIELD_DESCRIPTION: "field_description",
    DEVELOPER_DATA_ID: "developer_data_id",
}

# Record fields returned as columns (FIT profile names; values scaled as in the profile).
RECORD_COLUMNS = (
    "timestamp",
    "position_lat",
    "position_long",
    "distance",
    "speed",
    "enhanced_speed",
    "altitude",
    "enhanced_altitude",
    "heart_rate",
    "cadence",
    "fractional_cadence",
    "power",
    "stance_time",
    "stance_time_balance",
    "stance_time_percent",
    "vertical_oscillation",
    "vertical_ratio",
    "step_length",
    "temperature",
    "grade",
)


def record_fields() -> dict[int, tuple[str, float | None, float | None]]:
    """Record field number -> (name, scale, offset) for the columns we return."""
    wanted = set(RECORD_COLUMNS)
    out = {}
    for num, f in MESSAGE_TYPES[RECORD].fields.items():
        if f.name in wanted:
            out[num] = (f.name, f.scale, f.offset)
    return out


RECORD_FIELDS = record_fields()
SPEED_NUM, ENHANCED_SPEED_NUM = 6, 73
ALTITUDE_NUM, ENHANCED_ALTITUDE_NUM = 2, 78
DISTANCE_NUM = 5
COMPRESSED_SPEED_DISTANCE_NUM = 8

__all__ = ["FIELD_TYPES", "MESSAGE_TYPES"]
