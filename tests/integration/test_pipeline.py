"""The whole pipeline on generated data: backfill, train, score, export, report; re-runs change
nothing; a failed run resumes from the failed stage.

The backfill is the session's shared one (tests/conftest.py: 300 users x 30 days, three
snapshots on a 10-day schedule, written through delta-rs); tests/integration/test_cluster.py
runs the same backfill on a standalone cluster and compares every table with it."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac

import pandas as pd
import pytest
from conftest import PIPELINE_END as END
from conftest import PIPELINE_EXPORT_KEY as KEY
from conftest import PIPELINE_START as START

from mktpipe.catalog import (
    BRONZE_EVENTS,
    BRONZE_ORDERS,
    CUSTOMER_SEGMENTS,
    GRAPH_METRICS,
    PURCHASE_SUMMARY,
    USER_DAILY,
    USER_FEATURES,
    USER_LABELS,
)
from mktpipe.model_settings import normalize_tiers
from mktpipe.pipeline import RunState, StageFailed, run_backfill, run_pipeline, snapshot_for
from mktpipe.storage import open_store

pytestmark = pytest.mark.integration

TABLES = (BRONZE_EVENTS, BRONZE_ORDERS, USER_DAILY, GRAPH_METRICS,
          USER_FEATURES, PURCHASE_SUMMARY, USER_LABELS, CUSTOMER_SEGMENTS)


@pytest.fixture(scope="module")
def cfg(pipeline_cfg):
    return pipeline_cfg


@pytest.fixture(scope="module")
def backfilled(pipeline_backfill):
    return pipeline_backfill["manifest"]


def _tier(p: float, tiers) -> str:
    return next(name for name, bound in normalize_tiers(tiers) if p >= bound)


def test_backfill_runs_every_step_in_order(backfilled):
    assert backfilled.status == "ok"
    steps = [(s.stage, s.run_date, s.status) for s in backfilled.stages]
    snapshots = ["2026-08-11", "2026-08-21", "2026-08-31"]
    span = f"{START}..{END}"  # one batch over the range
    expected = [("ingest", span, "ok"), ("sentiment", span, "ok"), ("daily", span, "ok")]
    for s in snapshots:
        expected += [("graph", s, "ok"), ("features", s, "ok"), ("labels", s, "ok")]
    expected += [(st, snapshots[-1], "ok") for st in ("anomalies", "train", "score", "trends",
                                                       "report")]
    assert steps == expected


def test_trends_forecast_every_kpi_and_report_the_winners(backfilled, spark, cfg):
    """The trends stage of the backfill: a tournament per KPI total (and per large segment),
    the winner's 30-day forecast, the diagnostics, and the report showing both."""
    from mktpipe.catalog import FORECAST_BACKTESTS, KPI_FORECASTS, TREND_DIAGNOSTICS

    stage = next(s for s in backfilled.stages if s.stage == "trends")
    winners = stage.details["winners"]
    assert set(cfg.trends.kpis) <= set(winners)
    assert {w["model"] for w in winners.values()} <= set(cfg.trends.models)
    store = open_store(spark, cfg)
    scores = store.read(FORECAST_BACKTESTS).toPandas()
    assert scores.groupby("series_id")["chosen"].sum().eq(1).all()
    assert len(scores) == len(winners) * len(cfg.trends.models)
    fc = store.read(KPI_FORECASTS).toPandas()
    future = fc[fc["kind"] == "forecast"]
    assert future.groupby("series_id").size().eq(cfg.trends.horizon_days).all()
    assert str(future["day"].min()) == "2026-08-31"  # the day after the last landing date
    diag = store.read(TREND_DIAGNOSTICS).toPandas().set_index("series_id")
    assert diag.loc["views", "days"] == 30  # the backfill's 30 days
    report = next(s for s in backfilled.stages if s.stage == "report")
    assert report.details["tournament"] == {k: w["model"] for k, w in winners.items()}
    assert report.details["alerts"] == len(stage.details["alerts"])


