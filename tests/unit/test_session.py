"""Capability detection happens before start-up, from jars on disk; nothing is faked."""

from __future__ import annotations

import pytest

from mktpipe.config import load_config
from mktpipe.session import (
    build_conf,
    capabilities,
    detect_capabilities,
    from_pandas,
    temporary_conf,
)


def _config(**spark):
    return load_config("test", {"spark": spark}, environ={})


def test_no_jars_means_embedded_defaults_and_no_maven(tmp_path):
    caps, extra = detect_capabilities(_config(jars_dir=str(tmp_path)))
    assert (caps.delta_spark, caps.graphframes, caps.spark_nlp) == (False, False, False)
    assert "delta-spark_<spark>_2.13" in caps.reasons["delta_spark"]
    assert "make jars" in caps.reasons["delta_spark"]
    conf = build_conf(_config(), caps, extra)
    assert "spark.jars.packages" not in conf
    assert "spark.sql.extensions" not in conf
    assert "spark.sql.catalog.spark_catalog" not in conf


def test_jars_in_the_jars_dir_enable_their_backends(tmp_path):
    for name in ("delta-spark_2.13-4.4.1.jar", "delta-storage-4.4.1.jar",
                 "delta-kernel-api-4.4.1.jar",
                 "graphframes-spark4_2.13-0.12.3.jar", "spark-nlp_2.13-7.0.0.jar"):
        (tmp_path / name).write_bytes(b"")
    config = _config(jars_dir=str(tmp_path))
    caps, extra = detect_capabilities(config)
    assert (caps.delta_spark, caps.graphframes, caps.spark_nlp) == (True, True, True)
    conf = build_conf(config, caps, extra)
    assert conf["spark.sql.extensions"] == "io.delta.sql.DeltaSparkSessionExtension"
    jars = conf["spark.jars"].split(",")
    assert any(j.endswith("delta-storage-4.4.1.jar") for j in jars)
    assert any(j.endswith("graphframes-spark4_2.13-0.12.3.jar") for j in jars)
    # the folder is the resolved set: dependencies such as the kernel jars go along
    assert any(j.endswith("delta-kernel-api-4.4.1.jar") for j in jars)
    assert "spark.jars.packages" not in conf
    # Delta rebuilds table state in as many tasks as a shuffle, unless the config says
    assert conf["spark.databricks.delta.snapshotPartitions"] == "2"  # test: 2 partitions
    own = _config(jars_dir=str(tmp_path), shuffle_partitions=8,
                  conf={"spark.databricks.delta.snapshotPartitions": "50"})
    assert build_conf(own, caps, extra)["spark.databricks.delta.snapshotPartitions"] == "50"
    assert build_conf(_config(jars_dir=str(tmp_path), shuffle_partitions=8), caps, extra)[
        "spark.databricks.delta.snapshotPartitions"] == "8"


def test_a_jar_built_for_another_spark_line_is_not_used(tmp_path):
    from mktpipe.session import spark_line

    other = "9.9" if spark_line() != "9.9" else "9.8"
    for name in (f"delta-spark_{other}_2.13-4.4.0.jar", "delta-storage-4.4.0.jar"):
        (tmp_path / name).write_bytes(b"")
    caps, _ = detect_capabilities(_config(jars_dir=str(tmp_path)))
    assert caps.delta_spark is False
    assert f"built for Spark {other}" in caps.reasons["delta_spark"]
    assert spark_line() in caps.reasons["delta_spark"]


def test_the_jar_of_this_spark_line_is_used(tmp_path):
    from mktpipe.session import jar_inventory, spark_line

    for name in (f"delta-spark_{spark_line()}_2.13-4.4.0.jar", "delta-storage-4.4.0.jar"):
        (tmp_path / name).write_bytes(b"")
    config = _config(jars_dir=str(tmp_path))
    caps, _ = detect_capabilities(config)
    assert caps.delta_spark is True
    assert [(name, version) for name, version, _ in jar_inventory(config)] == [
        (f"delta-spark_{spark_line()}_2.13", "4.4.0"), ("delta-storage", "4.4.0")]


