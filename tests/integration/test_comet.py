"""Apache DataFusion Comet (``spark.accelerator: comet``) gives the tables Spark gives.

The shared 30-day backfill's daily aggregates and feature tables (every snapshot) are
recomputed in another process whose queries run on Comet, and compared with what the backfill
wrote on Spark's own engine: the same rows, the floating sums within 1e-9 (Comet adds them in
another order). The plan must hold Comet operators, so a session that quietly fell back to
Spark cannot pass. Skipped, with the reason, where `make jars` could not resolve the jar.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from chispa import assert_approx_df_equality
from conftest import PIPELINE_SETTINGS
from pyspark.sql import functions as F
from pyspark.sql.types import MapType

from mktpipe.catalog import USER_DAILY, USER_FEATURES
from mktpipe.features import columns as C
from mktpipe.session import comet_jar
from mktpipe.storage import open_store

pytestmark = pytest.mark.integration
SCRIPT = Path(__file__).with_name("comet_features.py")


def _comparable(df):
    """Maps as sorted entry arrays (rows are sorted to compare; maps have no order)."""
    return df.select(*[F.array_sort(F.map_entries(f.name)).alias(f.name)
                       if isinstance(f.dataType, MapType) else F.col(f.name)
                       for f in df.schema.fields])


def test_comet_computes_the_daily_and_feature_tables_spark_computed(
        spark, pipeline_cfg, pipeline_backfill, tmp_path):
    if comet_jar(pipeline_cfg) is None:
        pytest.skip("no comet-spark-spark4.1_2.13 jar in the jars folder: `make jars` resolves "
                    "it (the 'comet' profile of jvm/pom.xml) where Maven Central is reachable")
    assert pipeline_backfill["manifest"].status == "ok"
    settings = {**PIPELINE_SETTINGS, "paths": pipeline_cfg.paths.model_dump(mode="json"),
                "storage": {"backend": pipeline_cfg.storage.backend},
                "spark": {"jars_dir": pipeline_cfg.spark.jars_dir}}
    done = subprocess.run([sys.executable, str(SCRIPT), json.dumps(settings), str(tmp_path)],
                          capture_output=True, text=True, timeout=600,
                          env={**os.environ, "PYTHONPATH": str(SCRIPT.parents[2])})
    assert done.returncode == 0, done.stderr[-3000:]
    ran = json.loads(done.stdout.strip().splitlines()[-1])
    assert ran["comet_version"], "the session did not load Comet"
    assert "CometHashAggregate" in ran["operators"], ran  # the aggregation ran natively
    assert len(ran["snapshots"]) == 3

    store = open_store(spark, pipeline_cfg)
    for table, got in ((USER_DAILY, "daily"), (USER_FEATURES, "features")):
        expected = store.read(table).drop(C.RUN_ID)
        actual = spark.read.parquet(str(tmp_path / got)).drop(C.RUN_ID).select(
            *expected.columns)
        assert actual.count() == expected.count() > 0
        assert_approx_df_equality(_comparable(actual), _comparable(expected), 1e-9,
                                  ignore_row_order=True, ignore_nullable=True)
