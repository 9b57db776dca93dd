"""One session-scoped SparkSession for the whole suite (local[2], 2 shuffle partitions, no UI)."""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from pathlib import Path

import pytest

from mktpipe.config import load_config
from mktpipe.session import get_spark

os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")


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
