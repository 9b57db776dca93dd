"""mktpipe.nlp.sentiment: English (VADER) and Spanish (own lexicon) comment sentiment."""

from __future__ import annotations

import csv
import os
import zlib
from pathlib import Path

import pandas as pd
import pytest
from chispa import assert_df_equality
from pyspark.sql import functions as F
from pyspark.sql.types import (
    ArrayType,
    DoubleType,
    FloatType,
    IntegerType,
    LongType,
    MapType,
    StringType,
    StructField,
    StructType,
)

from mktpipe.nlp import backend_status, score_sentiment
from mktpipe.nlp.language import detect_language
from mktpipe.nlp.sentiment import SentimentBackendError, _scorers, score_texts
from mktpipe.nlp.spark_nlp_backend import annotation_score
from mktpipe.session import capabilities

EVAL_CSV = Path(__file__).resolve().parents[1] / "data" / "sentiment_eval.csv"
TEXT_SCHEMA = StructType([StructField("id", LongType()), StructField("text", StringType())])

# text -> expected label (and language where it is worth checking)
KNOWN = {
    # negation
    "not good": ("negative", "en"),
    "no me gustó": ("negative", "es"),
    "no me gustó nada": ("negative", "es"),
    "no lo recomiendo": ("negative", "es"),
    "not bad 😍": ("positive", "en"),  # the negation does not flip the emoji
    "ew no 👎": ("negative", "en"),
    # emoji
    "me encanta 😍": ("positive", "es"),
    "this is trash 🤮": ("negative", "en"),
    # slang that works
    "this song is fire 🔥": ("positive", "en"),
    "this beat is lit": ("positive", "en"),
    "this slaps": ("positive", "en"),
    "that movie was mid": ("negative", "en"),
    "so cringe": ("negative", "en"),
    "qué chido": ("positive", "es"),
    "mola mucho": ("positive", "es"),
    "qué cringe 😬": ("negative", "es"),
    # Spanish morphology and rules
    "buenísimo": ("positive", "es"),
    "qué asco": ("negative", "es"),
    "es bonito pero caro": ("negative", "es"),  # after "pero" weighs more
    "poco original": ("negative", "es"),
    "jajajaja": ("positive", "es"),
    # neutral
    "what song is this?": ("neutral", "en"),
    "¿dónde lo compraste?": ("neutral", "es"),
}


def _scored_known(spark):
    rows = [(i, text) for i, text in enumerate(KNOWN)]
    out = score_sentiment(spark.createDataFrame(rows, TEXT_SCHEMA)).collect()
    return {r["text"]: r for r in out}


@pytest.fixture(scope="module")
def known(spark):
    return _scored_known(spark)


@pytest.mark.parametrize("text", list(KNOWN))
def test_known_phrases(known, text):
    label, language = KNOWN[text]
    row = known[text]
    assert (row["sentiment_label"], row["language"]) == (label, language), row


def test_no_esta_mal_is_not_negative(known, spark):
    rows = score_sentiment(
        spark.createDataFrame([(1, "no está mal"), (2, "nada mal")], TEXT_SCHEMA)
    ).collect()
    assert [r["sentiment_label"] for r in rows] == ["positive", "positive"]


def test_intensity_rules_order_scores():
    texts = pd.Series(["bueno", "muy bueno", "aburrido", "un poco aburrido",
                       "me encanta el video", "ME ENCANTA el video"])
    s = dict(zip(texts, score_texts(texts)["sentiment_score"]))
    assert s["muy bueno"] > s["bueno"] > 0
    assert s["aburrido"] < s["un poco aburrido"] < 0
    assert s["ME ENCANTA el video"] > s["me encanta el video"] > 0


@pytest.mark.xfail(strict=True, reason="known gap: 'ate' (= did great) has no valence, and "
                   "'dead 💀' (= laughing) reads as VADER's 'dead' (-3.3)")
def test_slang_known_gaps():
    s = score_texts(pd.Series(["he ate", "I am dead 💀"]))["sentiment_score"]
    assert (s > 0.05).all()


