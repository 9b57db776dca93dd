"""Model registry: versions, promotion with tolerance, refusal, lineage files, loading."""

from __future__ import annotations

import json
import math

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
    # the gate is MLflow's alias: what any MLflow client sees as the champion
    client = registry.client
    assert int(client.get_model_version_by_alias("churn", "champion").version) == 1
    assert client.get_model_version("churn", "3").tags["promoted"] == "false"


def test_version_files_and_lineage(registry):
    result = registry.register("churn", tiny_model(2, 0.8), lineage=LINEAGE)
    read = artifacts.read_json
    run = result.path.rsplit("/", 1)[0]  # the MLflow run's artifact folder
    assert result.path.startswith("file://" + registry.root)
    assert read(f"{run}/metrics.json")["ensemble"]["average_precision"] == 0.8
    assert read(f"{run}/features.json") == {"feature_cols": ["x"]}
    assert read(f"{run}/params.json")["settings"] == {"factor": 2}
    lineage = read(f"{run}/lineage.json")
    assert lineage["source_tables"] == {USER_FEATURES: 12}
    assert lineage["training_snapshot"] == "2026-10-01" and lineage["created_at"]
    assert registry.lineage("churn", 1) == lineage
    assert registry.lineage("churn", 99) == {}
    info = registry.info("churn", 1)
    assert info["primary_metric"] == "ensemble.average_precision" and info["value"] == 0.8
    assert info["model_class"] == "mktpipe.models.artifacts.SavedPipelineModel"
    assert info["promoted"] is True and info["champion"] is True
    assert info["run_id"] == result.run_id


def test_mlflow_run_holds_params_metrics_tables_and_lineage(registry, tmp_path):
    """What the MLflow UI shows: the run's params, metrics, lineage tags and table artifacts,
    read back with MLflow's own API (not mktpipe's)."""
    import mlflow

    metrics = {"ensemble": {"average_precision": 0.7, "calibration": [
        {"bin": 0, "mean_predicted": 0.1, "observed_rate": 0.12, "n": 40}]}, "rows": 100}
    result = registry.register("churn", tiny_model(2, 0.8), metrics=metrics, lineage=LINEAGE)
    run = registry.client.get_run(result.run_id)
    assert run.info.status == "FINISHED"
    assert run.data.metrics == {"ensemble.average_precision": 0.7, "rows": 100.0}
    assert run.data.params == {"settings.factor": "2"}
    assert run.data.tags["lineage.source_tables.gold.user_features"] == "12"
    assert run.data.tags["model_version"] == "1" and run.data.tags["promoted"] == "true"
    client = mlflow.MlflowClient(tracking_uri=registry.tracking_uri)  # no global state
    local = client.download_artifacts(result.run_id, "tables/ensemble.calibration.json",
                                      str(tmp_path))
    assert json.loads(open(local).read()) == metrics["ensemble"]["calibration"]
    experiment = client.get_experiment_by_name("mktpipe").experiment_id
    assert [r.info.run_id for r in client.search_runs([experiment])] == [result.run_id]


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


class CrashingModel:
    metrics = {"ensemble": {"average_precision": 0.9}}

    def save(self, path):
        raise OSError("disk full")


def test_a_crash_midway_leaves_no_version(registry):
    registry.register("m", tiny_model(1, 0.5))
    with pytest.raises(OSError, match="disk full"):
        registry.register("m", CrashingModel())
    assert registry.versions("m") == [1] and registry.latest_version("m") == 1
    failed = registry.client.search_runs([registry._experiment()],
                                         "attributes.status = 'FAILED'")
    assert len(failed) == 1
    assert registry.register("m", tiny_model(1, 0.5)).version == 2


def test_metric_value_dotted_paths():
    assert metric_value({"a": {"b": 1}}, "a.b") == 1
    with pytest.raises(KeyError, match="no 'c'"):
        metric_value({"a": {"b": 1}}, "a.c")


def test_object_store_models_path_needs_a_tracking_uri():
    with pytest.raises(ValueError, match="Set models.mlflow_tracking_uri"):
        Registry("s3a://bucket/models")


def test_config_picks_the_tracking_store(config, tmp_path, monkeypatch):
    from mktpipe.models.registry import registry_for

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    cfg = config.model_copy(deep=True)
    cfg.paths.models = str(tmp_path / "models")
    assert registry_for(cfg).tracking_uri == f"sqlite:///{tmp_path}/models/mlflow.db"
    cfg.models.mlflow_tracking_uri = f"sqlite:///{tmp_path}/elsewhere.db"
    cfg.models.mlflow_experiment = "campaigns"
    registry = registry_for(cfg)
    assert registry.register("m", tiny_model(1, 0.5)).version == 1
    assert Registry(cfg.paths.models, f"sqlite:///{tmp_path}/elsewhere.db",
                    "campaigns").versions("m") == [1]
    assert Registry(cfg.paths.models).versions("m") == []  # not in the default store
    assert registry.client.get_experiment_by_name("campaigns") is not None


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