def test_anomalies_catch_the_planted_bots(backfilled):
    """The generator plants 2 bot-like users among 300 (a burst, an impossible day of watch
    time); the anomalies stage measures its flags against them (details["planted"])."""
    stage = next(s for s in backfilled.stages if s.stage == "anomalies")
    planted = stage.details["planted"]
    print(f"[anomalies] {planted}")
    assert planted["method"] == "vote" and planted["planted"] == 2
    assert planted["true_positives"] == 2 and planted["recall"] == 1.0
    assert planted["flagged"] == stage.details["summary"]["anomalous"]


def test_registry_holds_every_model_with_lineage(backfilled, cfg):
    from mktpipe.models.stage import registry_for

    registry = registry_for(cfg)
    for name, metric in (("churn", "average_precision"), ("intent", "average_precision"),
                         ("clv", "rmse"), ("segments", "silhouette")):
        version = registry.latest_version(name)
        assert version == 1, name
        metrics = registry.metrics(name, version)
        lineage = registry.lineage(name, version)
        assert lineage["snapshot_date"] == "2026-08-31"
        assert set(lineage["source_tables"]) >= {USER_FEATURES, BRONZE_EVENTS}
        if name == "segments":
            assert -1 <= metrics["silhouette"] <= 1
            continue
        assert metrics["xgb"][metric] is not None
    churn = registry.metrics("churn", 1)
    # time-based: the churn label (7 days) is known for 08-11 and 08-21 only
    assert churn["split"] == {"strategy": "time", "train_snapshots": ["2026-08-11"],
                              "validation_snapshot": "2026-08-21"}
    assert {"ensemble", "xgb", "lr"} <= set(churn)
    assert churn["ensemble"]["pr_curve"][0]["threshold"] == 0.0
    clv = registry.metrics("clv", 1)
    assert clv["comparison"]["winner"] in ("ml", "bgnbd", "tie")
    assert clv["comparison"]["n"] > 0
    # BG/NBD x Gamma-Gamma: validated in that comparison, refitted on the latest purchase
    # summary before the training date (08-21: train for 08-31 sees only earlier snapshots)
    assert registry.latest_version("clv_bgnbd") == 1
    bgnbd = registry.metrics("clv_bgnbd", 1)
    assert bgnbd["validation"] == clv["comparison"]["bgnbd"]
    assert bgnbd["fitted_snapshot"] == "2026-08-21"
    assert registry.lineage("clv_bgnbd", 1)["training_snapshots"] == ["2026-08-21"]


def test_score_reads_only_gold_and_the_registry(backfilled, spark, cfg):
    """Score fits nothing: its BG/NBD column is the registered model applied to the
    snapshot's gold.purchase_summary, and it reads no bronze table."""
    from mktpipe.models.stage import registry_for

    score = next(s for s in backfilled.stages if s.stage == "score")
    assert set(score.tables_read) == {"gold.user_features", "gold.purchase_summary",
                                      "silver.user_anomalies"}
    assert score.details["model_versions"]["clv_bgnbd"] == 1
    assert score.details["bgnbd_skipped"] is None
    store, snap = open_store(spark, cfg), snapshot_for(END)
    model = registry_for(cfg).load("clv_bgnbd", 1)
    summary = store.read(PURCHASE_SUMMARY).filter(f"snapshot_date = '{snap}'")
    want = (model.predict(summary).select("user_id", "clv_bgnbd").toPandas()  # ~300 rows
            .set_index("user_id")["clv_bgnbd"])
    seg = (store.read(CUSTOMER_SEGMENTS).filter(f"snapshot_date = '{snap}'")
           .select("user_id", "clv_90d_bgnbd").toPandas().set_index("user_id")["clv_90d_bgnbd"])
    buyers = seg.dropna()
    assert set(buyers.index) == {r.user_id for r in store.read(USER_FEATURES).filter(
        f"snapshot_date = '{snap}' AND order_count > 0").select("user_id").collect()}
    assert len(buyers) > 0
    pd.testing.assert_series_equal(buyers.sort_index(), want[buyers.index].sort_index(),
                                   check_names=False)


