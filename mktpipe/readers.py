"""What one stage reads of what another stage wrote: small queries over the catalog's tables
and the model registry, in one place, so that no stage imports another stage's module.

==========================  ==================================  ==============================
reader                      made by                             read by
==========================  ==================================  ==============================
:func:`anomaly_flags`       anomalies (models.anomaly_stage)    train, score
:func:`data_end`            ingest (bronze.events)              labels, train
:func:`built_data_ends`     labels (features.labels)            labels, train
:func:`labels_final`        labels                              labels, train
==========================  ==================================  ==============================
"""

from __future__ import annotations

import datetime as dt

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from mktpipe import schemas as S
from mktpipe.catalog import BRONZE_EVENTS, USER_ANOMALIES, USER_LABELS
from mktpipe.errors import InputError
from mktpipe.storage import TableStore


def anomaly_flags(store: TableStore, snapshot_date: dt.date, what: str) -> DataFrame:
    """The silver.user_anomalies rows of ``snapshot_date`` (user_id, is_anomalous,
    anomaly_reason, max_robust_z); InputError naming ``what`` needs them when the anomalies
    stage has not run for that snapshot."""
    flags = (store.read(USER_ANOMALIES).filter(F.col(S.SNAPSHOT_DATE) == F.lit(snapshot_date))
             if store.exists(USER_ANOMALIES) else None)
    if flags is None or flags.limit(1).count() == 0:
        raise InputError(f"{what} {snapshot_date}: {USER_ANOMALIES} has no partition for this "
                         f"snapshot; run `mktpipe anomalies --snapshot-date {snapshot_date}` "
                         "first (`mktpipe run` runs it before train and score)")
    return flags.select(S.USER_ID, "is_anomalous", "anomaly_reason", "max_robust_z")


def data_end(store: TableStore) -> dt.date | None:
    """The day after the last event_date in bronze.events (exclusive end), None if empty."""
    last = store.read(BRONZE_EVENTS).agg(F.max("event_date").alias("last")).first()["last"]
    return None if last is None else last + dt.timedelta(days=1)


def built_data_ends(store: TableStore) -> dict[dt.date, dt.date | None]:
    """{snapshot: the data end its gold.user_labels rows were built with} (one small
    aggregate); None for a partition written before labels carried ``data_end``."""
    if not store.exists(USER_LABELS):
        return {}
    labels = store.read(USER_LABELS)
    end = (F.min(S.DATA_END) if S.DATA_END in labels.columns
           else F.lit(None).cast("date")).alias("end")
    return {r[S.SNAPSHOT_DATE]: r["end"]
            for r in labels.groupBy(S.SNAPSHOT_DATE).agg(end).collect()}


def labels_final(built: dt.date | None, snapshot: dt.date, horizon_days: int) -> bool:
    """Whether labels built with data end ``built`` are final for a ``horizon_days`` label."""
    return built is not None and built >= snapshot + dt.timedelta(days=horizon_days)
