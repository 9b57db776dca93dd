"""Benchmark of ``mktpipe.generate``: time and rows/s at two or more sizes, and how cost grows.

    python bench/generate.py                                   # 10k x 30 and 100k x 60
    python bench/generate.py --users 2000 20000 --days 10 30   # pairs: 2000 x 10, 20000 x 30

Cost per row should stay flat as the size grows (the generator is linear in rows). Prints
figures only; it asserts nothing.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mktpipe.generate import generate  # noqa: E402


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--days", type=int, nargs="+", default=[30, 60])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--dirty-rate", type=float, default=0.02)
    parser.add_argument("--start-date", type=dt.date.fromisoformat, default=dt.date(2024, 3, 1))
    parser.add_argument("--out", default=None, help="scratch folder (default: a temp folder)")
    parser.add_argument("--keep", action="store_true", help="keep the generated files")
    args = parser.parse_args(argv)
    if len(args.days) == 1:
        args.days = args.days * len(args.users)
    if len(args.days) != len(args.users):
        parser.error("give one --days value, or one per --users value")
    return args


def run_one(root: Path, users: int, days: int, args: argparse.Namespace) -> dict:
    out = root / f"u{users}_d{days}"
    began = time.perf_counter()
    summary = generate(out, users=users, days=days, seed=args.seed,
                       start_date=args.start_date, dirty_rate=args.dirty_rate)
    seconds = time.perf_counter() - began
    lines = summary.total_rows + summary.total_injected
    if not args.keep:
        shutil.rmtree(out)
    return {"users": users, "days": days, "rows": summary.total_rows,
            "injected": summary.total_injected, "mb": summary.bytes_written / 2**20,
            "seconds": seconds, "rows_per_s": lines / seconds, "us_per_row": 1e6 * seconds / lines}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    root = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="bench_generate_"))
    results = []
    print(f"{'users':>9} {'days':>5} {'rows':>11} {'injected':>9} {'MB':>8} {'seconds':>8} "
          f"{'rows/s':>10} {'us/row':>7}")
    for users, days in zip(args.users, args.days):
        r = run_one(root, users, days, args)
        results.append(r)
        print(f"{r['users']:>9} {r['days']:>5} {r['rows']:>11} {r['injected']:>9} "
              f"{r['mb']:>8.1f} {r['seconds']:>8.1f} {r['rows_per_s']:>10.0f} "
              f"{r['us_per_row']:>7.2f}", flush=True)
    for small, big in zip(results, results[1:]):
        rows_x = big["rows"] / small["rows"]
        time_x = big["seconds"] / small["seconds"]
        print(f"growth {small['users']}x{small['days']} -> {big['users']}x{big['days']}: "
              f"rows x{rows_x:.1f}, time x{time_x:.1f}, "
              f"cost per row x{big['us_per_row'] / small['us_per_row']:.2f}")
    if not args.keep and not args.out:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
