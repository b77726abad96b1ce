"""Time evenstride's read_fit against fitparse and garmin-fit-sdk on the same files, in one run.

    /work/venv/bin/python benchmarks/bench_reader.py            # all running samples + fixtures
    /work/venv/bin/python benchmarks/bench_reader.py --quick    # 1 baseline run, fewer reader runs
    /work/venv/bin/python benchmarks/bench_reader.py FILE.fit ...

Prints one row per file (size, median time and MB/s of each decoder, reader speed-up) and the
medians over the files. Targets (from the issue): reader >= 100 MB/s median over the running
samples and >= 300x fitparse. Wall-clock numbers are printed, never asserted. See README.md.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time
import timeit
import warnings
from collections.abc import Callable
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_SAMPLES = REPO_ROOT.parent / "shared" / "fit-samples"
RUNNING_GROUPS = ("running_rd", "running_gct_only", "running_no_rd")
TARGET_MB_S = 100.0
TARGET_RATIO = 300.0

# The same work for every decoder: decode the whole file, then every record as a dict with these
# fields (the research note's method), plus the session and lap messages.
RECORD_FIELDS = (
    "timestamp",
    "distance",
    "speed",
    "enhanced_speed",
    "heart_rate",
    "cadence",
    "fractional_cadence",
    "stance_time",
    "stance_time_percent",
    "stance_time_balance",
    "vertical_oscillation",
    "vertical_ratio",
    "step_length",
    "power",
)


def run_reader(path: Path, data: bytes) -> int:
    """What read_fit returns: record columns (numpy) plus session/lap/device/event dicts."""
    from evenstride.metrics.fit import read_fit

    return read_fit(data).record_count


def run_reader_frame(path: Path, data: bytes) -> int:
    """The same, plus the pandas DataFrame of the records (built lazily by `FitFile.records`)."""
    from evenstride.metrics.fit import read_fit

    return len(read_fit(data).records)


def run_fitparse(path: Path, data: bytes) -> int:
    import fitparse
    from fitparse.utils import FitCRCError

    records, summaries = [], []
    ff = fitparse.FitFile(data, check_crc=True)
    try:
        for message in ff.get_messages(["record", "session", "lap"]):
            values = message.get_values()
            if message.name == "record":
                records.append({k: values.get(k) for k in RECORD_FIELDS})
            else:
                summaries.append(values)
    except FitCRCError:
        pass  # raised at the very end (fr245music's file CRC is wrong): the work is done
    return len(records)


def run_sdk(path: Path, data: bytes) -> int:
    from garmin_fit_sdk import Decoder, Stream

    messages, errors = Decoder(Stream.from_byte_array(bytearray(data))).read(
        merge_heart_rates=False
    )
    records = [{k: m.get(k) for k in RECORD_FIELDS} for m in messages.get("record_mesgs", [])]
    _ = messages.get("session_mesgs", []), messages.get("lap_mesgs", [])
    return len(records)


def median_time(fn: Callable[[Path, bytes], int], path: Path, data: bytes, runs: int) -> float:
    """Seconds: one warm-up call, then the median of `runs` timed calls."""
    fn(path, data)
    times = []
    for _ in range(runs):
        gc.collect()
        gc.disable()  # as timeit does: a collection triggered by another library's garbage
        try:  # must not land inside the timed call
            t0 = time.perf_counter()
            fn(path, data)
            times.append(time.perf_counter() - t0)
        finally:
            gc.enable()
    return statistics.median(times)


def loop_time(fn: Callable[[Path, bytes], int], path: Path, data: bytes, repeat: int) -> float:
    """Seconds per call, measured as timeit does: loops of calls with GC off, median of `repeat`.

    For the fast reader a single call lasts about a millisecond, so single-call timings measure
    cache misses and timer noise more than the decoder; loops of >= ~20 ms each do not.
    """
    fn(path, data)
    t0 = time.perf_counter()
    fn(path, data)
    once = max(time.perf_counter() - t0, 1e-6)
    number = max(1, int(0.02 / once))
    timer = timeit.Timer(lambda: fn(path, data))
    return statistics.median(timer.repeat(repeat=repeat, number=number)) / number


def default_files() -> list[Path]:
    files = [p for g in RUNNING_GROUPS for p in sorted((SHARED_SAMPLES / g).glob("*.fit"))]
    fixtures = REPO_ROOT / "fixtures"
    if fixtures.is_dir():
        seen = {p.name for p in files}
        for p in sorted(fixtures.rglob("*.fit")):
            # running fixtures only; skip copies of shared files already in the list
            if p.name in seen or any(s in p.parts for s in ("broken", "non_running")):
                continue
            if "walk" in p.name:
                continue
            files.append(p)
    return files


def label(path: Path) -> str:
    for root in (SHARED_SAMPLES, REPO_ROOT):
        if path.is_relative_to(root):
            return path.relative_to(root).as_posix()
    return path.name


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("files", nargs="*", type=Path, help="FIT files (default: running samples)")
    parser.add_argument("--quick", action="store_true", help="1 baseline run, 5 reader runs")
    parser.add_argument("--runs", type=int, default=None, help="timed reader runs per file")
    parser.add_argument("--baseline-runs", type=int, default=None, help="timed runs, baselines")
    parser.add_argument("--no-sdk", action="store_true", help="skip the garmin-fit-sdk baseline")
    args = parser.parse_args(argv)

    reader_runs = args.runs or (5 if args.quick else 7)
    base_runs = args.baseline_runs or (1 if args.quick else 3)
    files = args.files or default_files()
    if not files:
        print(f"no FIT files found (looked in {SHARED_SAMPLES} and fixtures/)")
        return 0
    warnings.simplefilter("ignore")

    print(
        f"python {sys.version.split()[0]}; reader: median of {reader_runs} timeit loops "
        "(>= 20 ms each, GC off), "
        f"baselines: median of {base_runs} run(s), each after one warm-up\n"
    )
    head = (
        f"{'file':52} {'KB':>7} {'records':>7} {'reader ms':>9} {'MB/s':>7} {'+frame ms':>9} "
        f"{'fitparse ms':>11} {'MB/s':>5} {'ratio':>6}"
    )
    if not args.no_sdk:
        head += f" {'sdk ms':>8} {'MB/s':>5} {'ratio':>6}"
    print(head)
    print("-" * len(head))
    reader_mbs, ratios, sdk_ratios, total = [], [], [], {"reader": 0.0, "fitparse": 0.0, "sdk": 0.0}
    shared_mbs, shared_ratios, frame_mbs = [], [], []
    for path in files:
        data = path.read_bytes()
        mb = len(data) / 1e6
        try:
            n = run_reader(path, data)
            t_reader = loop_time(run_reader, path, data, reader_runs)
            t_frame = loop_time(run_reader_frame, path, data, reader_runs)
        except Exception as exc:  # report and go on: the benchmark always finishes
            print(f"{label(path):52} reader failed: {type(exc).__name__}: {exc}")
            continue
        try:
            t_fp = median_time(run_fitparse, path, data, base_runs)
        except Exception as exc:
            print(f"{label(path):52} fitparse failed: {type(exc).__name__}: {exc}")
            continue
        reader_mbs.append(mb / t_reader)
        ratios.append(t_fp / t_reader)
        frame_mbs.append(mb / t_frame)
        if path.is_relative_to(SHARED_SAMPLES):
            shared_mbs.append(mb / t_reader)
            shared_ratios.append(t_fp / t_reader)
        total["reader"] += t_reader
        total["fitparse"] += t_fp
        row = (
            f"{label(path):52} {len(data) / 1024:7.0f} {n:7d} {t_reader * 1e3:9.2f} "
            f"{mb / t_reader:7.1f} {t_frame * 1e3:9.2f} "
            f"{t_fp * 1e3:11.0f} {mb / t_fp:5.2f} {t_fp / t_reader:6.0f}"
        )
        if not args.no_sdk:
            try:
                t_sdk = median_time(run_sdk, path, data, base_runs)
                sdk_ratios.append(t_sdk / t_reader)
                total["sdk"] += t_sdk
                row += f" {t_sdk * 1e3:8.0f} {mb / t_sdk:5.2f} {t_sdk / t_reader:6.0f}"
            except Exception as exc:
                row += f" sdk failed: {type(exc).__name__}"
        print(row, flush=True)

    if not reader_mbs:
        return 0
    # The targets are medians "over the running samples" (../shared/fit-samples); the
    # project's fixtures (22 near-identical 45 KB season files) are reported beside them.
    target_mbs = shared_mbs or reader_mbs
    target_ratios = shared_ratios or ratios
    med_mbs, med_ratio = statistics.median(target_mbs), statistics.median(target_ratios)
    print()
    print(f"files: {len(reader_mbs)} ({len(shared_mbs)} shared running samples)")
    print(
        f"reader median over the running samples: {med_mbs:.1f} MB/s "
        f"(target >= {TARGET_MB_S:.0f}: {'met' if med_mbs >= TARGET_MB_S else 'NOT met'}); "
        f"all files {statistics.median(reader_mbs):.1f} MB/s; "
        f"with the pandas DataFrame {statistics.median(frame_mbs):.1f} MB/s"
    )
    print(
        f"median speed-up vs fitparse over the running samples: {med_ratio:.0f}x "
        f"(target >= {TARGET_RATIO:.0f}x: {'met' if med_ratio >= TARGET_RATIO else 'NOT met'}); "
        f"all files {statistics.median(ratios):.0f}x; "
        f"total time {total['fitparse'] / total['reader']:.0f}x"
    )
    if sdk_ratios:
        print(
            f"median speed-up vs garmin-fit-sdk: {statistics.median(sdk_ratios):.0f}x; "
            f"total time {total['sdk'] / total['reader']:.0f}x"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