def test_segments_partition_tiers_and_versions(backfilled, spark, cfg):
    store = open_store(spark, cfg)
    snap = snapshot_for(END)
    seg = store.read(CUSTOMER_SEGMENTS).filter(f"snapshot_date = '{snap}'").toPandas()  # ~300 rows
    feats = store.read(USER_FEATURES).filter(f"snapshot_date = '{snap}'")
    assert len(seg) == feats.count() == seg.user_id.nunique()
    assert seg[["churn_probability", "intent_probability"]].stack().between(0, 1).all()
    expected_churn = seg.churn_probability.map(lambda p: _tier(p, cfg.models.churn["tiers"]))
    expected_intent = seg.intent_probability.map(lambda p: _tier(p, cfg.models.intent["tiers"]))
    assert (seg.churn_tier == expected_churn).all()
    assert (seg.intent_tier == expected_intent).all()
    score = next(s for s in backfilled.stages if s.stage == "score")
    cuts = score.details["clv_tier_cutoffs_usd"]
    lowest = list(cfg.models.clv_tiers)[-1]

    def clv_tier(v):
        for name, _ in normalize_tiers(cfg.models.clv_tiers):
            if name in cuts and v >= cuts[name] and v > 0:
                return name
        return lowest

    assert (seg.clv_tier == seg.clv_90d.map(clv_tier)).all()
    assert not seg.clv_90d_bgnbd[seg.rfm_segment == "no_purchase"].notna().any()
    assert seg.is_anomalous.notna().all() and seg.segment.notna().all()
    assert set(seg.churn_model_version) == {1}
    assert set(score.details["tiers"]["churn_tier"]) <= set(cfg.models.churn["tiers"])


def test_export_is_pseudonymised(backfilled, spark, cfg):
    store = open_store(spark, cfg)
    snap = snapshot_for(END)
    ids = {r.user_id for r in store.read(CUSTOMER_SEGMENTS)
           .filter(f"snapshot_date = '{snap}'").select("user_id").collect()}
    score = next(s for s in backfilled.stages if s.stage == "score")
    export = pd.read_parquet(score.details["export"]["paths"]["parquet"])
    assert "user_id" not in export.columns
    assert set(export.user_key) == {
        hmac.new(KEY.encode(), i.encode(), hashlib.sha256).hexdigest() for i in ids}
    csv_text = "".join(p.read_text() for p in
                       sorted(__import__("pathlib").Path(
                           score.details["export"]["paths"]["csv"]).glob("*.csv")))
    assert not any(i in csv_text for i in ids)


def test_report_written(backfilled, cfg):
    report = next(s for s in backfilled.stages if s.stage == "report")
    html = __import__("pathlib").Path(report.details["path"]).read_text(encoding="utf-8")
    assert "<svg" in html or "data:image/png;base64" in html
    # every centrality the graph stage writes is ranked (path centralities are on by default)
    table = html[html.index('data-table="top-by-centrality"'):]
    table = table[:table.index("</table>")]
    for header in ("PageRank", "eigenvector", "betweenness", "closeness", "incoming links"):
        assert f">{header}<" in table, header