def test_delta_jar_without_delta_storage_is_not_used(tmp_path):
    (tmp_path / "delta-spark_2.13-4.4.1.jar").write_bytes(b"")
    caps, _ = detect_capabilities(_config(jars_dir=str(tmp_path)))
    assert caps.delta_spark is False
    assert "delta-storage" in caps.reasons["delta_spark"]


def test_maven_packages_only_when_config_asks():
    config = _config(packages=["io.delta:delta-spark_2.13:4.4.1"])
    caps, extra = detect_capabilities(config)
    assert caps.delta_spark is True
    assert build_conf(config, caps, extra)["spark.jars.packages"] == (
        "io.delta:delta-spark_2.13:4.4.1"
    )


def test_running_session_reports_what_was_detected(spark, config):
    detected, _ = detect_capabilities(config)
    caps = capabilities(spark)
    assert (caps.delta_spark, caps.graphframes, caps.spark_nlp) == (
        detected.delta_spark, detected.graphframes, detected.spark_nlp)
    assert caps.reasons == detected.reasons
    assert spark.conf.get("spark.sql.session.timeZone") == "UTC"


def test_a_relative_jars_dir_is_found_from_another_working_directory(tmp_path, monkeypatch):
    """`mktpipe` started outside the checkout (bench/pipeline.py's subprocesses, cron from
    $HOME) still finds the jars `make jars` put in the checkout."""
    from mktpipe import session

    checkout, elsewhere = tmp_path / "checkout", tmp_path / "elsewhere"
    (checkout / "jars").mkdir(parents=True)
    elsewhere.mkdir()
    monkeypatch.setattr(session, "CHECKOUT", checkout)
    monkeypatch.chdir(elsewhere)
    assert session.jars_dir(_config(jars_dir="jars")) == checkout / "jars"
    (elsewhere / "jars").mkdir()  # one in the working directory wins
    assert session.jars_dir(_config(jars_dir="jars")) == elsewhere / "jars"
    assert session.jars_dir(_config(jars_dir="nowhere")) == elsewhere / "nowhere"
    assert session.jars_dir(_config(jars_dir=str(checkout / "jars"))) == checkout / "jars"
    assert session.jars_dir(_config(jars_dir=None)) is None


def test_a_local_master_lists_files_in_the_driver_a_cluster_keeps_sparks_default(tmp_path):
    caps, extra = detect_capabilities(_config(jars_dir=str(tmp_path)))
    key = "spark.sql.sources.parallelPartitionDiscovery.threshold"
    assert build_conf(_config(master="local[2]"), caps, extra)[key] == "1024"
    assert key not in build_conf(_config(master="spark://head:7077"), caps, extra)
    own = _config(master="local[2]", conf={key: "64"})
    assert build_conf(own, caps, extra)[key] == "64"


def test_the_jvm_compiles_sparks_huge_generated_methods(spark, tmp_path):
    """Spark's generated code for wide projections exceeds HotSpot's 8,000-byte JIT limit;
    the session's JVM is told to compile such methods anyway (session.JVM_OPTIONS), and a
    user's own options replace the defaults."""
    runtime = spark.sparkContext._jvm.java.lang.management.ManagementFactory.getRuntimeMXBean()
    assert "-XX:-DontCompileHugeMethods" in list(runtime.getInputArguments())
    caps, extra = detect_capabilities(_config(jars_dir=str(tmp_path)))
    key = "spark.executor.extraJavaOptions"
    assert "-XX:-DontCompileHugeMethods" in build_conf(_config(), caps, extra)[key]
    assert build_conf(_config(conf={key: "-Xss4m"}), caps, extra)[key] == "-Xss4m"


