"""Load: the nightly job for a roster of athletes, each with a season of runs, against fakes.

    /work/venv/bin/python benchmarks/load_roster.py                       # 10, 25, 50 athletes
    /work/venv/bin/python benchmarks/load_roster.py --sizes 5 --runs 20   # a quick one

For each roster size, a fresh --home and fresh fake accounts: every athlete has their own Garmin
Connect account on ONE fake server (tests/fake_garmin.py's handler, routed per bearer token), with
`--runs` runs listed over the last months, and every `--strava-every`-th athlete also has Strava
(tests/fake_strava.py, `--strava-runs` runs with 1 Hz streams). The nightly job
(`evenstride.nightly.run_nightly`, what `evenstride nightly` runs) then syncs, summarises,
assesses the trend, plans 4 weeks and pushes the plan for the whole roster.

The job runs in a CHILD process per roster size (the fakes and their payloads live in this
parent process), so each size reports its own peak memory: tracemalloc's peak of Python
allocations during the job, and ru_maxrss of the child (the OS's peak resident set, including
numpy/pandas buffers and the interpreter). Bounded memory means the peak does not grow with the
roster: the job handles one athlete, and one activity, at a time.

Runs: the FIT files are the project's own synthetic runs (fixtures/synthetic: the 22-run season
and the single-scenario runs), made distinct per athlete and run by patching the device serial
number (file_id and device_info) and recomputing the FIT CRC (fastcrc.crc16.arc over header +
data). Their recorded dates are the fixtures' own (2024), so an athlete's season repeats those
dates; the Garmin activity list spreads the runs over the last months (what the sync pages by).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import struct
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

SYNTHETIC = ROOT / "fixtures" / "synthetic"


def _size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) if path.exists() else 0


# --------------------------------------------------------------------------- the child: the job


def child(home: Path, weeks: int) -> None:
    import evenstride.analysis  # noqa: F401 - imports done before the baseline is taken
    import evenstride.connectors.garmin.push  # noqa: F401
    import evenstride.connectors.garmin.sync  # noqa: F401
    import evenstride.connectors.strava.sync  # noqa: F401
    import evenstride.ingest  # noqa: F401
    from evenstride import nightly
    from evenstride.store import DB_NAME, open_store

    base_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    lines: list[tuple[float, str]] = []
    tracemalloc.start()
    t0 = time.perf_counter()
    code = nightly.run_nightly(
        home,
        weeks=weeks,
        echo=lambda line: lines.append((time.perf_counter(), line)),
        warn=lambda msg: print(msg, file=sys.stderr),
    )
    wall = time.perf_counter() - t0
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    hwm = _vm_hwm_kb()
    with open_store(home) as store:
        activities = len(store.list_activities())
        runs = len(store.list_runs())
    stamps = [t0] + [t for t, _ in lines]
    per = [b - a for a, b in zip(stamps, stamps[1:], strict=False)]
    failed = [line for _, line in lines if "FAILED" in line]
    db = sum(_size_file(home / (DB_NAME + s)) for s in ("", "-wal", "-shm"))
    print(
        json.dumps(
            {
                "athletes": len(lines),
                "activities": activities,
                "runs": runs,
                "wall_s": wall,
                "per_athlete_s": per,
                "tracemalloc_peak_mb": peak / 1e6,
                "rss_base_mb": base_rss / 1024,
                "rss_peak_mb": rss / 1024,
                "vm_hwm_mb": hwm / 1024,
                "db_mb": db / 1e6,
                "archive_mb": _size(home / "raw") / 1e6,
                "exit_code": code,
                "failed_lines": failed[:3],
            }
        )
    )


def _vm_hwm_kb() -> int:
    """VmHWM of this process (Linux): its own peak RSS, a cross-check of ru_maxrss."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


SPAWNER = """
import json, subprocess, sys
for line in sys.stdin:
    cmd, env = json.loads(line)
    p = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    print(json.dumps([p.returncode, p.stdout, p.stderr]), flush=True)
"""


def _size_file(path: Path) -> int:
    return path.stat().st_size if path.exists() else 0


# --------------------------------------------------------------------------- the parent: fakes