@pytest.mark.slow
def test_backfill_on_object_storage_equals_the_local_run(backfilled, spark, cfg, s3,
                                                         monkeypatch, tmp_path_factory):
    """Every ``paths.*`` on s3:// (the S3 server above): Spark through s3a (hadoop-aws),
    the Delta log through delta-spark or delta-rs, manifests, run state, models, export and
    report through the file door. The same backfill lands every table, model, export and the
    report in the bucket, and they read back equal to the local run's.

    Slow (a second 30-day backfill, several minutes on S3): `make test-slow`. `make test`
    writes, merges and reads Delta tables on S3 through both backends
    (tests/unit/test_storage_backends.py), and the file door's S3 paths (manifests, run
    state, reports) in tests/unit/test_files.py."""
    import warehouse_compare

    from mktpipe.models.stage import registry_for
    from mktpipe.quality.manifest import load_manifests
    from mktpipe.session import capabilities, configure_spark
    from mktpipe.storage import files

    if not capabilities(spark).s3a:
        pytest.skip("Spark cannot reach s3:// in this session: " + capabilities(spark).reasons[
            "s3a"])
    configure_spark(spark)  # the session started before the server did
    files.upload(cfg.paths.landing, f"{s3}/landing")  # with the generator's _truth folder
    remote = cfg.model_copy(deep=True)
    for name in ("landing", "warehouse", "models", "reports", "exports", "checkpoints"):
        setattr(remote.paths, name, f"{s3}/{name}")
    remote.paths.truth = f"{s3}/landing/_truth"
    remote.storage.backend = "auto"  # delta-spark where its jar is: the production stack
    # MLflow's store is a database (SQLite here, a server in production); the model files
    # are run artifacts in the bucket
    store = tmp_path_factory.mktemp("s3-mlflow") / "mlflow.db"
    remote.models.mlflow_tracking_uri = f"sqlite:///{store}"
    workdir = tmp_path_factory.mktemp("s3-workdir")
    monkeypatch.chdir(workdir)  # anything written locally by mistake would land here
    monkeypatch.setenv(cfg.export.key_env, KEY)
    started = dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=1)
    manifest = run_backfill(spark, remote, START, END)
    assert manifest.status == "ok"
    assert list(workdir.iterdir()) == []

    # tables: the same rows and values as the local run's
    left, right = cfg.uri("warehouse"), remote.uri("warehouse")
    assert right == s3.replace("s3://", "s3a://") + "/warehouse"
    tables = warehouse_compare.tables(left)
    assert tables == warehouse_compare.tables(right)
    assert {"bronze/events", "silver/graph_metrics", "gold/user_labels",
            "gold/customer_segments"} <= tables
    problems, summary = warehouse_compare.compare(left, right, started, tables, versions=False)
    print("[s3] " + "; ".join(summary))
    assert not problems, "\n\n".join(problems)

    # the manifest and run state are in the bucket
    runs = load_manifests(right)
    assert [(m["run_id"], m["status"]) for m in runs] == [(manifest.run_id, "ok")]
    assert files.list_files(files.join(right, "_state"), (".json",))

    # models: registered in the bucket, loaded back from it, the same metrics as the local run
    local_registry, registry = registry_for(cfg), registry_for(remote)
    for name, metric in (("churn", "average_precision"), ("intent", "average_precision"),
                         ("clv", "rmse")):
        assert registry.latest_version(name) == 1
        here, there = local_registry.metrics(name, 1)["xgb"], registry.metrics(name, 1)["xgb"]
        assert there[metric] == pytest.approx(here[metric], rel=1e-6), name
    assert registry.model_uri("churn", 1).startswith(
        s3.replace("s3://", "s3a://") + "/models/mlartifacts/")
    model = registry.load("churn", 1)
    assert model.feature_cols == local_registry.load("churn", 1).feature_cols

    # the export: the same pseudonymised rows
    def export(config):
        score = next(s for s in config_manifest(config).stages if s.stage == "score")
        path = score.details["export"]["paths"]["parquet"]
        return (spark.read.parquet(path).toPandas()  # ~300 rows
                .sort_values("user_key").reset_index(drop=True))

    def config_manifest(config):
        return manifest if config is remote else backfilled

    remote_export = export(remote)
    assert export(cfg).equals(remote_export)
    assert remote_export["user_key"].str.fullmatch("[0-9a-f]{64}").all()

    # the report: written into the bucket, with the local report's sections
    report = next(s for s in manifest.stages if s.stage == "report")
    local_report = next(s for s in backfilled.stages if s.stage == "report")
    assert report.details["path"].startswith(s3.replace("s3://", "s3a://") + "/reports/")
    assert report.details["sections"] == local_report.details["sections"]
    html = files.read_text(report.details["path"])
    assert "<svg" in html or "data:image/png;base64" in html


