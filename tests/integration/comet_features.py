"""The daily aggregates and the feature tables of a warehouse, recomputed in a session that
runs its queries on Apache DataFusion Comet (a separate process: Comet's plugin and shuffle
are set when the JVM starts). Not a test module; tests/integration/test_comet.py runs it.

    python comet_features.py SETTINGS_JSON OUT

SETTINGS_JSON: the configuration overrides of the warehouse's run (paths, features, storage).
Writes OUT/daily and OUT/features (Parquet) and prints one JSON line: the Comet version and
the Comet operators of the daily aggregation's executed plan.
"""

from __future__ import annotations

import json
import re
import sys

from mktpipe.catalog import USER_FEATURES
from mktpipe.config import load_config
from mktpipe.features import columns as C
from mktpipe.features.daily import daily_aggregates, read_bronze_days
from mktpipe.features.user_features import build_user_features, load_sources
from mktpipe.ingest import landing
from mktpipe.session import get_spark
from mktpipe.storage import open_store


def main(settings: str, out: str) -> None:
    tree = json.loads(settings)
    tree.setdefault("spark", {})["accelerator"] = "comet"
    config = load_config("test", tree)
    spark = get_spark(config)
    store = open_store(spark, config)
    events, orders, videos = read_bronze_days(spark, store,
                                              landing.landing_dates(config.paths.landing))
    daily = daily_aggregates(events, videos, orders)
    daily.write.parquet(f"{out}/daily")
    plan = daily._jdf.queryExecution().executedPlan().toString()
    sources, _ = load_sources(spark, store)
    snapshots = [r[0] for r in store.read(USER_FEATURES).select(C.SNAPSHOT_DATE).distinct()
                 .orderBy(C.SNAPSHOT_DATE).collect()]
    for snapshot in snapshots:
        (build_user_features(sources, snapshot, config, "comet")
         .write.mode("append").parquet(f"{out}/features"))
    print(json.dumps({
        "comet_version": spark.conf.get("spark.comet.version", None),
        "snapshots": [s.isoformat() for s in snapshots],
        "operators": sorted(set(re.findall(r"\bComet\w+", plan))),
    }), flush=True)
    spark.stop()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
