"""One session-scoped SparkSession for the whole suite (local[2], 2 shuffle partitions, no UI)."""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import shutil
import tempfile
from pathlib import Path

import pytest

from mktpipe.config import load_config
from mktpipe.session import get_spark

os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
# the registry's store comes from each test's config, never from the developer's environment
os.environ.pop("MLFLOW_TRACKING_URI", None)
os.environ.pop("MLFLOW_REGISTRY_URI", None)


@pytest.fixture(scope="session")
def tmp_root():
    root = Path(tempfile.mkdtemp(prefix="mktpipe-tests-"))
    yield root
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def config(tmp_root):
    """The test configuration with every path inside a temporary folder."""
    return load_config(
        "test",
        {
            "paths": {
                "landing": str(tmp_root / "landing"),
                "warehouse": str(tmp_root / "warehouse"),
                "truth": str(tmp_root / "landing" / "_truth"),
                "models": str(tmp_root / "models"),
                "reports": str(tmp_root / "reports"),
                "exports": str(tmp_root / "exports"),
                "checkpoints": str(tmp_root / "checkpoints"),
            },
            "spark": {"conf": {"spark.sql.warehouse.dir": str(tmp_root / "spark-warehouse")}},
        },
    )


@pytest.fixture(scope="session")
def spark(config):
    logging.getLogger("py4j").setLevel(logging.WARNING)
    session = get_spark(config)
    yield session
    session.stop()


S3_BUCKET = "mktpipe-lake"


@contextlib.contextmanager
def s3_server(log_dir: Path, env: pytest.MonkeyPatch):
    """An S3-compatible server (moto's server mode) on 127.0.0.1, a bucket in it, and the
    environment (through ``env``) pointing at it: credentials come from the environment only.
    Yields the bucket's ``s3://`` URI.

    The server runs in its own process: in a thread of this one it would wait on the GIL
    while a native client (delta-rs) blocks in a request to it."""
    pytest.importorskip(
        "moto.server", reason="moto (a dev dependency) is not installed: run `make setup`")
    import socket
    import subprocess
    import sys
    import time

    import boto3

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    log = (log_dir / "moto.log").open("wb")
    server = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p",
                               str(port)], stdout=log, stderr=subprocess.STDOUT)
    values = {"AWS_ACCESS_KEY_ID": "test-key-id", "AWS_SECRET_ACCESS_KEY": "test-secret",
              "AWS_REGION": "us-east-1", "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}"}
    for name, value in values.items():
        env.setenv(name, value)
    env.delenv("AWS_ENDPOINT_URL_S3", raising=False)
    try:
        client = boto3.client("s3")
        deadline = time.monotonic() + 60
        while True:
            try:
                client.create_bucket(Bucket=S3_BUCKET)
                break
            except Exception:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        yield f"s3://{S3_BUCKET}"
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()


@pytest.fixture
def s3(monkeypatch, tmp_path):
    """``s3_server`` for one test."""
    with s3_server(tmp_path, monkeypatch) as bucket:
        yield bucket


# English words no Spanish text contains (function words and the report's vocabulary); a
# Spanish page showing one of them has a label left untranslated
ENGLISH_WORDS = frozenset("""
the of and with from by for to is are was were not on at than their this that these which
per days day users user customers customer available forecast forecasts model models last
above below high low average rate share segment segments run rows report tier tiers views
orders revenue events alerts alert quality trend trends churn intent value values data time
score scores week weekly daily snapshot generated none other community communities language
all reset filters filter click bar chart recommended action why step kept terms method trial
trials seconds best search validation positive precision recall probability observed
predicted random errors mean noise strength held changes change regime confidence anomalous
anomaly expected actual source read written quarantined duplicates balanced reasons stage
stages date in out latest recent failures influence percentile incoming links rank density
creators category mixed details tables storage produced self contained file scripts fonts
images loaded anywhere comparison previous scored likes comments shares spend follows
followers engagement engagements active clicks purchases lifetime interval winner chosen
""".split())
_SKIPPED = ("script", "style", "code", "svg")


def _visible_text(html: str) -> str:
    from html.parser import HTMLParser

    class Text(HTMLParser):
        def __init__(self) -> None:
            super().__init__()
            self.depth, self.parts = 0, []

        def handle_starttag(self, tag, attrs):
            if tag in _SKIPPED:
                self.depth += 1
            # the text a reader sees in attributes too
            self.parts.extend(v for k, v in attrs if k in ("title", "placeholder") and v)

        def handle_endtag(self, tag):
            if tag in _SKIPPED and self.depth:
                self.depth -= 1

        def handle_data(self, data):
            if not self.depth:
                self.parts.append(data)

    parser = Text()
    parser.feed(html)
    return "\n".join(parser.parts)


def english_in(html: str) -> list[str]:
    """The English words in ``html``'s visible text, outside <code>, commands in backticks
    and identifiers (table names such as gold.alerts, keys such as user_daily, file names)."""
    import re

    text = _visible_text(html)
    text = re.sub(r"`[^`]*`", " ", text)
    text = re.sub(r"[\w-]+(?:[._/][\w-]+)+", " ", text)  # gold.alerts, _runs/x.json, a/b
    text = re.sub(r"\w*_\w*", " ", text)  # keys: user_daily, MALFORMED_RECORD
    text = re.sub(r"[A-Za-z]+(?:-\w+)*-\d\w*", " ", text)  # ids: run-sample-1
    words = re.findall(r"[A-Za-z]+", text)
    return sorted({w for w in words if w.lower() in ENGLISH_WORDS})


