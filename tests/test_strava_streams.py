"""Strava streams JSON -> canonical columns (pure conversion, no network)."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
from fake_strava import make_streams

from evenstride.connectors.strava.streams import ALL_COLUMNS, cadence_spm, frame_from_streams
from evenstride.metrics import columns as C

START = dt.datetime(2026, 3, 1, 7, 30, tzinfo=dt.UTC)


def test_columns_units_and_timestamps() -> None:
    streams = make_streams(120, cadence=86)
    df, notes = frame_from_streams(streams, START, "Run")
    assert list(df.columns) == list(ALL_COLUMNS)
    assert len(df) == 121
    assert df[C.TIMESTAMP].iloc[0] == pd.Timestamp(START)
    assert df[C.TIMESTAMP].iloc[-1] == pd.Timestamp(START) + pd.Timedelta(seconds=120)
    assert str(df[C.TIMESTAMP].dt.tz) == "UTC"
    assert df[C.DISTANCE].iloc[-1] == streams["distance"]["data"][-1]
    assert df[C.SPEED].iloc[5] == streams["velocity_smooth"]["data"][5]
    assert df[C.HEART_RATE].iloc[5] == streams["heartrate"]["data"][5]
    assert df[C.ALTITUDE].iloc[5] == 12.0 and df[C.GRADE].iloc[5] == 0.0
    assert df[C.MOVING].all()
    # per-leg RPM -> steps per minute
    assert df[C.CADENCE].iloc[7] == 2 * streams["cadence"]["data"][7]
    assert notes["cadence_scale"] == "doubled"
    for col in (C.GCT, C.GCT_BALANCE, C.VERTICAL_OSCILLATION, C.STEP_LENGTH):
        assert df[col].isna().all()


def test_already_steps_per_minute_is_not_doubled() -> None:
    df, notes = frame_from_streams(make_streams(60, cadence=172), START, "Run")
    assert notes["cadence_scale"] == "already_spm"
    assert 170 <= df[C.CADENCE].median() <= 174


def test_cycling_cadence_is_left_alone() -> None:
    values, how = cadence_spm([90, 91, 0], "Ride")
    assert how == "as_is" and list(values) == [90, 91, 0]
    values, how = cadence_spm([80, 0, None], "TrailRun")
    assert how == "doubled" and values[0] == 160 and values[1] == 0 and np.isnan(values[2])


def test_missing_streams_give_nan_and_list_form_works() -> None:
    streams = make_streams(30, cadence=None, heartrate=False)
    as_list = [{"type": k, **v} for k, v in streams.items()]
    df, notes = frame_from_streams(as_list, START, "Run")
    assert len(df) == 31 and df[C.CADENCE].isna().all() and df[C.HEART_RATE].isna().all()
    assert notes["cadence_scale"] is None


def test_no_time_stream_gives_no_records() -> None:
    df, notes = frame_from_streams({}, START, "Run")
    assert df.empty and notes["streams"] == []
    df, _ = frame_from_streams({"cadence": {"data": [80, 81]}}, START, "Run")
    assert df.empty


def test_short_streams_are_padded() -> None:
    streams = make_streams(10)
    streams["cadence"]["data"] = streams["cadence"]["data"][:5]
    df, _ = frame_from_streams(streams, START, "Run")
    assert len(df) == 11 and df[C.CADENCE].iloc[4] > 0 and np.isnan(df[C.CADENCE].iloc[8])
