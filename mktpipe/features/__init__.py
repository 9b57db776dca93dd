"""Daily aggregates, point-in-time user features and labels.

Stages (each returns a StageResult for the run manifest):

    run_daily(spark, config, run_date, store=None)          -> silver.user_daily
    run_daily_range(spark, config, dates, store=None)       -> silver.user_daily (backfill)
    run_features(spark, config, snapshot_date, store=None)  -> gold.user_features
    run_labels(spark, config, snapshot_date, store=None)    -> gold.user_labels

The feature table (names, units, windows) is documented in ``mktpipe.features.columns``.
"""

from mktpipe.features.daily import run_daily, run_daily_range
from mktpipe.features.labels import build_labels, run_labels
from mktpipe.features.user_features import build_user_features, run_features

__all__ = [
    "build_labels",
    "build_user_features",
    "run_daily",
    "run_daily_range",
    "run_features",
    "run_labels",
]
