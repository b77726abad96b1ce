"""The unattended nightly job: sync -> summaries -> trend -> plan -> push, for every athlete.

Why plain functions here (and only click wiring in cli/nightly_cmd.py): cron, systemd and tests
drive the same code, and each piece (the lock, the log, one athlete's loop) is tested alone.

* **One athlete never stops the others.** Every step of every athlete runs under its own
  ``try``: an expired token, a 429, a bad file or any exception becomes a failed step in that
  athlete's summary line, and the loop goes on. A failed sync does not skip the plan (it is
  made from what is stored); it skips the push when Garmin refused the login or rate-limited
  us, since pushing would hit the same wall.
* **One run at a time.** `NightlyLock` is an exclusive ``fcntl.flock`` on ``<home>/nightly.lock``
  (holding pid, host and start time for the message a second run prints). The kernel drops a
  flock when its process dies, so a lock file left by a killed run is stale by definition: the
  next run takes it and says so. Where flock is unsupported (some network file systems) the
  lock falls back to ``O_CREAT|O_EXCL`` and clears a file whose pid is dead on this host.
* **Logs** go to ``<home>/logs/nightly.log`` (rotated, 0600). Nothing logs secrets on purpose;
  `RedactingFilter` masks token-looking text anyway, as a second line of defence.

Exit codes (`run_nightly`, `evenstride nightly`): 0 every athlete completed, 1 some athletes
failed (the others completed), 2 configuration error (no keyring backend, unknown athlete,
bad option), 6 local storage problem, 75 another nightly run holds the lock (EX_TEMPFAIL: try
later), 130 interrupted.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import fcntl
import json
import logging
import logging.handlers
import os
import re
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evenstride.cli import exitcodes

EXIT_OK = exitcodes.OK
EXIT_SOME_FAILED = exitcodes.SOME_FAILED
EXIT_CONFIG = exitcodes.USAGE
EXIT_STORAGE = exitcodes.STORAGE
EXIT_LOCKED = exitcodes.LOCKED  # sysexits EX_TEMPFAIL: "try again later", not a failure of this run

LOCK_NAME = "nightly.lock"
LOG_DIR = "logs"
LOG_NAME = "nightly.log"
LOG_MAX_BYTES = 1_000_000
LOG_BACKUPS = 5
SYNCED_AT_KEY = "synced_at"  # sync state (athlete, source, "synced_at"): last successful sync
NIGHTLY_SOURCE = "nightly"  # sync state (athlete, "nightly", finished_at|status)
SOURCES = ("garmin", "strava")

log = logging.getLogger("evenstride.nightly")


# --------------------------------------------------------------------------- the lock


class LockHeldError(Exception):
    """Another nightly run holds the lock; `holder` is what it wrote (pid, host, started)."""

    def __init__(self, path: Path, holder: dict[str, Any] | None) -> None:
        self.path, self.holder = path, holder
        if holder:
            who = (
                f"pid {holder.get('pid')} on {holder.get('host')}, started {holder.get('started')}"
            )
        else:
            who = "a process that has not written its details yet"
        super().__init__(
            f"another nightly run is in progress ({who}); lock file {path}. "
            "Nothing was done; the running job will finish its work."
        )


def pid_alive(pid: int) -> bool:
    """True when a process with this pid exists on this host (zombies count as alive)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _parse_holder(data: bytes) -> dict[str, Any] | None:
    try:
        holder = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return {"pid": None, "host": None, "started": None} if data.strip() else None
    return holder if isinstance(holder, dict) else None


def _read_fd(fd: int) -> bytes:
    chunks = []
    offset = 0
    while chunk := os.pread(fd, 4096, offset):
        chunks.append(chunk)
        offset += len(chunk)
    return b"".join(chunks)


