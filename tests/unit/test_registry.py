"""Model registry: versions, promotion with tolerance, refusal, lineage files, loading."""

from __future__ import annotations

import math
import os

import pytest
from pyspark.ml import PipelineModel
from pyspark.ml.feature import SQLTransformer

from mktpipe.catalog import USER_FEATURES
from mktpipe.models import artifacts
from mktpipe.models.artifacts import SavedPipelineModel
from mktpipe.models.registry import Registry, metric_value

LINEAGE = {"training_snapshot": "2026-10-01", "source_tables": {USER_FEATURES: 12}}


def tiny_model(factor: float, ap: float) -> SavedPipelineModel:
    """A real (saveable) pipeline model: y = x * factor, with churn-like metrics."""
    stage = SQLTransformer(statement=f"SELECT *, x * {factor} AS y FROM __THIS__")
    return SavedPipelineModel(PipelineModel(stages=[stage]), {
        "feature_cols": ["x"], "settings": {"factor": factor},
        "metrics": {"ensemble": {"average_precision": ap, "roc_auc": 0.8}, "xgb": {"rmse": 1.0}}})


@pytest.fixture()
def registry(config, tmp_path):
    return Registry(str(tmp_path / "models"))


def predict_y(spark, model) -> list[float]:
    df = spark.createDataFrame([(1.0,), (2.5,)], "x double")
    return [r["y"] for r in model.pipeline_model.transform(df).collect()]


def test_promotion_within_tolerance_and_refusal_beyond(registry, spark):
    first = registry.register("churn", tiny_model(2, 0.80), lineage=LINEAGE)
    assert (first.version, first.promoted) == (1, True)
    assert first.reason.startswith("first version")
    second = registry.register("churn", tiny_model(3, 0.795), tolerance=0.01)
    assert (second.version, second.promoted) == (2, True)
    assert "within tolerance" in second.reason
    third = registry.register("churn", tiny_model(4, 0.75), tolerance=0.01)
    assert (third.version, third.promoted) == (3, False)
    assert "regresses by 0.045 > tolerance 0.01" in third.reason, third.reason
    assert registry.latest_version("churn") == 2
    assert registry.versions("churn") == [1, 2, 3]
    assert predict_y(spark, registry.load_latest("churn")) == [3.0, 7.5]
    assert predict_y(spark, registry.load("churn", 3)) == [4.0, 10.0]  # kept, loadable
    fourth = registry.register("churn", tiny_model(5, 0.81))
    assert fourth.promoted and "improves by 0.015" in fourth.reason
    registry.promote("churn", 1)  # manual rollback
    assert registry.latest_version("churn") == 1
    assert not [f for f in os.listdir(registry._dir("churn")) if ".tmp-" in f]


def test_version_files_and_lineage(registry):
    result = registry.register("churn", tiny_model(2, 0.8), lineage=LINEAGE)
    read = artifacts.read_json
    assert read(os.path.join(result.path, "metrics.json"))["ensemble"]["average_precision"] == 0.8
    assert read(os.path.join(result.path, "features.json")) == {"feature_cols": ["x"]}
    assert read(os.path.join(result.path, "params.json"))["settings"] == {"factor": 2}
    lineage = read(os.path.join(result.path, "lineage.json"))
    assert lineage["source_tables"] == {USER_FEATURES: 12}
    assert lineage["training_snapshot"] == "2026-10-01" and lineage["created_at"]
    assert registry.lineage("churn", 1) == lineage
    assert registry.lineage("churn", 99) == {}
    info = registry.info("churn", 1)
    assert info["primary_metric"] == "ensemble.average_precision" and info["value"] == 0.8
    assert info["model_class"] == "mktpipe.models.artifacts.SavedPipelineModel"


def test_lower_is_better_metric(registry):
    assert registry.register("clv", tiny_model(1, 0.5), metrics={"rmse": 10.0},
                             primary_metric="rmse", higher_is_better=False).promoted
    worse = registry.register("clv", tiny_model(1, 0.5), metrics={"rmse": 10.5},
                              primary_metric="rmse", higher_is_better=False, tolerance=0.2)
    assert not worse.promoted and "regresses by 0.5" in worse.reason
    better = registry.register("clv", tiny_model(1, 0.5), metrics={"rmse": 9.0},
                               primary_metric="rmse", higher_is_better=False)
    assert better.promoted and registry.latest_version("clv") == 3


def test_undefined_metric_not_promoted_and_bad_inputs(registry):
    registry.register("m", tiny_model(1, 0.5), metrics={"ap": 0.5}, primary_metric="ap")
    nan = registry.register("m", tiny_model(1, 0.5), metrics={"ap": math.nan},
                            primary_metric="ap")
    assert not nan.promoted and "undefined" in nan.reason
    with pytest.raises(KeyError, match="available"):
        registry.register("m", tiny_model(1, 0.5), primary_metric="ensemble.auc")
    with pytest.raises(ValueError, match="tolerance"):
        registry.register("m", tiny_model(1, 0.5), tolerance=-1)
    with pytest.raises(ValueError, match="model name"):
        registry.versions("../escape")
    with pytest.raises(FileNotFoundError, match="no promoted version"):
        registry.load_latest("never-registered")
    with pytest.raises(FileNotFoundError, match="no version 9"):
        registry.load("m", 9)


def test_incomplete_version_is_ignored(registry):
    registry.register("m", tiny_model(1, 0.5))
    os.makedirs(os.path.join(registry._dir("m"), "2"))  # a crashed writer left this
    assert registry.versions("m") == [1]
    assert registry.register("m", tiny_model(1, 0.5)).version == 3


def test_metric_value_dotted_paths():
    assert metric_value({"a": {"b": 1}}, "a.b") == 1
    with pytest.raises(KeyError, match="no 'c'"):
        metric_value({"a": {"b": 1}}, "a.c")


def test_mlflow_tracking_when_configured(tmp_path):
    mlflow = pytest.importorskip("mlflow", reason="mlflow is not installed (optional feature)")
    uri = f"file://{tmp_path / 'mlruns'}"
    registry = Registry(str(tmp_path / "models"), mlflow_tracking_uri=uri)
    registry.register("churn", tiny_model(2, 0.8), lineage=LINEAGE)
    mlflow.set_tracking_uri(uri)
    runs = mlflow.search_runs(experiment_names=["mktpipe"])
    assert len(runs) == 1
    assert runs["metrics.ensemble.average_precision"].iloc[0] == 0.8


def test_score_names_why_no_version_is_promoted(registry, spark):
    """A model trained on a validation snapshot without positives is never promoted; score's
    error then says so (with the gate's reason) instead of asking to train again."""
    import datetime as dt

    from mktpipe.score.stage import _no_model_message

    day = dt.date(2026, 3, 9)
    assert "run `mktpipe train --snapshot-date 2026-03-09` first" in _no_model_message(
        registry, "intent", day)
    registry.register("intent", tiny_model(2, math.nan))
    message = _no_model_message(registry, "intent", day)
    assert "1 version(s) trained, none passed the promotion gate" in message
    assert "ensemble.average_precision is undefined" in message
    assert "mktpipe train" not in message
