"""Sentiment from a locally stored Spark NLP pipeline (the jar-backed backend).

Usable only when the session was built with the spark-nlp jar (``mktpipe.session`` finds it
before start-up) and ``model_path`` names a saved pipeline on disk. Nothing is downloaded at run
time: there is no network here nor on a locked-down laptop. To get a pipeline, on a machine that
reaches the Models Hub::

    PretrainedPipeline("analyze_sentimentdl_use_twitter", lang="en").model.save("/models/sent")

(or unpack the hub's zip), then copy the folder next to the job; on a cluster it must be on a
path every executor can read. The pipeline must start with a DocumentAssembler and end with a
sentiment annotator (SentimentDLModel, ViveknSentimentModel, ClassifierDL...). Its score is the
mean over annotations of P(positive) - P(negative) from the annotation metadata, or +1 / -1 / 0
from the label when the metadata has no probabilities.
"""

from __future__ import annotations

import logging
from pathlib import Path

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from mktpipe.session import capabilities

log = logging.getLogger(__name__)

SCORE = "sentiment_score"
_POSITIVE = ("positive", "pos")
_NEGATIVE = ("negative", "neg")
_PIPELINES: dict[str, object] = {}  # loaded once per driver process and path


def check(spark: SparkSession, model_path: str | None) -> tuple[bool, str]:
    """(usable, why) for Spark NLP on this session with this model path."""
    caps = capabilities(spark)
    if not caps.spark_nlp:
        return False, (
            "no Spark NLP jar on this session "
            f"({caps.reasons.get('spark_nlp', 'not detected')}); put spark-nlp_2.13-7.0.0.jar in "
            "spark.jars_dir (or set spark.packages where Maven is reachable) and restart"
        )
    if not model_path:
        return False, "no model_path: pass the folder of a locally stored Spark NLP pipeline"
    path = Path(model_path).expanduser()
    if not (path / "metadata").is_dir():
        return False, f"model_path {path} is not a saved Spark ML pipeline (no metadata/ folder)"
    return True, f"Spark NLP jar present and pipeline at {path}"


def load_pipeline(model_path: str):
    """The PipelineModel saved at ``model_path`` (cached per path)."""
    key = str(Path(model_path).expanduser().resolve())
    if key not in _PIPELINES:
        import sparknlp  # noqa: F401  (registers the Python wrappers of Spark NLP's stages)
        from pyspark.ml import PipelineModel

        log.info("loading Spark NLP pipeline from %s", key)
        _PIPELINES[key] = PipelineModel.load(key)
    return _PIPELINES[key]


def _pipeline_columns(pipeline, model_path: str) -> tuple[str, str]:
    """(DocumentAssembler input column, sentiment annotation column) of ``pipeline``."""
    names = [type(stage).__name__ for stage in pipeline.stages]
    assemblers = [s for s in pipeline.stages if type(s).__name__ == "DocumentAssembler"]
    sentiments = [s for s in pipeline.stages
                  if any(k in type(s).__name__
                         for k in ("Sentiment", "Classifier", "SequenceClassification"))]
    if not assemblers or not sentiments:
        raise ValueError(
            f"Spark NLP pipeline at {model_path} has stages {names}; it needs a "
            "DocumentAssembler and a sentiment annotator"
        )
    return assemblers[0].getInputCol(), sentiments[-1].getOutputCol()


def annotation_score(annotations: Column) -> Column:
    """Mean polarity in [-1, 1] over an array of Spark NLP annotations (0.0 when empty)."""

    def polarity(annotation: Column) -> Column:
        meta = annotation["metadata"]
        pos = meta.getItem("positive").cast("double")
        neg = meta.getItem("negative").cast("double")
        label = F.lower(annotation["result"])
        by_label = (
            F.when(label.isin(*_POSITIVE), F.lit(1.0))
            .when(label.isin(*_NEGATIVE), F.lit(-1.0))
            .otherwise(F.lit(0.0))
        )
        return F.when(pos.isNotNull() & neg.isNotNull(), pos - neg).otherwise(by_label)

    values = F.transform(annotations, polarity)
    total = F.aggregate(values, F.lit(0.0), lambda acc, x: acc + x)
    has_any = annotations.isNotNull() & (F.size(annotations) > 0)
    return F.when(has_any, total / F.size(annotations)).otherwise(F.lit(0.0))


def score(df: DataFrame, text_col: str, model_path: str) -> DataFrame:
    """``df`` plus ``sentiment_score`` from the pipeline at ``model_path``; columns kept."""
    pipeline = load_pipeline(model_path)
    input_col, output_col = _pipeline_columns(pipeline, model_path)
    if input_col != text_col and input_col in df.columns:
        raise ValueError(
            f"the Spark NLP pipeline reads column {input_col!r}, which the DataFrame already has "
            f"besides the text column {text_col!r}; rename it first"
        )
    original = "__mktpipe_original_text"
    prepared = df.withColumn(original, F.col(text_col)).withColumn(
        input_col, F.coalesce(F.col(text_col), F.lit(""))
    )
    annotated = pipeline.transform(prepared)
    is_blank = F.col(original).isNull() | (F.trim(F.col(original)) == "")
    result = annotated.withColumn(
        SCORE, F.when(is_blank, F.lit(0.0)).otherwise(annotation_score(F.col(output_col)))
    ).withColumn(text_col, F.col(original))
    return result.select(*[c for c in df.columns if c != SCORE], SCORE)
