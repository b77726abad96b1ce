"""Print the trend detector's figures on simulated seasons, and the summarising speed.

    /work/venv/bin/python benchmarks/simulate_seasons.py            # 500 stable + 500 shifted
    /work/venv/bin/python benchmarks/simulate_seasons.py --stable 200 --shifted 200 --runs 50

Targets (issue 3): false alarms in <= 5 % of stable athlete-seasons; >= 90 % of 1.5 pp step
shifts detected within 3 weeks, both directions. Seasons: 26 weeks x 4 runs, per-athlete noise
0.1-0.5 pp, pace mix, 3 % outlier runs of 2-4 pp (see evenstride.metrics.simulate).
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

from evenstride.metrics.simulate import SeasonSpec, evaluate, simulate_run_records
from evenstride.metrics.summary import summarise_run


def speed_benchmark(n_runs: int, seconds: int, seed: int) -> list[str]:
    """Summarise n_runs one-hour 1 Hz runs; only summarise_run is timed."""
    rng = np.random.default_rng(seed)
    runs = [
        simulate_run_records(
            rng, duration_s=seconds, balance_pct=50.0 + rng.normal(0, 1), pause=None
        )
        for _ in range(n_runs)
    ]
    rows = sum(len(r) for r in runs)
    t0 = time.perf_counter()
    for r in runs:
        summarise_run(r, sensor="HRM-Pro Plus", reference_speed=3.0)
    total = time.perf_counter() - t0
    return [
        f"[speed] summarised {n_runs} runs x {seconds} s ({rows:,} rows) in {total:.2f} s"
        f" = {1000 * total / n_runs:.1f} ms per run (1 process; {os.cpu_count()} CPUs visible)",
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--stable", type=int, default=500)
    ap.add_argument("--shifted", type=int, default=500)
    ap.add_argument("--seed", type=int, default=20260105)
    ap.add_argument("--runs", type=int, default=300, help="runs for the speed benchmark")
    ap.add_argument("--cadence-shift", type=float, default=3.0, help="spm step, cadence check")
    args = ap.parse_args()

    spec = SeasonSpec()
    print(
        f"seasons: {spec.weeks} weeks x {spec.runs_per_week} runs; TE {spec.te_range_pp} pp;"
        f" outliers {100 * spec.outlier_rate:.0f} % of runs, {spec.outlier_range_pp} pp;"
        f" pace mix {dict(spec.pace_mix)}"
    )
    t0 = time.perf_counter()
    report = evaluate(args.stable, args.shifted, seed=args.seed, shift=1.5)
    for line in report.lines():
        print(line)
    print(f"  ({time.perf_counter() - t0:.1f} s)")
    ok_fa = report.false_alarm_rate <= 0.05
    ok_det = report.detection_rate >= 0.90 and all(
        hit / total >= 0.90 for hit, total in report.detected_by_direction.values() if total
    )
    print(
        f"targets: false alarms <= 5 %: {'PASS' if ok_fa else 'FAIL'};"
        f" detection >= 90 % in 21 d (both directions): {'PASS' if ok_det else 'FAIL'}"
    )

    t0 = time.perf_counter()
    n_cad = max(1, min(args.stable, args.shifted) // 2)
    cad = evaluate(n_cad, n_cad, seed=args.seed + 1, metric="cadence", shift=args.cadence_shift)
    for line in cad.lines():
        print(line)
    print(f"  (pace-adjusted cadence, informational; {time.perf_counter() - t0:.1f} s)")

    for line in speed_benchmark(args.runs, 3600, args.seed):
        print(line)


if __name__ == "__main__":
    main()
