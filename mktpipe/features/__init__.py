"""Daily aggregates, point-in-time user features and labels.

Stages (``mktpipe.stage``: each takes a StageContext first, or the older
``spark, config`` pair, and returns a StageResult for the run manifest):

    run_daily(ctx, run_date)               -> silver.user_daily
    run_daily_range(ctx, dates)            -> silver.user_daily (backfill)
    run_features(ctx, snapshot_date)       -> gold.user_features
    run_labels(ctx, snapshot_date)         -> gold.user_labels
    refresh_labels(ctx, snapshot_date)     -> gold.user_labels of the snapshots whose label
                                              windows close at snapshot_date (daily run)

The feature table (names, units, windows) is documented in ``mktpipe.features.columns``.
"""

from mktpipe.features.daily import run_daily, run_daily_range
from mktpipe.features.labels import build_labels, refresh_labels, run_labels
from mktpipe.features.user_features import build_user_features, run_features

__all__ = [
    "build_labels",
    "build_user_features",
    "refresh_labels",
    "run_daily",
    "run_daily_range",
    "run_features",
    "run_labels",
]
