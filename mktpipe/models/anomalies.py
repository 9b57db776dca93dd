"""Users with anomalous engagement (bot-like bursts and levels, impossible watch time), by robust
z-scores over a daily series (user_id, activity_date, events, views, watch_seconds, ...).

Per metric, on log1p(max(x, 0)) by default (engagement counts are heavy-tailed; robust z-scores
assume a roughly symmetric spread, and on the raw scale ordinary heavy users would be flagged):

* burst: z = (max daily value - max(user's median, median over users)) / scale, for users with
  at least ``min_days`` days: one day far above the user's own typical day *and* above a
  typical user's day. The scale is the user's own, but never below the spread across users
  (next item). So a usually idle user's first busy day is no bot, while a jump by far more
  than users differ from each other is;
* level: z = (user's median - median over users) / scale over users: a user whose typical day
  is far above everybody else's (a script that never sleeps).

scale = max(1.4826 MAD, 1.2533 mean absolute deviation, min_scale): MAD estimates a standard
deviation for normal data; when more than half the values are equal MAD is 0 and the mean
absolute deviation stands in (the Iglewicz-Hoaglin convention); ``min_scale`` (default 0.5 in
log1p units, a 1.65x change) keeps near-constant series from turning a small wobble into a huge z.
Medians and MADs are ``percentile_approx`` per user and across users (an actual value: the
lower median for an even count). Only upward deviations count: inactivity is not an anomaly.

A user is anomalous when any z exceeds ``z_threshold`` (default 6) or any day has more than
``max_watch_seconds_per_day`` (default 20 h) of watch time. Flagged users are meant to be left
out of training (:func:`exclude_anomalous`) and marked in outputs (:func:`mark_anomalous`).
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T_

from mktpipe.model_settings import ANOMALY_METHODS, AnomalySettings, resolve
from mktpipe.models.preprocess import is_id_like, require_columns

log = logging.getLogger(__name__)

MAD_TO_SD = 1.4826
MEAN_AD_TO_SD = 1.2533
OUTPUT_COLUMNS = ("is_anomalous", "anomaly_reason", "max_robust_z")


def settings_from(config=None) -> AnomalySettings:
    return resolve(config, "anomalies", AnomalySettings)


def _metric_columns(daily: DataFrame, metrics, user_col: str, date_col: str) -> list[str]:
    if metrics is not None:
        metrics = list(metrics)
        require_columns(daily, metrics, "detect_anomalies")
        return metrics
    out = [f.name for f in daily.schema.fields
           if isinstance(f.dataType, T_.NumericType) and f.name not in (user_col, date_col)
           and not is_id_like(f.name)]
    if not out:
        raise ValueError(f"detect_anomalies: no numeric metric columns in {daily.columns}")
    return out


def _scale(mad: Column, mean_ad: Column, min_scale: float) -> Column:
    return F.greatest(F.lit(MAD_TO_SD) * mad, F.lit(MEAN_AD_TO_SD) * mean_ad, F.lit(min_scale))


def detect_anomalies(daily: DataFrame, metrics=None, config=None, user_col: str = "user_id",
                     date_col: str = "activity_date", method: str | None = None) -> DataFrame:
    """One row per user of ``daily``: user_col, is_anomalous (bool), anomaly_reason (null when
    not anomalous, else "; "-joined reasons), max_robust_z (largest z of any kind; null when
    none could be computed). ``metrics``: the columns to score (default: every numeric column
    but the user, date and id-like ones). ``method`` (default the settings'): ``zscore`` the
    rules of the module docstring (scans ``daily`` three times); ``isolation_forest`` or
    ``lof`` a scikit-learn model fitted on a seeded sample of at most ``sample_rows`` users'
    profiles and applied to every user with ``mapInPandas``, flagging the ``contamination``
    share with the highest scores; ``vote``: flagged by at least two of the three."""
    s = settings_from(config)
    method = method or s.method
    if method not in ANOMALY_METHODS:
        raise ValueError(f"detect_anomalies: method must be one of {ANOMALY_METHODS}, got "
                         f"{method!r}")
    users, names, zscore = _zscores(daily, metrics, s, user_col, date_col)
    if method == "zscore":
        return zscore
    profile = users.select(user_col, *_profile_columns(len(names)))
    learned = {m: model_flags(profile, m, s, user_col)
               for m in (("isolation_forest", "lof") if method == "vote" else (method,))}
    out = zscore
    for flags in learned.values():
        out = out.join(flags, user_col, "left")
    if method == "vote":
        votes = (F.col("is_anomalous").cast("int")
                 + sum(F.coalesce(F.col(f"_flag_{m}"), F.lit(False)).cast("int")
                       for m in learned))
        reason = F.concat_ws("; ", F.when(F.col("is_anomalous"), F.col("anomaly_reason")),
                             *[F.col(f"_reason_{m}") for m in learned])
        flagged = votes >= 2
    else:
        flagged = F.coalesce(F.col(f"_flag_{method}"), F.lit(False))
        reason = F.col(f"_reason_{method}")
    return out.select(user_col, flagged.alias("is_anomalous"),
                      F.when(flagged, reason).alias("anomaly_reason"), "max_robust_z")


def _profile_columns(n_metrics: int) -> list[Column]:
    """A user's profile for the learned detectors: per metric the typical day (median), the
    busiest day and their gap (all log1p), and the largest day's watch seconds (log1p)."""
    cols = []
    for i in range(n_metrics):
        cols += [F.col(f"_med{i}").alias(f"p_med{i}"), F.col(f"_max{i}").alias(f"p_max{i}"),
                 (F.col(f"_max{i}") - F.col(f"_med{i}")).alias(f"p_gap{i}")]
    return [*cols, F.log1p(F.coalesce(F.col("_max_watch"), F.lit(0.0))).alias("p_watch")]


def model_flags(profile: DataFrame, method: str, settings: AnomalySettings,
                user_col: str = "user_id") -> DataFrame:
    """(user_col, _flag_<method>, _score_<method>, _reason_<method>) for every row of
    ``profile`` (one row per user, numeric feature columns): a scikit-learn IsolationForest or
    LocalOutlierFactor (novelty mode, on robust-scaled features) fitted on at most
    ``settings.sample_rows`` rows chosen by a seeded hash of the user id (the only data the
    driver receives; the same whatever the partitioning) and applied to every row with
    ``mapInPandas``. Higher scores are more anomalous; the flag is a score above the
    sample's (1 - contamination) quantile."""
    from sklearn.ensemble import IsolationForest
    from sklearn.neighbors import LocalOutlierFactor
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import RobustScaler

    features = [c for c in profile.columns if c != user_col]
    # a seeded hash order, not Spark's per-partition sampling: the same users and the same row
    # order whatever the partitioning (local or cluster), so the fitted model is the same
    sample = (profile.orderBy(F.xxhash64(F.col(user_col), F.lit(settings.seed)), user_col)
              .limit(settings.sample_rows)  # bounded: sample_rows rows of a few numbers
              .toPandas().sort_values(user_col, kind="stable").reset_index(drop=True))
    x = sample[features].fillna(0.0).to_numpy(dtype=float)
    user_type = profile.schema[user_col].dataType.simpleString()
    schema = (f"{user_col} {user_type}, _flag_{method} boolean, _score_{method} double, "
              f"_reason_{method} string")
    if len(x) < 10:
        log.warning("anomalies %s: %d users, too few to fit; nobody flagged by it", method,
                    len(x))
        return profile.select(user_col, F.lit(False).alias(f"_flag_{method}"),
                              F.lit(None).cast("double").alias(f"_score_{method}"),
                              F.lit(None).cast("string").alias(f"_reason_{method}"))
    if method == "isolation_forest":
        model = IsolationForest(n_estimators=200, random_state=settings.seed).fit(x)
        label = "isolation forest"
    else:
        model = make_pipeline(RobustScaler(), LocalOutlierFactor(
            n_neighbors=min(settings.n_neighbors, len(x) - 1), novelty=True)).fit(x)
        label = "local outlier factor"
    threshold = float(np.quantile(-model.score_samples(x), 1.0 - settings.contamination))

    def score(batches):
        for pdf in batches:
            values = -model.score_samples(pdf[features].fillna(0.0).to_numpy(dtype=float))
            flag = values > threshold
            yield pd.DataFrame({
                user_col: pdf[user_col], f"_flag_{method}": flag, f"_score_{method}": values,
                f"_reason_{method}": [f"{label}: score {v:.3f} > {threshold:.3f}" if f
                                      else None for v, f in zip(values, flag)]})

    return profile.mapInPandas(score, schema)


def _zscores(daily: DataFrame, metrics, s: AnomalySettings, user_col: str, date_col: str):
    """(per-user frame with _med/_max/_max_watch columns, metric names, the z-score flags)."""
    min_scale = s.min_scale
    require_columns(daily, [user_col], "detect_anomalies")
    names = _metric_columns(daily, metrics, user_col, date_col)

    def value(c: str) -> Column:
        x = F.when(F.col(c).isNotNull(), F.greatest(F.col(c).cast("double"), F.lit(0.0)))
        return F.log1p(x) if s.log_scale else x

    has_watch = s.watch_col in daily.columns
    vals = daily.select(F.col(user_col), *[value(c).alias(f"_v{i}") for i, c in enumerate(names)],
                        (F.col(s.watch_col).cast("double") if has_watch else F.lit(None)
                         .cast("double")).alias("_watch"))
    per_user = vals.groupBy(user_col).agg(
        F.count(F.lit(1)).alias("_days"), F.max("_watch").alias("_max_watch"),
        *[F.percentile_approx(f"_v{i}", 0.5).alias(f"_med{i}") for i in range(len(names))],
        *[F.max(f"_v{i}").alias(f"_max{i}") for i in range(len(names))])
    deviation = vals.join(per_user.select(user_col, *[f"_med{i}" for i in range(len(names))]),
                          on=user_col, how="inner")
    spread = deviation.groupBy(user_col).agg(*[
        agg(F.abs(F.col(f"_v{i}") - F.col(f"_med{i}"))).alias(f"{name}{i}")
        for i in range(len(names))
        for name, agg in (("_mad", lambda c: F.percentile_approx(c, 0.5)), ("_mead", F.avg))])
    users = per_user.join(spread, on=user_col, how="inner")
    across = _across_users(users, len(names), min_scale)
    z_cols, reasons = [], []
    for i, name in enumerate(names):
        own_scale = _scale(F.col(f"_mad{i}"), F.col(f"_mead{i}"), across[i][1])
        burst = F.when(F.col("_days") >= s.min_days,
                       (F.col(f"_max{i}") - F.greatest(F.col(f"_med{i}"), F.lit(across[i][0])))
                       / own_scale)
        level = (F.col(f"_med{i}") - F.lit(across[i][0])) / F.lit(across[i][1])
        for z, text in ((burst, f"{name}: burst z=%.1f over own median"),
                        (level, f"{name}: level z=%.1f over other users")):
            z_cols.append(z)
            reasons.append(F.when(z > s.z_threshold, F.format_string(text, z)))
    watch_limit = F.col("_max_watch") > F.lit(s.max_watch_seconds_per_day)
    reasons.append(F.when(watch_limit, F.format_string(
        f"{s.watch_col}: %.0f s in one day > {s.max_watch_seconds_per_day:.0f}",
        F.col("_max_watch"))))
    reason = F.concat_ws("; ", *reasons)
    return users, names, users.select(
        F.col(user_col), (reason != "").alias("is_anomalous"),
        F.when(reason != "", reason).alias("anomaly_reason"),
        F.greatest(*z_cols).alias("max_robust_z"))  # at least two: burst and level


def _across_users(users: DataFrame, n_metrics: int, min_scale: float) -> list[tuple]:
    """(median, scale) over users of each metric's per-user median (two small aggregations)."""
    medians = users.agg(*[F.percentile_approx(f"_med{i}", 0.5).alias(f"m{i}")
                          for i in range(n_metrics)]).first()
    centre = [float(medians[f"m{i}"] or 0.0) for i in range(n_metrics)]
    dev = [F.abs(F.col(f"_med{i}") - F.lit(centre[i])) for i in range(n_metrics)]
    spread = users.agg(*[F.percentile_approx(d, 0.5).alias(f"mad{i}") for i, d in enumerate(dev)],
                       *[F.avg(d).alias(f"mead{i}") for i, d in enumerate(dev)]).first()
    out = []
    for i in range(n_metrics):
        mad, mead = float(spread[f"mad{i}"] or 0.0), float(spread[f"mead{i}"] or 0.0)
        out.append((centre[i], max(MAD_TO_SD * mad, MEAN_AD_TO_SD * mead, min_scale)))
    return out


def exclude_anomalous(df: DataFrame, anomalies: DataFrame, user_col: str = "user_id"
                      ) -> DataFrame:
    """``df`` without the rows of users flagged in ``anomalies`` (a left anti join)."""
    require_columns(anomalies, [user_col, "is_anomalous"], "exclude_anomalous")
    flagged = anomalies.filter(F.col("is_anomalous")).select(user_col)
    return df.join(flagged, on=user_col, how="left_anti")


def mark_anomalous(df: DataFrame, anomalies: DataFrame, user_col: str = "user_id") -> DataFrame:
    """``df`` plus is_anomalous (false for users not in ``anomalies``) and anomaly_reason."""
    require_columns(anomalies, [user_col, "is_anomalous", "anomaly_reason"], "mark_anomalous")
    base = df.drop(*[c for c in ("is_anomalous", "anomaly_reason") if c in df.columns])
    marks = anomalies.select(user_col, "is_anomalous", "anomaly_reason")
    return (base.join(marks, on=user_col, how="left")
            .withColumn("is_anomalous", F.coalesce(F.col("is_anomalous"), F.lit(False))))


def detection_quality(flags: DataFrame, planted: set, user_col: str = "user_id") -> dict:
    """Precision and recall of ``flags`` (user_col, is_anomalous) against the ``planted``
    anomalous user ids (those that can appear in ``flags``): one small aggregate."""
    from pyspark.sql import types as T

    spark = flags.sparkSession
    truth = spark.createDataFrame([(u,) for u in sorted(planted)],
                                  T.StructType([T.StructField(user_col, T.StringType())]))
    row = (flags.join(truth.withColumn("_planted", F.lit(True)), user_col, "left")
           .agg(F.sum((F.col("is_anomalous") & F.col("_planted").isNotNull()).cast("int"))
                .alias("tp"),
                F.sum(F.col("is_anomalous").cast("int")).alias("flagged"),
                F.sum(F.col("_planted").isNotNull().cast("int")).alias("planted"),
                F.count(F.lit(1)).alias("users")).first())
    tp, flagged, present = int(row["tp"] or 0), int(row["flagged"] or 0), int(row["planted"] or 0)
    return {"users": int(row["users"]), "planted": present, "flagged": flagged,
            "true_positives": tp,
            "precision": tp / flagged if flagged else None,
            "recall": tp / present if present else None}
