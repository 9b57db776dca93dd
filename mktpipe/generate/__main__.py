"""``python -m mktpipe.generate --out DIR --users N --days D --seed S --start-date YYYY-MM-DD``."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import sys

from mktpipe.generate.core import generate


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m mktpipe.generate",
                                     description="Write a synthetic TikTok landing zone.")
    parser.add_argument("--out", required=True, help="landing folder to write")
    parser.add_argument("--users", type=int, required=True)
    parser.add_argument("--days", type=int, required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--start-date", type=dt.date.fromisoformat, required=True,
                        help="first date, YYYY-MM-DD")
    parser.add_argument("--dirty-rate", type=float, default=0.0,
                        help="extra bad records as a share of each file's rows")
    parser.add_argument("--truth-dir", default=None, help="default <out>/_truth")
    parser.add_argument("--log-level", default="INFO")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: "
                        "%(message)s")
    summary = generate(args.out, args.users, args.days, args.seed, args.start_date,
                       dirty_rate=args.dirty_rate, truth_dir=args.truth_dir)
    brief = {k: v for k, v in summary.to_dict().items() if k not in ("rows", "injected")}
    print(json.dumps(brief, indent=2))  # the command's own output
    return 0


if __name__ == "__main__":
    sys.exit(main())