def fit_templates() -> list[tuple[bytes, bytes]]:
    """(FIT bytes, serial as 4 little-endian bytes) of every synthetic running file."""
    from garmin_fit_sdk import Decoder, Stream

    out = []
    files = sorted((SYNTHETIC / "season").glob("*.fit")) + [
        SYNTHETIC / n
        for n in (
            "steady_left_51_2.fit",
            "trail_hills.fit",
            "treadmill_right_48_5.fit",
            "sensor_dropout.fit",
            "wrist_only_run.fit",
        )
    ]
    for f in files:
        data = f.read_bytes()
        msgs, _ = Decoder(Stream.from_byte_array(bytearray(data))).read()
        serial = msgs["file_id_mesgs"][0]["serial_number"]
        out.append((data, struct.pack("<I", serial)))
    return out


def distinct_fit(template: tuple[bytes, bytes], serial: int) -> bytes:
    """The template with another device serial (everywhere it occurs) and a valid CRC."""
    import fastcrc

    data, old = template
    body = data[:-2].replace(old, struct.pack("<I", serial))
    return body + struct.pack("<H", fastcrc.crc16.arc(body))


class GarminAccounts:
    """One fake Garmin Connect server, one account (token pair, activities, workouts,
    calendar) per athlete: each request is served from the account its bearer token belongs to."""

    def __init__(self) -> None:
        import threading

        from fake_garmin import FakeGarminConnect, _Handler, _QuietServer

        self.accounts: dict[str, FakeGarminConnect] = {}
        self.by_token: dict[str, FakeGarminConnect] = {}
        accounts = self

        class Router(_Handler):
            def _dispatch(self, method: str) -> None:
                auth = self.headers.get("Authorization") or ""
                token = auth[7:] if auth.startswith("Bearer ") else ""
                self.fake = accounts.by_token.get(token) or next(iter(accounts.accounts.values()))
                super()._dispatch(method)

        self._make = FakeGarminConnect
        self.server = _QuietServer(("127.0.0.1", 0), Router)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def add(self, athlete: str) -> Any:
        acct = self._make()
        acct._server.server_close()  # only its state is used; the router serves
        self.accounts[athlete] = acct
        for token in acct.access_tokens:
            self.by_token[token] = acct
        return acct

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def setup_roster(
    home: Path,
    names: list[str],
    garmin: GarminAccounts,
    strava: Any,
    templates: list[tuple[bytes, bytes]],
    runs: int,
    strava_every: int,
    serial0: int,
) -> int:
    from fake_garmin import make_zip
    from fake_strava import login

    from evenstride.connectors.garmin import auth
    from evenstride.store import open_store

    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    first = now - dt.timedelta(days=2 * runs + 3)
    with open_store(home) as store:
        for a, name in enumerate(names):
            acct = garmin.add(name)
            for i in range(runs):
                fit = distinct_fit(templates[i % len(templates)], serial0 + a * 10_000 + i)
                start = first + dt.timedelta(days=2 * i, hours=a % 12)
                aid = next(acct._ids)
                acct.add_activity(start, body=make_zip(fit, f"{aid}_ACTIVITY.fit"), activity_id=aid)
            auth.save_tokens(name, acct.tokens_json())
            sources = ["garmin"]
            if strava_every and a % strava_every == 0:
                login(strava, name)
                sources.append("strava")
            store.update_athlete_profile(name, {"sources": sources})
    return runs * len(names)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10,25,50", help="roster sizes, one child each")
    parser.add_argument("--runs", type=int, default=60, help="Garmin runs per athlete")
    parser.add_argument("--strava-every", type=int, default=5, help="every Nth athlete: Strava")
    parser.add_argument("--strava-runs", type=int, default=10)
    parser.add_argument("--weeks", type=int, default=4)
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--keep", action="store_true", help="keep the homes (printed)")
    args = parser.parse_args()
    if args.child:
        child(args.child, args.weeks)
        return 0

    # Children are started by a small spawner made now, while this process is small: on Linux a
    # child's ru_maxrss starts from the RSS of the process that forked it (kept across exec), and
    # this parent grows with the fakes' payloads.
    spawner = subprocess.Popen(
        [sys.executable, "-c", SPAWNER], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    tmp = Path(tempfile.mkdtemp(prefix="evenstride-load-"))
    os.environ.update(
        XDG_DATA_HOME=str(tmp / "xdg"),
        PYTHON_KEYRING_BACKEND="keyrings.alt.file.PlaintextKeyring",
        EVENSTRIDE_GARMIN_RETRIES="1",
        EVENSTRIDE_GARMIN_BACKOFF_S="0.01",
    )
    import keyring
    from fake_strava import FakeStrava
    from keyrings.alt.file import PlaintextKeyring

    keyring.set_keyring(PlaintextKeyring())
    templates = fit_templates()
    garmin = GarminAccounts()
    results = []
    with FakeStrava() as strava:
        strava.limits = {"overall": [10**7, 10**8], "read": [10**7, 10**8]}
        now = dt.datetime.now(dt.UTC).replace(microsecond=0)
        for i in range(args.strava_runs):
            start = now - dt.timedelta(days=3 * i + 1, hours=5)
            strava.add_run(60_000 + i, start, seconds=1800)
        env = dict(
            os.environ,
            EVENSTRIDE_GARMIN_API_URL=garmin.url,
            EVENSTRIDE_STRAVA_API_URL=strava.api_url,
            EVENSTRIDE_STRAVA_OAUTH_URL=strava.url,
        )
        for k, size in enumerate(int(s) for s in args.sizes.split(",")):
            home = tmp / f"home-{size}"
            names = [f"athlete{size:03d}-{i:03d}" for i in range(size)]
            t = time.perf_counter()
            listed = setup_roster(
                home, names, garmin, strava, templates, args.runs, args.strava_every, k * 10**6
            )
            print(f"roster of {size}: {listed} Garmin runs listed in {time.perf_counter() - t:.1f} s",
                  flush=True)  # fmt: skip
            cmd = [sys.executable, __file__, "--child", str(home), "--weeks", str(args.weeks)]
            assert spawner.stdin is not None and spawner.stdout is not None
            spawner.stdin.write(json.dumps([cmd, env]) + "\n")
            spawner.stdin.flush()
            returncode, out, err = json.loads(spawner.stdout.readline())
            if returncode != 0 or not out.strip():
                print(out, err, file=sys.stderr)
                return 1
            r = json.loads(out.strip().splitlines()[-1])
            results.append(r)
            per = sorted(r["per_athlete_s"])
            print(
                f"  athletes {r['athletes']}, activities {r['activities']} ({r['runs']} runs), "
                f"wall {r['wall_s']:.1f} s, per athlete median {per[len(per) // 2]:.2f} s "
                f"(max {per[-1]:.2f} s), tracemalloc peak {r['tracemalloc_peak_mb']:.1f} MB, "
                f"ru_maxrss {r['rss_peak_mb']:.0f} MB (after imports {r['rss_base_mb']:.0f} MB, "
                f"VmHWM {r['vm_hwm_mb']:.0f} MB), "
                f"db {r['db_mb']:.1f} MB, archive {r['archive_mb']:.1f} MB, "
                f"exit {r['exit_code']}",
                flush=True,
            )
            if r["failed_lines"]:
                print("  failed:", *r["failed_lines"], sep="\n    ")
    garmin.stop()
    spawner.stdin.close()
    spawner.wait()
    print(
        "\nathletes  activities  wall_s  s/athlete  tracemalloc_MB  maxrss_MB  db_MB  raw_MB  exit"
    )
    for r in results:
        print(
            f"{r['athletes']:>8}  {r['activities']:>10}  {r['wall_s']:>6.1f}  "
            f"{r['wall_s'] / max(1, r['athletes']):>9.2f}  {r['tracemalloc_peak_mb']:>14.1f}  "
            f"{r['rss_peak_mb']:>9.0f}  {r['db_mb']:>5.1f}  {r['archive_mb']:>6.1f}  "
            f"{r['exit_code']:>4}"
        )
    if len(results) > 1:
        a, b = results[0], results[-1]
        growth = b["rss_peak_mb"] / a["rss_peak_mb"]
        print(f"\npeak RSS x{growth:.2f} for a roster x{b['athletes'] / a['athletes']:.1f}")
    if args.keep:
        print(f"homes kept under {tmp}")
    else:
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
    return 0 if all(r["exit_code"] == 0 for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