def test_from_pandas_keeps_the_rows_out_of_the_plan(spark):
    import pandas as pd

    frame = pd.DataFrame({"vid": [2, 0, 1], "score": [0.5, 0.25, 0.125]})

    df = from_pandas(spark, frame, "vid long, score double")

    # the plan holds an RDD (recomputable from the driver's copy), not a local relation whose
    # rows every later query would copy and compare while planning
    plan = df._jdf.queryExecution().analyzed().toString()
    assert "LocalRelation" not in plan and "LogicalRDD" in plan
    assert df.schema.simpleString() == "struct<vid:bigint,score:double>"
    assert sorted(map(tuple, df.collect())) == [(0, 0.25), (1, 0.125), (2, 0.5)]
    # and it joins like any frame
    assert df.join(df.select("vid"), "vid").count() == 3


def test_temporary_conf_restores_set_values_and_unsets_new_keys(spark):
    key, fresh = "spark.sql.shuffle.partitions", "spark.mktpipe.test.temporary"
    before = spark.conf.get(key)
    with pytest.raises(RuntimeError):
        with temporary_conf(spark, {key: "7", fresh: "x"}):
            assert (spark.conf.get(key), spark.conf.get(fresh)) == ("7", "x")
            raise RuntimeError("the block fails: the settings still come back")
    assert spark.conf.get(key) == before
    assert spark.conf.get(fresh, None) is None


def test_comet_runs_the_queries_only_where_the_accelerator_asks_and_its_jar_is_there(
        tmp_path, caplog):
    from mktpipe.doctor import query_engine
    from mktpipe.session import COMET_PLUGIN, COMET_SHUFFLE, spark_line

    jar = tmp_path / f"comet-spark-spark{spark_line()}_2.13-1.2.0.jar"
    jar.write_bytes(b"")
    (tmp_path / "hadoop-aws-3.4.2.jar").write_bytes(b"")

    def conf_for(accelerator, folder=tmp_path, **spark):
        config = _config(jars_dir=str(folder), accelerator=accelerator, **spark)
        caps, extra = detect_capabilities(config)
        return caps, build_conf(config, caps, extra), config

    caps, conf, config = conf_for("none")
    assert caps.comet is True and str(jar) in caps.reasons["comet"]
    assert "spark.plugins" not in conf and "spark.shuffle.manager" not in conf
    assert str(jar) not in conf["spark.jars"]  # not even on the class path
    assert "set it to comet or auto" in query_engine(config, caps)[2]
    for accelerator in ("comet", "auto"):
        caps, conf, config = conf_for(accelerator, accelerator_memory="3g")
        assert conf["spark.plugins"] == COMET_PLUGIN
        assert conf["spark.shuffle.manager"] == COMET_SHUFFLE
        assert (conf["spark.memory.offHeap.enabled"], conf["spark.memory.offHeap.size"]) == (
            "true", "3g")
        assert conf["spark.driver.extraClassPath"] == str(jar)
        assert conf["spark.executor.extraClassPath"] == str(jar)
        assert query_engine(config, caps)[1].startswith("Apache DataFusion Comet")
        assert "delta-spark" not in query_engine(config, caps)[2]  # no delta-spark jar here
    (tmp_path / "delta-spark_2.13-4.4.0.jar").write_bytes(b"")
    (tmp_path / "delta-storage-4.4.0.jar").write_bytes(b"")
    caps, _, config = conf_for("auto")
    assert "set storage.backend: delta-rs" in query_engine(config, caps)[2]
    # the config's own Spark settings still win
    _, conf, _ = conf_for("auto", conf={"spark.memory.offHeap.size": "5g"})
    assert conf["spark.memory.offHeap.size"] == "5g"

    empty = tmp_path / "empty"
    empty.mkdir()
    caps, conf, config = conf_for("comet", folder=empty)
    assert caps.comet is False and "make jars" in caps.reasons["comet"]
    assert "spark.plugins" not in conf
    assert "running on Spark's own engine" in caplog.text
    assert query_engine(config, caps)[1] == "Spark's own (JVM)"

    other = "9.9" if spark_line() != "9.9" else "9.8"
    jar.rename(tmp_path / f"comet-spark-spark{other}_2.13-1.2.0.jar")
    caps, conf, _ = conf_for("auto")
    assert caps.comet is False and f"built for Spark {other}" in caps.reasons["comet"]
    assert "spark.plugins" not in conf
