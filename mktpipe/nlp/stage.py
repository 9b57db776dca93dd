"""The sentiment stage: bronze.comments -> silver.comment_sentiment, one run date at a time.

silver.comment_sentiment, partitioned by ``comment_date`` (the comment's UTC day):

===============  ======  ====================================================================
column           type    meaning
===============  ======  ====================================================================
comment_id       string  bronze.comments key
user_id          string  the commenter
video_id         string
ts               ts      when the comment was made (UTC)
comment_date     date    partition column (= to_date(ts))
language         string  detected language (ISO 639-1, ``und`` when it cannot be told)
sentiment_score  double  [-1, 1] (mktpipe.nlp.sentiment.score_sentiment)
sentiment_label  string  positive | negative | neutral (config.sentiment thresholds)
_run_id          string
===============  ======  ====================================================================

A run for D scores the bronze.comments partitions [D - features.late_arrival_days, D] and
replaces exactly those partitions, so late comments are scored and a re-run replaces.
"""

from __future__ import annotations

import datetime as dt
import logging

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from mktpipe import schemas as S
from mktpipe.config import Config
from mktpipe.features._common import day_range, span
from mktpipe.quality.manifest import StageResult
from mktpipe.storage import TableStore, open_store

log = logging.getLogger(__name__)

COMMENTS_TABLE = "bronze.comments"
SENTIMENT_TABLE = "silver.comment_sentiment"
COMMENT_DATE = "comment_date"
SENTIMENT_COLUMNS = (
    S.COMMENT_ID, S.USER_ID, S.VIDEO_ID, S.TS, COMMENT_DATE,
    "language", "sentiment_score", "sentiment_label", S.RUN_ID,
)


def score_comments(comments: DataFrame, config: Config, run_id: str) -> DataFrame:
    """bronze.comments rows -> silver.comment_sentiment rows (SENTIMENT_COLUMNS)."""
    # imported here: the scorer pulls in pandas/VADER and the other stages should not need it
    from mktpipe.nlp.sentiment import score_sentiment

    cfg = config.sentiment
    scored = score_sentiment(
        comments.select(S.COMMENT_ID, S.USER_ID, S.VIDEO_ID, S.TS, COMMENT_DATE, "text"),
        text_col="text",
        positive_threshold=cfg.positive_threshold,
        negative_threshold=cfg.negative_threshold,
        backend=cfg.backend,
        model_path=cfg.spark_nlp_model_path,
    )
    return scored.withColumn(S.RUN_ID, F.lit(run_id)).select(*SENTIMENT_COLUMNS)


def run_sentiment_range(
    spark: SparkSession,
    config: Config,
    dates: list[dt.date],
    store: TableStore | None = None,
    run_id: str | None = None,
) -> StageResult:
    """Score the comments of ``dates`` in one batch and replace those partitions."""
    if not dates:
        raise ValueError("run_sentiment_range needs at least one date")
    dates = sorted(set(dates))
    store = store or open_store(spark, config)
    now = dt.datetime.now(dt.timezone.utc)
    run_id = run_id or f"sentiment-{now.strftime('%Y%m%dT%H%M%SZ')}"
    result = StageResult.begin("sentiment", span(dates), store.backend,
                               sentiment=config.sentiment.backend)
    comments = store.read(COMMENTS_TABLE).filter(F.col(COMMENT_DATE).isin(dates))
    result.tables_read = {COMMENTS_TABLE: store.version(COMMENTS_TABLE)}
    result.rows_in = comments.count()  # Parquet footers only: cheap
    version = store.write(
        score_comments(comments, config, run_id), SENTIMENT_TABLE, mode="overwrite",
        partition_by=[COMMENT_DATE],
        replace_where={COMMENT_DATE: [d.isoformat() for d in dates]},
    )
    result.rows_out = store.last_write.rows
    result.tables_written = {SENTIMENT_TABLE: version}
    result.details = {"dates": [d.isoformat() for d in dates], "run_id": run_id}
    result.finish()
    log.info("sentiment %s: %d comments scored (%s v%d, %.1fs)", result.run_date,
             result.rows_out, SENTIMENT_TABLE, version, result.elapsed_s)
    return result


def run_sentiment(
    spark: SparkSession,
    config: Config,
    run_date: dt.date,
    store: TableStore | None = None,
    run_id: str | None = None,
) -> StageResult:
    """Score ``run_date``'s comments and the ``features.late_arrival_days`` days before it."""
    dates = day_range(run_date, config.features.late_arrival_days)
    return run_sentiment_range(spark, config, dates, store=store, run_id=run_id)
