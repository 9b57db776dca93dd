"""``mktpipe doctor``: versions and the backend each capability uses, with the reason.

Runs without starting Spark: capability detection looks at jars on disk, as the session
factory does before start-up.
"""

from __future__ import annotations

import platform
import subprocess
import sys
from importlib import metadata

from mktpipe import blas
from mktpipe.config import Config
from mktpipe.session import (
    detect_capabilities,
    jar_inventory,
    jars_dir,
    spark_line,
    uses_delta_spark,
)

PACKAGES = ("pyspark", "deltalake", "delta-spark", "pandas", "pyarrow", "numpy",
            "xgboost-cpu", "graphframes-py", "spark-nlp", "vaderSentiment", "igraph",
            "networkx", "scikit-learn", "statsmodels", "pydantic")


def _java_version() -> str:
    try:
        out = subprocess.run(["java", "-version"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"not found ({exc}); Spark needs Java 17"
    return (out.stderr or out.stdout).splitlines()[0] if (out.stderr or out.stdout) else "?"


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def backends(config: Config) -> list[tuple[str, str, str]]:
    """(capability, backend, why) rows."""
    caps, _ = detect_capabilities(config)
    rows = []
    if config.storage.backend == "delta-rs":
        rows.append(("Delta tables", "delta-rs", "storage.backend is delta-rs"))
    elif caps.delta_spark:
        rows.append(("Delta tables", "delta-spark", caps.reasons["delta_spark"]))
    else:
        rows.append(("Delta tables", "delta-rs (Spark writes Parquet, deltalake commits)",
                     caps.reasons["delta_spark"]))
    if caps.graphframes:
        rows.append(("PageRank", "graphframes", caps.reasons["graphframes"]))
    else:
        rows.append(("PageRank", "igraph for small graphs, else DataFrame power iteration",
                     caps.reasons["graphframes"]))
    rows.append(("Louvain", "igraph for small graphs, else distributed DataFrame Louvain",
                 "GraphFrames has no Louvain; the DataFrame engine serves every cluster"))
    if caps.spark_nlp:
        rows.append(("sentiment", "spark-nlp when a local model path is configured, else "
                     "VADER", caps.reasons["spark_nlp"]))
    else:
        rows.append(("sentiment", "lexicon model (VADER) in a pandas UDF",
                     caps.reasons["spark_nlp"]))
    rows.append(("XGBoost / MLlib", "xgboost.spark + pyspark.ml", "pure Python packages"))
    rows.append(("MLlib BLAS", *blas.describe()))
    if caps.s3a:
        rows.append(("object storage", "s3:// through s3a (Spark), pyarrow and delta-rs",
                     caps.reasons["s3a"]))
    else:
        rows.append(("object storage", "local and hdfs:// paths only for Spark (pyarrow and "
                     "delta-rs reach s3:// without the jar)", caps.reasons["s3a"]))
    rows.append(query_engine(config, caps))
    return rows


def query_engine(config: Config, caps) -> tuple[str, str, str]:
    """The doctor's row for spark.accelerator: which engine runs the queries, and why."""
    wanted = config.spark.accelerator
    if wanted != "none" and caps.comet:
        why = f"spark.accelerator is {wanted}; {caps.reasons['comet']}"
        if uses_delta_spark(config, caps):
            why += ("; but the Delta tables are read through delta-spark, whose scans Comet "
                    "does not run (their queries stay on Spark): set storage.backend: delta-rs")
        return ("query engine", "Apache DataFusion Comet (native) where it supports the plan, "
                "Spark elsewhere", why)
    if wanted == "none":
        why = ("spark.accelerator is none" + ("; the Comet jar is there: set it to comet or "
                                              "auto to use it" if caps.comet else ""))
    else:
        why = f"spark.accelerator is {wanted} but {caps.reasons['comet']}"
    return ("query engine", "Spark's own (JVM)", why)


def report(config: Config) -> str:
    lines = [
        f"python      {sys.version.split()[0]} ({sys.executable})",
        f"platform    {platform.platform()}",
        f"java        {_java_version()}",
        f"spark master {config.spark.master}",
        "",
        "packages:",
    ]
    lines += [f"  {name:<16} {_version(name)}" for name in PACKAGES]
    folder = jars_dir(config)
    jars = jar_inventory(config)
    lines += ["", f"extension jars in {folder or '(spark.jars_dir not set)'} "
                  f"(for Spark {spark_line()}; `make jars` resolves jvm/pom.xml):"]
    if jars:
        lines += [f"  {name:<34} {version}" for name, version, _ in jars]
    else:
        lines.append("  none: every capability uses its embedded default")
    lines += ["", "backends:"]
    for capability, backend, why in backends(config):
        lines.append(f"  {capability:<16} {backend}")
        lines.append(f"  {'':<16} why: {why}")
    return "\n".join(lines)