@pytest.mark.slow
def test_delta_spark_backend_writes_the_same_tables(backfilled, spark, cfg, tmp_path_factory):
    """The same backfill on storage.backend=delta-spark (the jar on the write path): every
    bronze/silver/gold table equals the delta-rs run's, and each backend reads the other's.

    Slow (a second 30-day backfill): `make test-slow`. `make test` compares the backends
    through the cluster test (tests/integration/test_cluster.py: this backfill against the
    same backfill on the cluster with the resolved jars) and cross-backend reads in
    tests/unit/test_storage_backends.py."""
    import warehouse_compare

    from mktpipe.session import capabilities

    if not capabilities(spark).delta_spark:
        pytest.skip("no delta-spark in this session: " + capabilities(spark).reasons[
            "delta_spark"])
    first = open_store(spark, cfg)
    assert first.backend == "delta-rs"
    root = tmp_path_factory.mktemp("pipeline-delta-spark")
    paths = {name: str(root / name) for name in
             ("warehouse", "models", "reports", "exports", "checkpoints")}
    spark_cfg = cfg.model_copy(deep=True)
    for name, value in paths.items():
        setattr(spark_cfg.paths, name, value)
    spark_cfg.storage.backend = "delta-spark"
    started = dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=1)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(cfg.export.key_env, KEY)
        manifest = run_backfill(spark, spark_cfg, START, END)
    assert manifest.status == "ok"
    second = open_store(spark, spark_cfg)
    assert second.backend == "delta-spark"
    left, right = cfg.resolve_path("warehouse"), spark_cfg.resolve_path("warehouse")
    tables = warehouse_compare.tables(left)
    assert tables == warehouse_compare.tables(right)
    assert {"bronze/events", "silver/comment_sentiment", "silver/graph_metrics",
            "gold/user_features", "gold/user_labels", "gold/customer_segments"} <= tables
    problems, summary = warehouse_compare.compare(left, right, started, tables,
                                                  versions=False)
    print("[backends] " + "; ".join(summary))
    assert not problems, "\n\n".join(problems)
    # each backend reads the other's warehouse
    from mktpipe.storage.delta_rs import DeltaRsStore
    from mktpipe.storage.delta_spark import DeltaSparkStore

    for table in (BRONZE_EVENTS, CUSTOMER_SEGMENTS):
        assert DeltaSparkStore(spark, str(left)).read(table).count() == \
            DeltaRsStore(spark, str(right)).read(table).count()


def test_rerun_skips_everything_and_changes_nothing(backfilled, spark, cfg):
    store = open_store(spark, cfg)
    before = {t: store.version(t) for t in TABLES}
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(cfg.export.key_env, KEY)
        again = run_backfill(spark, cfg, START, END)
    assert {s.status for s in again.stages} == {"skipped"}
    assert {t: store.version(t) for t in TABLES} == before


def test_failed_run_resumes_from_the_failed_stage(backfilled, spark, cfg, monkeypatch):
    """A crash in score stops the run there; the re-run skips what completed and resumes at
    score. The run covers the model stages only (`mktpipe run --stages train,score,report`):
    the stages before them behave the same way and each re-run costs minutes here."""
    import mktpipe.score.stage as score_stage

    monkeypatch.setenv(cfg.export.key_env, KEY)
    real = score_stage.run_score
    stages = ("train", "score", "report")

    def broken(*args, **kwargs):
        raise RuntimeError("simulated crash in score")

    monkeypatch.setattr(score_stage, "run_score", broken)
    with pytest.raises(StageFailed, match="stage 'score' failed for 2026-08-31"):
        run_pipeline(spark, cfg, END, stages=stages)
    state = RunState.load(cfg.resolve_path("warehouse"), f"run-{END}")
    assert list(state.steps) == ["train"]  # recorded as done; score is not
    assert state.steps["train"]["status"] == "skipped"  # models trained for 08-31 already
    store = open_store(spark, cfg)
    segments_version = store.version(CUSTOMER_SEGMENTS)

    monkeypatch.setattr(score_stage, "run_score", real)
    resumed = run_pipeline(spark, cfg, END, stages=stages)
    status = {s.stage: s.status for s in resumed.stages}
    assert status == {"train": "skipped", "score": "ok", "report": "ok"}
    assert resumed.status == "ok"
    assert store.version(CUSTOMER_SEGMENTS) > segments_version  # score really ran again