@pytest.fixture(scope="session")
def english_words():
    """``english_words(html) -> list[str]``: English words left in a page's visible text."""
    return english_in


REPORT_SNAPSHOT = "2026-03-10"  # the report sample's snapshot (mktpipe.report.sample)


@pytest.fixture(scope="session")
def sample_report(spark, config, tmp_path_factory):
    """The report's sample warehouse (mktpipe.report.sample: tables, registry, manifests,
    trends tables) and the report of its snapshot, built once for the report tests and the
    report browser test: (config with every path under its own folder, the rows written, the
    report stage's result, the page as written)."""
    import datetime as dt

    from mktpipe.report.sample import build_sample
    from mktpipe.report.stage import run_report

    root = tmp_path_factory.mktemp("report")
    keys = ("landing", "warehouse", "truth", "models", "reports", "exports", "checkpoints")
    paths = config.paths.model_copy(update={k: str(root / k) for k in keys})
    cfg = config.model_copy(update={"paths": paths})
    sample = build_sample(spark, cfg, dt.date.fromisoformat(REPORT_SNAPSHOT))
    result = run_report(spark, cfg, REPORT_SNAPSHOT, run_id="report-test-1")
    page = Path(result.details["path"]).read_text(encoding="utf-8")
    return cfg, sample, result, page


# ------------------------------------------------------------------ the pipeline's backfill
# One 30-day backfill of generated data, run once per session in this process and shared by
# tests/integration/test_pipeline.py (the pipeline's behaviour), test_ingest_generated.py (its
# ingest against the generator's planted defects) and test_cluster.py (which re-runs its last
# date through spark-submit on a standalone cluster, into a copy of this warehouse, and
# compares every table with this one). It writes through delta-rs, the backend a JVM without
# the delta-spark jar uses, so that the cluster comparison also shows the jar-less default
# equals the jar-backed stack. Small horizons and windows keep it to three snapshots (a 10-day
# schedule over 30 days).
PIPELINE_START = dt.date(2026, 8, 1)
PIPELINE_DAYS = 30
PIPELINE_END = PIPELINE_START + dt.timedelta(days=PIPELINE_DAYS - 1)
PIPELINE_EXPORT_KEY = "test-export-key-0123456789"
# on top of conf/test.yaml; test_cluster hands them to spark-submit as MKTPIPE__* variables,
# and bench/object_storage.py reads them from here (one copy)
PIPELINE_SETTINGS: dict = {
    "features": {"windows_days": [7, 30], "active_window_days": 30},
    "labels": {"churn_horizon_days": 7, "churn_active_before_days": 14,
               "clv_horizon_days": 14, "purchase_horizon_days": 7},
    "pipeline": {"snapshot_every_days": 10},
    "models": {"training_snapshots": 3,
               "churn": {"xgb_params": {"n_estimators": 40, "max_depth": 3}},
               "intent": {"xgb_params": {"n_estimators": 40, "max_depth": 3}},
               "clv": {"xgb_params": {"n_estimators": 40, "max_depth": 3}},
               "segmentation": {"k_min": 2, "k_max": 4}},
}


def settings_env(tree: dict, prefix: str = "MKTPIPE") -> dict[str, str]:
    """``tree`` (nested settings) as the MKTPIPE__SECTION__KEY variables that load_config
    merges the same way (values as JSON, which YAML reads)."""
    import json

    out: dict[str, str] = {}
    for key, value in tree.items():
        name = f"{prefix}__{key.upper()}"
        if isinstance(value, dict):
            out.update(settings_env(value, name))
        else:
            out[name] = json.dumps(value)
    return out


@pytest.fixture(scope="session")
def pipeline_landing(tmp_path_factory) -> Path:
    """The backfill's landing zone (300 users x 30 days, 2 % dirty rows), with the
    generator's truth in its _truth folder."""
    from mktpipe.generate import generate

    landing = tmp_path_factory.mktemp("pipeline-landing") / "landing"
    generate(out=landing, users=300, days=PIPELINE_DAYS, seed=5, start_date=PIPELINE_START,
             dirty_rate=0.02)
    return landing


@pytest.fixture(scope="session")
def pipeline_cfg(pipeline_landing, tmp_path_factory):
    root = tmp_path_factory.mktemp("pipeline")
    paths = {name: str(root / name) for name in
             ("warehouse", "models", "reports", "exports", "checkpoints")}
    paths.update(landing=str(pipeline_landing), truth=str(pipeline_landing / "_truth"))
    return load_config("test", {
        **PIPELINE_SETTINGS,
        "paths": paths,
        "storage": {"backend": "delta-rs"},
        "spark": {"conf": {"spark.sql.warehouse.dir": str(root / "spark-warehouse")}},
    })


@pytest.fixture(scope="session")
def pipeline_backfill(spark, pipeline_cfg) -> dict:
    """``run_backfill`` over the 30 days: {"manifest": the RunManifest, "started": when}."""
    from mktpipe.pipeline import run_backfill

    started = dt.datetime.now(dt.timezone.utc)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(pipeline_cfg.export.key_env, PIPELINE_EXPORT_KEY)
        manifest = run_backfill(spark, pipeline_cfg, PIPELINE_START, PIPELINE_END)
    return {"manifest": manifest, "started": started}