class NightlyLock:
    """Exclusive, self-clearing lock file under --home (see the module docstring)."""

    def __init__(self, home: Path) -> None:
        self.path = Path(home) / LOCK_NAME
        self.fd: int | None = None
        self.mode: str | None = None

    def info(self) -> dict[str, Any]:
        return {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        }

    def _write(self, fd: int) -> None:
        data = (json.dumps(self.info()) + "\n").encode()
        os.ftruncate(fd, 0)
        os.pwrite(fd, data, 0)
        os.fsync(fd)

    def acquire(self) -> dict[str, Any] | None:
        """Take the lock; returns the stale holder it replaced (None if the file was clean).

        Raises LockHeldError when a live run holds it.
        """
        for _ in range(5):
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _parse_holder(_read_fd(fd))
                os.close(fd)
                raise LockHeldError(self.path, holder) from None
            except OSError as exc:  # ENOLCK/EOPNOTSUPP: no flock on this file system
                os.close(fd)
                if exc.errno not in (errno.ENOLCK, errno.EOPNOTSUPP, errno.EINVAL):
                    raise
                return self._acquire_exclusive()
            try:  # a releasing run may have unlinked the file between our open and flock
                same = os.path.samestat(os.fstat(fd), os.stat(self.path))
            except FileNotFoundError:
                same = False
            if not same:
                os.close(fd)
                continue
            stale = _parse_holder(_read_fd(fd))
            self._write(fd)
            self.fd, self.mode = fd, "flock"
            return stale
        raise LockHeldError(self.path, None)

    def _acquire_exclusive(self) -> dict[str, Any] | None:
        """Fallback without flock: O_EXCL creation; a dead pid on this host is stale."""
        stale = None
        for _ in range(3):
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                try:
                    holder = _parse_holder(self.path.read_bytes())
                except FileNotFoundError:
                    continue
                here = holder is not None and holder.get("host") == socket.gethostname()
                pid = holder.get("pid") if holder else None
                if here and isinstance(pid, int) and not pid_alive(pid):
                    with contextlib.suppress(FileNotFoundError):
                        self.path.unlink()
                    stale = holder
                    continue
                raise LockHeldError(self.path, holder) from None
            self._write(fd)
            self.fd, self.mode = fd, "exclusive"
            return stale
        raise LockHeldError(self.path, None)

    def release(self) -> None:
        """Remove the file (while still holding the flock) and let go."""
        if self.fd is None:
            return
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        os.close(self.fd)
        self.fd = None

    def __enter__(self) -> NightlyLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


# --------------------------------------------------------------------------- logging

