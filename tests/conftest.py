"""Shared fixtures: where the FIT sample files are.

* `../shared/fit-samples/` (next to the repository) holds 53 real device files, some of them
  unlicensed, so they are never committed; tests that need them skip cleanly when it is absent.
* `fixtures/` (in the repository) holds our synthetic files and MIT/BSD sample copies.

Test modules import `oracles` (tests/oracles.py) directly: pytest's default "prepend" import mode
puts this folder (tests/ has no __init__.py) on sys.path.
"""

from __future__ import annotations

from pathlib import Path

import oracles
import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_SAMPLES = REPO_ROOT.parent / "shared" / "fit-samples"
FIXTURES = REPO_ROOT / "fixtures"
SAMPLE_GROUPS = ("running_rd", "running_gct_only", "running_no_rd", "non_running", "broken")
RUNNING_GROUPS = ("running_rd", "running_gct_only", "running_no_rd")


def shared_sample_files(groups: tuple[str, ...] = SAMPLE_GROUPS) -> list[Path]:
    """The .fit files of ../shared/fit-samples/<group>/ (empty when the folder is absent)."""
    return sorted(p for g in groups for p in (SHARED_SAMPLES / g).glob("*.fit"))


def fixture_files() -> list[Path]:
    """Every .fit file under the project's own fixtures/ folder."""
    return sorted(FIXTURES.rglob("*.fit")) if FIXTURES.is_dir() else []


def sample_id(path: Path) -> str:
    """A short, stable test id: 'running_rd/fr630_lth.fit' or 'fixtures/synthetic/x.fit'."""
    path = Path(path)
    if path.is_relative_to(SHARED_SAMPLES):
        return path.relative_to(SHARED_SAMPLES).as_posix()
    if path.is_relative_to(REPO_ROOT):
        return path.relative_to(REPO_ROOT).as_posix()
    return path.name


def pytest_configure(config: pytest.Config) -> None:
    # Persist decoded oracle results between runs (keyed by file content + library version + the
    # oracle code), in pytest's own cache folder.
    cache = getattr(config, "cache", None)  # absent with -p no:cacheprovider
    if cache is not None:
        oracles.CACHE_DIR = cache.mkdir("evenstride-fit-oracles")


@pytest.fixture(scope="session")
def shared_samples() -> Path:
    """../shared/fit-samples; the test is skipped when that folder is not there."""
    if not SHARED_SAMPLES.is_dir():
        pytest.skip(f"shared FIT samples not present at {SHARED_SAMPLES}")
    return SHARED_SAMPLES


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    """The project's own fixtures/ folder (synthetic/ and samples/)."""
    return FIXTURES
