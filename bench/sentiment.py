"""Throughput of mktpipe.nlp.sentiment.score_sentiment against a plain Spark pass.

    python bench/sentiment.py [--rows 200000] [--master local[2]] [--spanish-share 0.5]

Builds a synthetic DataFrame of short comments (English and Spanish fragments, emoji, some null
and empty rows), caches it, then times two full passes written to Spark's ``noop`` sink:

* floor: ``lower(text)``, a built-in that never leaves the JVM;
* sentiment: ``score_sentiment(df)`` (the pandas UDF: language detection + VADER or the Spanish
  lexicon, Arrow transfer both ways).

Prints rows/s of each and the ratio. A warm-up on 2,000 rows first starts the Python workers and
builds the analyzers, so the timed pass measures steady state.
"""

from __future__ import annotations

import argparse
import logging
import time

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from mktpipe.config import load_config
from mktpipe.nlp.sentiment import score_sentiment
from mktpipe.session import get_spark

EN_OPENERS = ["omg", "honestly", "ngl", "bro", "lol", "wow", "ok but", "", "", ""]
EN_BODIES = [
    "this is so good", "not good at all", "this is trash", "the best video on my fyp",
    "where did you buy that jacket", "this song is fire", "so cringe", "I love how wholesome "
    "this is", "worst purchase ever, broke after two days", "what song is this?",
    "can't wait for part 2", "the audio is out of sync", "this made my day thank you",
    "mid at best", "is this available in Canada",
]
ES_OPENERS = ["jajaja", "wey", "la verdad", "uff", "oye", "qué", "", "", ""]
ES_BODIES = [
    "me encanta", "no me gustó", "no está mal", "esto es una basura", "buenísimo el video",
    "¿dónde lo compraste?", "qué asco", "mola mucho la canción", "pésimo servicio, nunca llegó",
    "eres una crack, sigue así", "qué aburrido", "¿a qué hora es el live?",
    "lo compré y vale la pena totalmente", "me decepcionó bastante", "está bien padre",
]
EMOJI = ["😍", "🔥", "😂", "🤮", "🙄", "❤️", "👏", "", "", "", ""]


def _pick(options: list[str], seed_col: str, salt: int):
    index = (F.abs(F.xxhash64(F.col(seed_col), F.lit(salt))) % len(options)).cast("int") + 1
    return F.element_at(F.array(*[F.lit(o) for o in options]), index)


def synthetic_comments(spark: SparkSession, rows: int, spanish_share: float) -> DataFrame:
    """``rows`` comments: id, text (about 1% null and 1% empty), mixed English/Spanish."""
    is_spanish = (F.abs(F.xxhash64("id", F.lit(7))) % 1000) < int(spanish_share * 1000)
    en = F.concat_ws(" ", _pick(EN_OPENERS, "id", 1), _pick(EN_BODIES, "id", 2),
                     _pick(EMOJI, "id", 3))
    es = F.concat_ws(" ", _pick(ES_OPENERS, "id", 4), _pick(ES_BODIES, "id", 5),
                     _pick(EMOJI, "id", 6))
    bucket = F.col("id") % 100
    text = (
        F.when(bucket == 0, F.lit(None).cast("string"))
        .when(bucket == 1, F.lit(""))
        .otherwise(F.trim(F.when(is_spanish, es).otherwise(en)))
    )
    return spark.range(rows).select("id", text.alias("text"))


def _timed(df: DataFrame) -> float:
    start = time.perf_counter()
    df.write.format("noop").mode("overwrite").save()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--master", default=None, help="Spark master (default: config's)")
    parser.add_argument("--spanish-share", type=float, default=0.5)
    parser.add_argument("--repeat", type=int, default=2, help="timed passes; the best is kept")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    overrides = {"spark": {"master": args.master}} if args.master else None
    spark = get_spark(load_config("local", overrides))
    comments = synthetic_comments(spark, args.rows, args.spanish_share).cache()
    comments.count()
    _timed(score_sentiment(comments.limit(2000)))  # warm-up: workers + analyzers

    floor = min(_timed(comments.select(F.lower("text").alias("t"))) for _ in range(args.repeat))
    scored = min(_timed(score_sentiment(comments)) for _ in range(args.repeat))
    partitions = comments.rdd.getNumPartitions()
    mix = score_sentiment(comments).groupBy("language").count().orderBy("language").collect()

    print(f"rows={args.rows} master={spark.sparkContext.master} partitions={partitions} "
          f"spark={spark.version}")
    print("language mix: " + ", ".join(f"{r['language']}={r['count']}" for r in mix))
    print(f"floor lower(text): {floor:7.2f} s  {args.rows / floor:12,.0f} rows/s")
    print(f"score_sentiment:   {scored:7.2f} s  {args.rows / scored:12,.0f} rows/s")
    print(f"ratio: score_sentiment takes {scored / floor:.1f}x the floor pass")
    comments.unpersist()
    spark.stop()


if __name__ == "__main__":
    main()