_REDACTED = "[REDACTED]"
_SECRET_WORDS = (
    r"(?:access|refresh|id|di|di_refresh|oauth|oauth2|auth|session|csrf|bearer)?[_-]?token"
    r"|password|passwd|secret|client_secret|api[_-]?key|authorization|cookie"
)
_REDACTIONS: tuple[tuple[re.Pattern[str], str], ...] = (
    # Authorization: Bearer xyz / OAuth xyz
    (re.compile(r"(?i)\b(bearer|oauth)\s+(?!\[REDACTED)[A-Za-z0-9._~+/=-]{6,}"), r"\1 " + _REDACTED),
    # "refresh_token": "xyz" / refresh_token=xyz / password: xyz / ?code=xyz
    (
        re.compile(
            rf"(?i)([\"']?\b(?:{_SECRET_WORDS})\b[\"']?\s*[:=]\s*[\"']?)(?!\[REDACTED)([^\"'\s,&;)\]}}]{{4,}})"
        ),
        r"\1" + _REDACTED,
    ),
    # OAuth authorization codes in URLs
    (re.compile(r"([?&]code=)(?!\[REDACTED)[^&\s\"']+"), r"\1" + _REDACTED),
    # JWTs
    (re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*"), _REDACTED),
    # Garmin service tickets
    (re.compile(r"\bST-[0-9A-Za-z-]{6,}"), _REDACTED),
    # long opaque strings mixing upper case, lower case and digits (hex digests are spared)
    (
        re.compile(r"\b(?=[A-Za-z0-9_\-]*[a-z])(?=[A-Za-z0-9_\-]*[A-Z])(?=[A-Za-z0-9_\-]*\d)"
                   r"[A-Za-z0-9_\-]{24,}\b"),
        _REDACTED,
    ),
)  # fmt: skip


def redact(text: str) -> str:
    """Mask anything that looks like a credential (second line of defence: we log none)."""
    for pattern, replacement in _REDACTIONS:
        text = pattern.sub(replacement, text)
    return text


class RedactingFilter(logging.Filter):
    """A handler filter: the record's message (and traceback) with secrets masked."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact(record.getMessage())
        record.args = None
        if record.exc_info:
            text = logging.Formatter().formatException(record.exc_info)
            record.exc_text = redact(text)
            record.exc_info = None
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True


def _private_opener(path: str, flags: int) -> int:
    return os.open(path, flags, 0o600)


class PrivateRotatingFileHandler(logging.handlers.RotatingFileHandler):
    """RotatingFileHandler whose files are created 0600 (rotation renames keep the mode)."""

    def _open(self) -> Any:
        stream = open(  # noqa: SIM115 - the handler owns and closes the stream
            self.baseFilename,
            self.mode,
            encoding=self.encoding,
            errors=self.errors,
            opener=_private_opener,
        )
        os.chmod(self.baseFilename, 0o600)
        return stream


def log_path(home: Path) -> Path:
    return Path(home) / LOG_DIR / LOG_NAME


def setup_logging(home: Path, level: int = logging.INFO) -> Callable[[], None]:
    """Send evenstride's (and libraries' warnings') logs to the rotating file; returns a closer."""
    from evenstride.store.archive import make_private_dir

    path = log_path(home)
    make_private_dir(path.parent)
    handler = PrivateRotatingFileHandler(
        path, maxBytes=LOG_MAX_BYTES, backupCount=LOG_BACKUPS, encoding="utf-8"
    )
    handler.setLevel(level)
    handler.addFilter(RedactingFilter())
    handler.setFormatter(
        logging.Formatter("%(asctime)s %(process)d %(levelname)s %(name)s: %(message)s")
    )
    root, ours = logging.getLogger(), logging.getLogger("evenstride")
    previous = ours.level
    root.addHandler(handler)
    ours.setLevel(min(level, previous) if previous else level)

    def close() -> None:
        root.removeHandler(handler)
        ours.setLevel(previous)
        handler.close()

    return close


# --------------------------------------------------------------------------- one athlete


@dataclass
class AthleteOutcome:
    """What the job did for one athlete: the parts of the summary line and what failed."""

    athlete: str
    parts: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return bool(self.failures)

    def line(self) -> str:
        return redact(f"{self.athlete}: " + "; ".join(self.parts))


def _reason(exc: BaseException) -> str:
    """A one-line, secret-free reason: connector errors carry safe messages, others are masked."""
    message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    if not getattr(exc, "message", None):
        message = f"{type(exc).__name__}: {message}"
    return redact(" ".join(str(message).split()))[:300]


def has_credentials(source: str, athlete: str) -> bool:
    """Whether the keyring holds a login of this athlete for this source."""
    if source == "garmin":
        from evenstride.connectors.garmin import auth

        return bool(auth.load_tokens(athlete))
    try:
        from evenstride.connectors.strava import auth as strava_auth
    except ImportError:
        return False
    return strava_auth.load_tokens(athlete) is not None


def sources_of(profile: dict[str, Any], athlete: str) -> list[str]:
    """The profile's `sources`, else every source with stored credentials."""
    listed = profile.get("sources")
    if listed:
        return [s for s in SOURCES if s in listed] + [s for s in listed if s not in SOURCES]
    return [s for s in SOURCES if has_credentials(s, athlete)]


def sync_source(store: Any, source: str, athlete: str) -> Any:
    """One source's sync, exactly as `evenstride sync <source>` runs it; returns its summary."""
    if source == "garmin":
        from evenstride.connectors.garmin.sync import SyncOptions, run_sync

        return run_sync(store, SyncOptions(athlete=athlete))
    if source == "strava":
        from evenstride.connectors.strava import auth as strava_auth
        from evenstride.connectors.strava.sync import SyncOptions as StravaOptions
        from evenstride.connectors.strava.sync import sync as strava_sync

        client = strava_auth.open_client(athlete)
        return strava_sync(client, store, StravaOptions(athlete=athlete))
    raise ValueError(f"unknown source {source!r}")


def _sync_step(store: Any, athlete: str, source: str, out: AthleteOutcome) -> int:
    """Sync one source into `out`; returns the sync's exit code (0 ok)."""
    try:
        summary = sync_source(store, source, athlete)
    except Exception as exc:  # noqa: BLE001 - one source's failure is reported, never raised
        log.warning("%s: %s sync failed: %s", athlete, source, _reason(exc), exc_info=True)
        out.parts.append(f"sync {source} FAILED ({_reason(exc)})")
        out.failures.append(f"sync {source}")
        return int(getattr(exc, "exit_code", EXIT_SOME_FAILED) or EXIT_SOME_FAILED)
    log.info("%s", summary.line())
    for item in summary.failed:  # the summary line only counts them: say which and why
        log.warning(
            "%s: %s activity %s failed: %s",
            athlete, source, item.get("activity_id"), redact(str(item.get("reason"))),
        )  # fmt: skip
    added = summary.imported + getattr(summary, "partial", 0)
    text = f"sync {source}{' FAILED' if summary.exit_code else ''}"
    if added or not summary.exit_code:
        text += f" +{added} run{'' if added == 1 else 's'}"
    if summary.failed:
        text += f", {len(summary.failed)} activities failed"
    if summary.stopped:
        text += f" ({redact(summary.stopped)})"
    out.parts.append(text)
    if summary.exit_code:
        out.failures.append(f"sync {source}")
    else:
        now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        store.set_sync_state(athlete, source, SYNCED_AT_KEY, now)
    return int(summary.exit_code)


def trend_text(verdict: Any, n_runs: int) -> str:
    """'trend shifted_left +1.6 pp (MDC 0.5)'; cadence for athletes without a balance sensor."""
    from evenstride.metrics.trend import DEFAULT_TREND, INSUFFICIENT

    b, c = verdict.balance, verdict.cadence
    if b.state == INSUFFICIENT:
        if not b.has_balance_sensor:
            return f"trend no balance data ({n_runs} runs); cadence {c.state}"
        return f"trend {INSUFFICIENT} ({b.n_runs}/{DEFAULT_TREND.min_runs} comparable runs)"
    text = f"trend {b.state}"
    if b.magnitude is not None:
        text += f" {b.magnitude:+.1f} pp"
    if b.mdc95 is not None:
        text += f" (MDC {b.mdc95:.1f})"
    return text


def push_text(summary: Any, dry_run: bool) -> str:
    created, replaced = len(summary.created), len(summary.replaced)
    removed = len(summary.removed)
    if dry_run:
        return f"push dry-run: would create {created}, replace {replaced}, remove {removed}"
    text = f"push {created} created, {replaced} replaced"
    return text + (f", {removed} removed" if removed else "")


def _push_step(
    store: Any, home: Path, athlete: str, today: dt.date, dry_run: bool, out: AthleteOutcome
) -> None:
    try:
        from evenstride.connectors.garmin.push import push_plan
    except ImportError:
        log.warning("%s: push skipped: evenstride.connectors.garmin.push is not installed", athlete)
        out.parts.append("push unavailable (not installed)")
        return
    try:
        summary = push_plan(store, home, athlete, today=today, dry_run=dry_run)
    except Exception as exc:  # noqa: BLE001
        log.warning("%s: push failed: %s", athlete, _reason(exc), exc_info=True)
        partial = getattr(exc, "summary", None)  # what a stopped push had done
        if partial is not None and hasattr(partial, "line"):
            log.info("%s: %s", athlete, partial.line())
        out.parts.append(f"push FAILED ({_reason(exc)})")
        out.failures.append("push")
        return
    log.info("%s: %s", athlete, summary.line())
    out.parts.append(push_text(summary, dry_run))
    if getattr(summary, "exit_code", 0):
        out.parts[-1] += f" (stopped: {redact(str(getattr(summary, 'stopped', '')))})"
        out.failures.append("push")


def _analyse_and_plan(
    store: Any, home: Path, athlete: str, today: dt.date, weeks: int, out: AthleteOutcome
) -> bool:
    """Summaries -> trend -> plan (saved). True when a plan was saved."""
    from evenstride.analysis import summaries
    from evenstride.metrics.trend import assess_athlete
    from evenstride.plans import make_plan, save_plan

    try:
        df = summaries(store, athlete)
        if df.empty:
            out.parts.append("trend no runs stored yet; plan skipped")
            return False
        out.parts.append(trend_text(assess_athlete(df), len(df)))
    except Exception as exc:  # noqa: BLE001
        log.warning("%s: trend failed: %s", athlete, _reason(exc), exc_info=True)
        out.parts.append(f"trend FAILED ({_reason(exc)})")
        out.failures.append("trend")
    try:
        plan = make_plan(store, home, athlete, today=today, weeks=weeks)
        path = save_plan(home, plan)
    except Exception as exc:  # noqa: BLE001
        log.warning("%s: plan failed: %s", athlete, _reason(exc), exc_info=True)
        out.parts.append(f"plan FAILED ({_reason(exc)})")
        out.failures.append("plan")
        return False
    log.info("%s: plan saved to %s (%d sessions)", athlete, path, len(plan.sessions))
    out.parts.append(f"plan week {plan.week} phase {plan.phase}")
    return True


# Sync exit codes after which pushing is pointless: login refused, rate limited.
_NO_PUSH_AFTER = {3: "Garmin login needed", 4: "Garmin rate-limited us"}


def run_athlete(
    store: Any,
    home: Path,
    athlete: str,
    *,
    today: dt.date,
    dry_run: bool = False,
    weeks: int = 4,
) -> AthleteOutcome:
    """Every step for one athlete; never raises for the athlete's own failures."""
    out = AthleteOutcome(athlete)
    try:
        profile = dict((store.get_athlete(athlete) or {}).get("profile") or {})
        sources = sources_of(profile, athlete)
    except Exception as exc:  # noqa: BLE001
        out.parts.append(f"sources FAILED ({_reason(exc)})")
        out.failures.append("sources")
        sources = []
    if not sources and not out.failures:
        out.parts.append("sync none (no source logged in)")
    codes = {src: _sync_step(store, athlete, src, out) for src in sources}
    planned = _analyse_and_plan(store, home, athlete, today, weeks, out)
    if "garmin" not in sources:
        out.parts.append("push skipped (no Garmin source)")
    elif codes.get("garmin") in _NO_PUSH_AFTER:
        out.parts.append(f"push skipped ({_NO_PUSH_AFTER[codes['garmin']]})")
    elif not planned:
        out.parts.append("push skipped (no plan)")
    else:
        _push_step(store, home, athlete, today, dry_run, out)
    stamp = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    status = "failed: " + ", ".join(out.failures) if out.failed else "ok"
    try:  # for `evenstride audit`; losing it must not fail the athlete
        with store.transaction():
            store.set_sync_state(athlete, NIGHTLY_SOURCE, "finished_at", stamp)
            store.set_sync_state(athlete, NIGHTLY_SOURCE, "status", status)
    except Exception:  # noqa: BLE001
        log.warning("%s: could not record the nightly status", athlete, exc_info=True)
    return out


# --------------------------------------------------------------------------- the whole job


class ConfigError(Exception):
    """The job cannot start: exit 2 with this message."""


def roster(store: Any, only: Iterable[str] = ()) -> list[str]:
    """The athletes to process, by name (the single 'default' athlete when there is no roster)."""
    names = [a["name"] for a in store.list_athletes()]
    only = list(only)
    if only:
        unknown = [n for n in only if n not in names and n != "default"]
        if unknown:
            raise ConfigError(f"no athlete named {', '.join(map(repr, unknown))} in the roster")
        return only
    return names or ["default"]


def run_nightly(
    home: Path,
    *,
    athletes: Iterable[str] = (),
    dry_run: bool = False,
    today: dt.date | None = None,
    weeks: int = 4,
    echo: Callable[[str], None] = print,
    warn: Callable[[str], None] = print,
) -> int:
    """The whole job under the lock; returns the exit code. `echo` gets one line per athlete.

    Raises LockHeldError (exit 75) and ConfigError (exit 2); store errors propagate (exit 6).
    """
    from evenstride.connectors import secrets
    from evenstride.store import open_store
    from evenstride.store.archive import make_private_dir

    home = Path(home).expanduser()
    make_private_dir(home)
    lock = NightlyLock(home)
    stale = lock.acquire()
    close_log = setup_logging(home)
    try:
        log.info("nightly start (pid %d, dry_run=%s)", os.getpid(), dry_run)
        if stale:
            msg = (
                f"cleared a stale lock left by pid {stale.get('pid')} on {stale.get('host')} "
                f"(started {stale.get('started')}; that run was killed or crashed)"
            )
            log.warning(msg)
            warn(msg)
        try:
            secrets.ensure_backend()
        except secrets.KeyringUnavailableError as exc:
            raise ConfigError(exc.message) from None
        day = today or dt.date.today()
        failed: list[str] = []
        with open_store(home) as store:
            names = roster(store, athletes)
            for name in names:
                outcome = run_athlete(store, home, name, today=day, dry_run=dry_run, weeks=weeks)
                log.info("summary: %s", outcome.line())
                echo(outcome.line())
                if outcome.failed:
                    failed.append(name)
        log.info("nightly end: %d athletes, %d failed %s", len(names), len(failed), failed)
        if failed:
            warn(
                f"nightly: {len(failed)} of {len(names)} athletes failed: {', '.join(failed)} "
                f"(details in {log_path(home)})"
            )
            return EXIT_SOME_FAILED
        return EXIT_OK
    except Exception as exc:
        log.error("nightly stopped: %s", _reason(exc), exc_info=True)
        raise
    finally:
        close_log()
        lock.release()