@pytest.mark.xfail(strict=True, reason="known gap: a one-word English slang comment ('mid') is "
                   "detected as Spanish and the Spanish lexicon does not know it")
def test_single_english_slang_word():
    assert score_texts(pd.Series(["mid"]))["sentiment_score"].iloc[0] < -0.05


def test_emoji_only_scored_with_language_und(spark):
    df = spark.createDataFrame([(1, "😍😍"), (2, "🤮"), (3, "🤔"), (4, "!!!")], TEXT_SCHEMA)
    rows = {r["id"]: r for r in score_sentiment(df).collect()}
    assert [rows[i]["sentiment_label"] for i in (1, 2, 3, 4)] == [
        "positive", "negative", "neutral", "neutral"]
    assert {r["language"] for r in rows.values()} == {"und"}


def test_null_and_empty_texts_are_neutral_zero_und(spark):
    df = spark.createDataFrame([(1, None), (2, ""), (3, "   \n")], TEXT_SCHEMA)
    expected = spark.createDataFrame(
        [(1, None, 0.0, "neutral", "und", 0.74), (2, "", 0.0, "neutral", "und", 0.74),
         (3, "   \n", 0.0, "neutral", "und", 0.74)],
        "id long, text string, sentiment_score double, sentiment_label string, language string, "
        "sentiment_confidence double",
    )
    assert_df_equality(score_sentiment(df), expected, ignore_row_order=True,
                       ignore_nullable=True)


def test_scores_stay_in_range(spark):
    texts = ["LOVE LOVE LOVE 😍😍😍😍😍😍!!!!", "esto es una mierda 💩💩💩!!!!",
             "worst worst worst 🤮🤮🤮🤮 ???", "😂" * 200, "no " * 50 + "bueno", None]
    df = spark.createDataFrame(list(enumerate(texts)), TEXT_SCHEMA)
    scores = [r["sentiment_score"] for r in score_sentiment(df).collect()]
    assert all(-1.0 <= s <= 1.0 for s in scores)
    assert max(scores) > 0.9 and min(scores) < -0.9


def test_label_thresholds(spark):
    df = spark.createDataFrame([(1, "me encanta"), (2, "not good"), (3, "ok")], TEXT_SCHEMA)
    default = {r["id"]: r for r in score_sentiment(df).collect()}
    assert default[1]["sentiment_score"] < 0.9 and default[2]["sentiment_score"] > -0.9
    strict = {r["id"]: r["sentiment_label"]
              for r in score_sentiment(df, positive_threshold=0.9,
                                       negative_threshold=-0.9).collect()}
    assert strict == {1: "neutral", 2: "neutral", 3: "neutral"}
    for r in default.values():  # labels follow the score exactly at the defaults
        s = r["sentiment_score"]
        want = "positive" if s >= 0.05 else "negative" if s <= -0.05 else "neutral"
        assert r["sentiment_label"] == want


@pytest.mark.parametrize("pos,neg", [(0.0, -0.05), (0.05, 0.0), (0.5, -1.5), (1.2, -0.1)])
def test_invalid_thresholds_raise(spark, pos, neg):
    df = spark.createDataFrame([(1, "x")], TEXT_SCHEMA)
    with pytest.raises(ValueError, match="threshold"):
        score_sentiment(df, positive_threshold=pos, negative_threshold=neg)


@pytest.mark.parametrize("text,code", [
    ("I really loved the ending of this video", "en"),
    ("me encantó el final de este video", "es"),
    ("where did you buy that jacket", "en"),
    ("¿dónde compraste esa chaqueta?", "es"),
    ("😂😂", "und"),
    (None, "und"),
])
def test_language_detection(text, code):
    assert detect_language(text) == code


