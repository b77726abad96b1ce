"""`evenstride nightly` syncs Strava for athletes logged in there (fake Strava, real stravalib)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import click
import pytest
from click.testing import CliRunner
from fake_strava import (
    FakeStrava,
    login,
    strava_fake_fixture,  # noqa: F401 - the `fake` fixture
    strava_keyring_fixture,  # noqa: F401 - the `strava_keyring` fixture
)

from evenstride.cli.nightly_cmd import nightly_cmd
from evenstride.store import open_store

pytestmark = pytest.mark.usefixtures("strava_keyring")


@click.group()
@click.option("--home", type=click.Path(path_type=Path), required=True)
@click.pass_context
def cli(ctx: click.Context, home: Path) -> None:
    ctx.obj = {"home": home}


cli.add_command(nightly_cmd)


def test_strava_only_athlete_is_synced_and_not_pushed(fake: FakeStrava, tmp_path: Path) -> None:
    home = tmp_path / "home"
    login(fake, athlete="sam")
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    for i in range(3):
        fake.add_run(500 + i, now - dt.timedelta(days=6 - i), seconds=1800, distance=5400.0)
    with open_store(home) as store:
        store.ensure_athlete("sam")  # no `sources`: the stored Strava login decides
        store.update_athlete_profile("zoe", {"sources": ["strava"]})  # listed, never logged in

    result = CliRunner().invoke(cli, ["--home", str(home), "nightly"], catch_exceptions=False)

    assert result.exit_code == 1, result.output
    sam, zoe = sorted(result.stdout.splitlines())
    assert sam.startswith("sam: sync strava +3 runs; trend ")
    assert "push skipped (no Garmin source)" in sam
    assert zoe.startswith("zoe: sync strava FAILED (not logged in to Strava")
    with open_store(home) as store:
        assert len(store.list_activities("sam", source="strava")) == 3
        assert store.get_sync_state("sam", "strava", "synced_at")
