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
sentiment_confidence double  measured probability that the label is right (by language and
                         |score|; mktpipe.nlp.sentiment.SENTIMENT_CONFIDENCE)
_run_id          string
===============  ======  ====================================================================

A run for D scores the bronze.comments partitions [D - features.late_arrival_days, D] and
replaces exactly those partitions, so late comments are scored and a re-run replaces.
"""

from __future__ import annotations

import datetime as dt
import logging

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from mktpipe import schemas as S
from mktpipe.catalog import BRONZE_COMMENTS, COMMENT_SENTIMENT
from mktpipe.config import Config
from mktpipe.quality.manifest import StageResult
from mktpipe.stage import StageContext, day_range, span, stage

log = logging.getLogger(__name__)

SENTIMENT_COLUMNS = (
    S.COMMENT_ID, S.USER_ID, S.VIDEO_ID, S.TS, S.COMMENT_DATE,
    "language", "sentiment_score", "sentiment_label", "sentiment_confidence", S.RUN_ID,
)


def score_comments(comments: DataFrame, config: Config, run_id: str) -> DataFrame:
    """bronze.comments rows -> silver.comment_sentiment rows (SENTIMENT_COLUMNS)."""
    # imported here: the scorer pulls in pandas/VADER and the other stages should not need it
    from mktpipe.nlp.sentiment import score_sentiment

    cfg = config.sentiment
    scored = score_sentiment(
        comments.select(S.COMMENT_ID, S.USER_ID, S.VIDEO_ID, S.TS, S.COMMENT_DATE, "text"),
        text_col="text",
        positive_threshold=cfg.positive_threshold,
        negative_threshold=cfg.negative_threshold,
        backend=cfg.backend,
        model_path=cfg.spark_nlp_model_path,
    )
    return scored.withColumn(S.RUN_ID, F.lit(run_id)).select(*SENTIMENT_COLUMNS)


@stage("sentiment")
def run_sentiment_range(ctx: StageContext, dates: list[dt.date]) -> StageResult:
    """Score the comments of ``dates`` in one batch and replace those partitions."""
    if not dates:
        raise ValueError("run_sentiment_range needs at least one date")
    dates = sorted(set(dates))
    result = ctx.begin(span(dates), sentiment=ctx.config.sentiment.backend)
    comments = ctx.store.read(BRONZE_COMMENTS).filter(F.col(S.COMMENT_DATE).isin(dates))
    result.tables_read = ctx.versions([BRONZE_COMMENTS])
    result.rows_in = comments.count()  # Parquet footers only: cheap
    ctx.overwrite(result, score_comments(comments, ctx.config, ctx.run_id), COMMENT_SENTIMENT,
                  {S.COMMENT_DATE: dates})
    result.details["dates"] = [d.isoformat() for d in dates]
    return ctx.finish(result, "%d comments scored", result.rows_out)


@stage("sentiment")
def run_sentiment(ctx: StageContext, run_date: dt.date) -> StageResult:
    """Score ``run_date``'s comments and the ``features.late_arrival_days`` days before it."""
    return run_sentiment_range(ctx, day_range(run_date, ctx.config.features.late_arrival_days))