def test_other_columns_kept(spark):
    schema = StructType([
        StructField("comment_id", StringType()), StructField("body", StringType()),
        StructField("likes", IntegerType()), StructField("weight", FloatType()),
        StructField("tags", ArrayType(StringType())),
    ])
    rows = [("c1", "me encanta", 3, 1.5, ["a"]), ("c2", None, None, None, None),
            ("c3", "so bad", 0, 0.0, [])]
    df = spark.createDataFrame(rows, schema)
    out = score_sentiment(df, text_col="body")
    assert out.columns == [*df.columns, "sentiment_score", "sentiment_label", "language",
                           "sentiment_confidence"]
    assert [out.schema[c].dataType for c in df.columns] == [f.dataType for f in schema]
    assert out.schema["sentiment_score"].dataType == DoubleType()
    assert_df_equality(out.select(*df.columns), df, ignore_row_order=True)


def test_missing_or_non_string_text_column(spark):
    df = spark.createDataFrame([(1, "x")], TEXT_SCHEMA)
    with pytest.raises(ValueError, match=r"no column 'body'.*\['id', 'text'\]"):
        score_sentiment(df, text_col="body")
    with pytest.raises(ValueError, match="expected string"):
        score_sentiment(df, text_col="id")
    with pytest.raises(ValueError, match="backend"):
        score_sentiment(df, backend="bert")
    with pytest.raises(ValueError, match="xx"):
        score_sentiment(df, languages=("en", "xx"))


def test_analyzers_built_once_per_process():
    assert _scorers() is _scorers()


