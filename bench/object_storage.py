"""The same backfill with every ``paths.*`` on local disk and on S3, side by side.

One generated landing zone (``--users`` x ``--days``), one Spark session (``get_spark``, the
resolved jars: the ``s3`` profile must be there), an S3-compatible server (moto's server mode,
in its own process on 127.0.0.1) and the environment pointing at it, as a user would set it
(``AWS_ENDPOINT_URL``, ``AWS_REGION``, ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``)
before the JVM starts. The landing zone is uploaded to the bucket (timed apart), then
``run_backfill`` runs once per target in ``--order`` (default ``local,s3``), each into a fresh
warehouse, models, reports and exports location.

Printed: seconds per stage for each target (from the run manifests), the ratio s3 / local per
stage and for the backfill's wall time, and the upload's throughput. A loopback S3 server
measures what object storage costs mktpipe itself (more requests: listing instead of a
directory walk, copy + delete instead of a rename, one PUT per file), not a network: real
S3 adds latency per request on top.

    MKTPIPE__SPARK__JARS_DIR=$PWD/jars .venv/bin/python bench/object_storage.py
    .venv/bin/python bench/object_storage.py --users 1000 --days 30 --order local,s3,s3,local

The configuration is the integration tests' small one, read from tests/conftest.py (7/30-day
windows, 7 and 14-day label horizons, a snapshot every 10 days, small XGBoost models), so 30
days give three snapshots and a trained model.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

BUCKET = "mktpipe-bench"
REPO = Path(__file__).resolve().parents[1]


def suite_settings() -> dict:
    """The integration tests' small settings (``PIPELINE_SETTINGS`` in tests/conftest.py, the
    one copy), read from that file so the bench and the tests cannot drift apart."""
    spec = importlib.util.spec_from_file_location("mktpipe_test_conftest",
                                                  REPO / "tests" / "conftest.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.PIPELINE_SETTINGS


PATH_KEYS = ("warehouse", "models", "reports", "exports", "checkpoints")


def start_s3(log: Path) -> tuple[subprocess.Popen, str]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p",
                               str(port)], stdout=log.open("wb"), stderr=subprocess.STDOUT)
    return server, f"http://127.0.0.1:{port}"


def create_bucket(server: subprocess.Popen) -> None:
    import boto3

    deadline = time.monotonic() + 60
    while True:
        try:
            boto3.client("s3").create_bucket(Bucket=BUCKET)
            return
        except Exception:
            if server.poll() is not None or time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=300)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--order", default="local,s3",
                        help="targets in run order, comma-separated (local, s3)")
    args = parser.parse_args(argv)
    order = [t.strip() for t in args.order.split(",") if t.strip()]
    if set(order) != {"local", "s3"}:
        parser.error(f"--order needs local and s3 (each at least once), not {order}")

    root = Path(tempfile.mkdtemp(prefix="mktpipe-bench-s3-"))
    server, endpoint = start_s3(root / "moto.log")
    os.environ.update({"AWS_ENDPOINT_URL": endpoint, "AWS_REGION": "us-east-1",
                       "AWS_ACCESS_KEY_ID": "bench-key-id", "AWS_SECRET_ACCESS_KEY": "bench",
                       "MKTPIPE_EXPORT_KEY": "bench-export-key-0123456789"})
    os.environ.pop("AWS_ENDPOINT_URL_S3", None)
    try:
        create_bucket(server)
        return run(args, order, root)
    finally:
        server.terminate()
        server.wait(timeout=30)


def run(args, order: list[str], root: Path) -> int:
    from mktpipe.config import load_config
    from mktpipe.generate import generate
    from mktpipe.pipeline import run_backfill
    from mktpipe.session import capabilities, get_spark
    from mktpipe.storage import files

    start = dt.date(2026, 8, 1)
    end = start + dt.timedelta(days=args.days - 1)
    local_landing = root / "landing"
    summary = generate(out=local_landing, users=args.users, days=args.days, seed=5,
                       start_date=start, dirty_rate=0.02)
    began = time.perf_counter()
    files.upload(local_landing, f"s3://{BUCKET}/landing")
    upload_s = time.perf_counter() - began
    size = sum(p.stat().st_size for p in local_landing.rglob("*") if p.is_file())

    base = load_config("local", suite_settings())
    spark = get_spark(base)
    if not capabilities(spark).s3a:
        print("Spark cannot reach s3:// here: " + capabilities(spark).reasons["s3a"])
        return 2
    stages: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    walls: dict[str, list[float]] = defaultdict(list)
    for i, target in enumerate(order):
        cfg = base.model_copy(deep=True)
        prefix = f"s3://{BUCKET}/run{i}" if target == "s3" else str(root / f"run{i}")
        for key in PATH_KEYS:
            setattr(cfg.paths, key, f"{prefix}/{key}")
        if target == "s3":
            cfg.paths.landing, cfg.paths.truth = (f"s3://{BUCKET}/landing",
                                                  f"s3://{BUCKET}/landing/_truth")
        else:
            cfg.paths.landing, cfg.paths.truth = str(local_landing), str(local_landing / "_truth")
        began = time.perf_counter()
        manifest = run_backfill(spark, cfg, start, end)
        walls[target].append(time.perf_counter() - began)
        for result in manifest.stages:
            stages[result.stage][target].append(result.elapsed_s)
        print(f"run {i + 1}/{len(order)} {target}: {manifest.status} in {walls[target][-1]:.1f} s")

    def total(target: str, name: str) -> float:  # one backfill's seconds in that stage
        return sum(stages[name][target]) / max(1, len(walls[target]))

    print(f"\n{args.users} users x {args.days} days: {summary.total_rows:,} landing rows "
          f"({size / 1e6:.1f} MB); upload to the bucket {upload_s:.1f} s "
          f"({size / 1e6 / upload_s:.1f} MB/s); load average {os.getloadavg()[0]:.1f}")
    print(f"{'stage':<12}{'local s':>10}{'s3 s':>10}{'s3/local':>10}")
    for name in stages:
        a, b = total("local", name), total("s3", name)
        print(f"{name:<12}{a:>10.1f}{b:>10.1f}{(b / a if a else float('nan')):>10.2f}")
    a = sum(walls["local"]) / len(walls["local"])
    b = sum(walls["s3"]) / len(walls["s3"])
    print(f"{'backfill':<12}{a:>10.1f}{b:>10.1f}{b / a:>10.2f}")
    spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