# --- evaluation set ---------------------------------------------------------------------------
def _eval_rows() -> list[dict]:
    with EVAL_CSV.open(encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def is_held_out(text: str) -> bool:
    """The held-out half: rules and lexicons were tuned on the other half only."""
    return zlib.crc32(text.encode("utf-8")) % 2 == 1


def _macro_f1(gold: list[str], pred: list[str]) -> float:
    f1s = []
    for label in ("positive", "negative", "neutral"):
        tp = sum(g == p == label for g, p in zip(gold, pred))
        fp = sum(p == label != g for g, p in zip(gold, pred))
        fn = sum(g == label != p for g, p in zip(gold, pred))
        f1s.append(2 * tp / (2 * tp + fp + fn) if tp else 0.0)
    return sum(f1s) / len(f1s)


def test_eval_set_shape():
    rows = _eval_rows()
    assert list(rows[0]) == ["text", "language", "label"]
    for code in ("en", "es"):
        assert sum(r["language"] == code for r in rows) >= 60
    assert {r["label"] for r in rows} == {"positive", "negative", "neutral"}
    assert len({r["text"] for r in rows}) == len(rows)


# measured on the held-out half (see the module's docstring): en 0.808 / 0.809, es 0.901 / 0.900
FLOORS = {"en": (0.75, 0.75), "es": (0.85, 0.85)}  # (accuracy, macro-F1)


@pytest.mark.parametrize("code", ["en", "es"])
def test_eval_set_held_out_quality(spark, code):
    rows = [r for r in _eval_rows() if r["language"] == code and is_held_out(r["text"])]
    df = spark.createDataFrame(
        [(i, r["text"]) for i, r in enumerate(rows)], TEXT_SCHEMA
    )
    pred = {r["id"]: r for r in score_sentiment(df).collect()}
    gold = [r["label"] for r in rows]
    labels = [pred[i]["sentiment_label"] for i in range(len(rows))]
    accuracy = sum(g == p for g, p in zip(gold, labels)) / len(rows)
    language_ok = sum(pred[i]["language"] == code for i in range(len(rows))) / len(rows)
    # confidence: the table's value for the row's bucket, and the labels it trusts most are
    # right more often than the weak polar ones (on text the table was not fitted on)
    from mktpipe.nlp.sentiment import SENTIMENT_CONFIDENCE

    conf = [pred[i]["sentiment_confidence"] for i in range(len(rows))]
    assert set(conf) <= set(SENTIMENT_CONFIDENCE[code])
    top = [g == p for g, p, c in zip(gold, labels, conf) if c == SENTIMENT_CONFIDENCE[code][3]]
    assert len(top) >= 10 and sum(top) / len(top) >= 0.9
    min_acc, min_f1 = FLOORS[code]
    assert accuracy >= min_acc, f"{code} held-out accuracy {accuracy:.3f} < {min_acc}"
    assert _macro_f1(gold, labels) >= min_f1
    assert language_ok >= 0.95


# --- backends ---------------------------------------------------------------------------------
def test_auto_uses_vader_without_spark_nlp(spark):
    if capabilities(spark).spark_nlp:
        pytest.skip("this session has the Spark NLP jar")
    status = backend_status(spark, model_path="/nonexistent/model")
    assert status["backend"] == "vader"
    assert status["spark_nlp_jar"] is False and "jar" in status["reason"]
    assert status["english"].startswith("vaderSentiment 3.3.2")


def test_spark_nlp_backend_refuses_without_jar(spark):
    if capabilities(spark).spark_nlp:
        pytest.skip("this session has the Spark NLP jar")
    df = spark.createDataFrame([(1, "x")], TEXT_SCHEMA)
    with pytest.raises(SentimentBackendError, match="no Spark NLP jar"):
        score_sentiment(df, backend="spark_nlp", model_path="/tmp/any")


def test_spark_nlp_backend_with_local_pipeline(spark):
    caps = capabilities(spark)
    if not caps.spark_nlp:
        pytest.skip(f"Spark NLP jar not on this session ({caps.reasons.get('spark_nlp')})")
    model = os.environ.get("MKTPIPE_TEST_SPARK_NLP_MODEL")
    if not model:
        pytest.skip("set MKTPIPE_TEST_SPARK_NLP_MODEL to a locally saved sentiment pipeline")
    df = spark.createDataFrame([(1, "I love this"), (2, "I hate this"), (3, None)], TEXT_SCHEMA)
    rows = {r["id"]: r for r in score_sentiment(df, backend="spark_nlp",
                                                model_path=model).collect()}
    assert rows[1]["sentiment_score"] > 0 > rows[2]["sentiment_score"]
    assert (rows[3]["sentiment_score"], rows[3]["language"]) == (0.0, "und")


def test_spark_nlp_annotation_mapping(spark):
    """The annotation -> score mapping, on hand-made annotations (no jar needed)."""
    ann = StructType([
        StructField("annotatorType", StringType()), StructField("begin", IntegerType()),
        StructField("end", IntegerType()), StructField("result", StringType()),
        StructField("metadata", MapType(StringType(), StringType())),
    ])
    schema = StructType([StructField("id", LongType()), StructField("sentiment", ArrayType(ann))])
    rows = [
        (1, [("category", 0, 5, "positive", {"positive": "0.9", "negative": "0.1"})]),
        (2, [("category", 0, 5, "neg", {"confidence": "0.7"}),
             ("category", 6, 9, "positive", {"confidence": "0.6"})]),
        (3, [("category", 0, 5, "na", {})]),
        (4, []),
        (5, None),
    ]
    out = spark.createDataFrame(rows, schema).select(
        "id", annotation_score(F.col("sentiment")).alias("score"))
    got = {r["id"]: r["score"] for r in out.collect()}
    assert got == pytest.approx({1: 0.8, 2: 0.0, 3: 0.0, 4: 0.0, 5: 0.0})


def test_confidence_follows_the_table_by_language_and_score(spark):
    from pyspark.sql import functions as F

    from mktpipe.nlp.sentiment import SENTIMENT_CONFIDENCE, sentiment_confidence

    rows = [(s, lang) for lang in ("en", "es", "und", "fr")
            for s in (0.0, -0.04, 0.05, -0.29, 0.3, -0.59, 0.6, -1.0)]
    out = (spark.createDataFrame(rows, "s double, lang string")
           .select("s", "lang", sentiment_confidence(F.col("s"), F.col("lang")).alias("c"))
           .collect())
    for r in out:
        table = SENTIMENT_CONFIDENCE["es" if r["lang"] == "es" else "en"]
        bucket = sum(abs(r["s"]) >= b for b in (0.05, 0.3, 0.6))
        assert r["c"] == table[bucket], r
    for table in SENTIMENT_CONFIDENCE.values():  # polar buckets: stronger score, surer label
        assert list(table[1:]) == sorted(table[1:]) and all(0 < v < 1 for v in table)
