"""SparkSession factory with capability detection *before* the session starts.

Jar-backed extensions (Delta's Spark side, GraphFrames, Spark NLP) are enabled only when their
jar is found on disk, or when config names Maven coordinates in ``spark.packages``. Setting the
Delta catalog without its jar breaks every query, and ``spark.jars.packages`` with no network
kills the JVM gateway, so neither is ever set by default.

Where jars are looked for, in order: ``spark.jars_dir`` from config, the paths in a configured
``spark.jars``, ``$SPARK_HOME/jars``, and the jars folder of the installed pyspark.
"""

from __future__ import annotations

import glob
import logging
import os
import re
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession

from mktpipe import blas
from mktpipe.config import Config, object_store_env, s3_endpoint, s3_region

log = logging.getLogger(__name__)

# file-name patterns of each extension's jar; group "spark" is the Spark line a jar is built for
JAR_PATTERNS = {
    "delta_spark": re.compile(
        r"^delta-spark_((?P<spark>\d+\.\d+)_)?2\.1[23]-(?P<version>[\d.]+).*\.jar$"),
    "graphframes": re.compile(
        r"^graphframes-(spark(?P<spark>\d+)_)?2\.1[23]-(?P<version>[\d.]+).*\.jar$"),
    "spark_nlp": re.compile(r"^spark-nlp(-[a-z0-9]+)?_2\.1[23]-(?P<version>[\d.]+).*\.jar$"),
    "s3a": re.compile(r"^hadoop-aws-(?P<version>[\d.]+)\.jar$"),
    "comet": re.compile(
        r"^comet-spark-spark(?P<spark>\d+\.\d+)_2\.1[23]-(?P<version>[\d.]+)\.jar$"),
}
JAR_NAMES = {
    "delta_spark": "delta-spark_<spark>_2.13-<version>.jar (+ delta-storage-<version>.jar)",
    "graphframes": "graphframes-spark4_2.13-<version>.jar",
    "spark_nlp": "spark-nlp_2.13-<version>.jar",
    "s3a": "hadoop-aws-<version>.jar (+ the AWS SDK v2 modules)",
    "comet": "comet-spark-spark<spark>_2.13-<version>.jar",
}
# the `make jars` profile (jvm/pom.xml) that resolves each capability
JAR_PROFILES = {"delta_spark": "delta", "graphframes": "graphframes", "spark_nlp": "sparknlp",
                "s3a": "s3", "comet": "comet"}
# Maven coordinate prefixes that provide each capability through spark.packages
PACKAGE_PREFIXES = {
    "delta_spark": "io.delta:delta-spark",
    "graphframes": "io.graphframes:graphframes",
    "spark_nlp": "com.johnsnowlabs.nlp:spark-nlp",
    "s3a": "org.apache.hadoop:hadoop-aws",
    "comet": "org.apache.datafusion:comet-spark",
}
# Apache DataFusion Comet (spark.accelerator): its plugin, its shuffle, and where it says so
COMET_PLUGIN = "org.apache.spark.CometPlugin"
COMET_SHUFFLE = "org.apache.spark.sql.comet.execution.shuffle.CometShuffleManager"
_CONF_PREFIX = "spark.mktpipe.capability."
# files a local master lists in the driver before it starts a listing job (Spark: 32)
LOCAL_LISTING_THRESHOLD = 1024
# HotSpot does not JIT-compile a method of more than 8,000 bytes of bytecode unless told to
# (-XX:-DontCompileHugeMethods). Spark's whole-stage generated code for a wide projection (the
# ingest rules over every field, the feature and label tables) exceeds that, and then runs in
# the bytecode interpreter for the whole job: the events' validation pass took 23.8 s instead
# of 6.3 s on 2 M lines. Spark's own spark.sql.codegen.hugeMethodLimit=8000 (give up
# whole-stage code above the limit) measured 7.2 s there, and slower ingest end to end.
JVM_OPTIONS = "-Duser.timezone=UTC -XX:-DontCompileHugeMethods"
_VERSIONED = re.compile(r"^(?P<name>.+?)-(?P<version>\d[\w.+-]*)\.jar$")


@dataclass(frozen=True)
class Capabilities:
    """Which jar-backed backends this session can use, and why (or why not)."""

    delta_spark: bool = False
    graphframes: bool = False
    spark_nlp: bool = False
    s3a: bool = False  # Spark reads and writes s3:// paths (hadoop-aws)
    comet: bool = False  # the Comet jar is there (used when spark.accelerator asks for it)
    reasons: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


# the checkout this package runs from (an editable install: where `make jars` put the jars)
CHECKOUT = Path(__file__).resolve().parents[1]


def jars_dir(config: Config) -> Path | None:
    """The configured extension jars folder. A relative path is taken from the working
    directory when that folder exists there, else from the checkout this package runs from
    (``mktpipe`` started in another folder still finds what ``make jars`` resolved); where
    neither exists, the working directory's (so messages name the path as configured)."""
    if not config.spark.jars_dir:
        return None
    path = Path(config.spark.jars_dir).expanduser()
    here = path.resolve()
    if path.is_absolute() or here.is_dir():
        return here
    checkout = CHECKOUT / path
    return checkout if checkout.is_dir() else here


def _jar_dirs(config: Config) -> list[Path]:
    dirs = []
    own = jars_dir(config)
    if own is not None:
        dirs.append(own)
    spark_home = os.environ.get("SPARK_HOME")
    if spark_home:
        dirs.append(Path(spark_home) / "jars")
    import pyspark

    dirs.append(Path(pyspark.__file__).parent / "jars")
    return dirs


def _configured_jars(config: Config) -> list[Path]:
    listed = config.spark.conf.get("spark.jars", "")
    return [Path(p.strip()) for p in listed.split(",") if p.strip()]


def spark_line() -> str:
    """The installed pyspark's major.minor (what a Spark-versioned jar must be built for)."""
    import pyspark

    return ".".join(pyspark.__version__.split(".")[:2])


def jar_inventory(config: Config) -> list[tuple[str, str, Path]]:
    """(artifact, version, path) of every jar in the configured jars folder, by name."""
    folder = jars_dir(config)
    if folder is None or not folder.is_dir():
        return []
    rows = []
    for path in sorted(folder.glob("*.jar")):
        match = _VERSIONED.match(path.name)
        name, version = (match["name"], match["version"]) if match else (path.stem, "?")
        rows.append((name, version, path))
    return rows


def _wrong_spark_line(name: str, path: Path) -> str | None:
    match = JAR_PATTERNS[name].match(path.name)
    built_for = match.groupdict().get("spark") if match else None
    if not built_for:
        return None
    line = spark_line()
    if name == "graphframes":  # graphframes-spark4: built for a Spark major version
        return None if line.split(".")[0] == built_for else f"Spark {built_for}.x"
    return None if built_for == line else f"Spark {built_for}"


def detect_capabilities(config: Config) -> tuple[Capabilities, list[str]]:
    """Find extension jars on disk before start-up.

    Returns the capabilities and the jar paths to add to ``spark.jars``: every jar of the
    configured jars folder (the set ``make jars`` resolved, dependencies included) and the
    delta-storage jar beside a configured delta-spark jar. Jars in ``$SPARK_HOME/jars`` and
    pyspark's own folder are on Spark's class path already.
    """
    found: dict[str, bool] = {}
    reasons: dict[str, str] = {}
    candidates = _jar_candidates(config)
    searched = ", ".join(str(d) for d in _jar_dirs(config)) or "(none)"
    for name, pattern in JAR_PATTERNS.items():
        hits = [p for p, _ in candidates if pattern.match(p.name) and p.exists()]
        usable = [p for p in hits if _wrong_spark_line(name, p) is None]
        package = next(
            (c for c in config.spark.packages if c.startswith(PACKAGE_PREFIXES[name])), None
        )
        if usable:
            found[name] = True
            reasons[name] = f"jar found: {usable[0]}"
        elif package:
            found[name] = True
            reasons[name] = f"Maven package requested in spark.packages: {package}"
        elif hits:
            found[name] = False
            reasons[name] = (
                f"{hits[0].name} is built for {_wrong_spark_line(name, hits[0])}, but pyspark "
                f"is {spark_line()}; re-run `make jars` (jvm/pom.xml pins the matching build); "
                "using the embedded default"
            )
        else:
            found[name] = False
            reasons[name] = (
                f"no {JAR_NAMES[name]} in spark.jars or {searched}, and no Maven coordinate "
                f"in spark.packages (`make jars` resolves the '{JAR_PROFILES[name]}' profile "
                "of jvm/pom.xml); using the embedded default"
            )
    if found["delta_spark"] and not config.spark.packages:
        # the delta-spark jar needs delta-storage beside it
        if not any(p.name.startswith("delta-storage") for p, _ in candidates):
            found["delta_spark"] = False
            reasons["delta_spark"] = (
                "delta-spark jar found but no delta-storage jar beside it; using delta-rs"
            )
    # Comet's jar goes on the class path only when the accelerator is on (build_conf)
    extra_jars = [str(p) for p, auto in candidates if not auto and p.exists()
                  and not JAR_PATTERNS["comet"].match(p.name)]
    if not any(found.values()):
        extra_jars = [str(p) for p in _configured_jars(config)]
    return Capabilities(reasons=reasons, **found), list(dict.fromkeys(extra_jars))


def _jar_candidates(config: Config) -> list[tuple[Path, bool]]:
    """(path, on Spark's class path already) for every jar configured or in a searched
    folder: the configured ``spark.jars``, the jars folder, ``$SPARK_HOME/jars`` and
    pyspark's own (the last two Spark loads itself)."""
    own = jars_dir(config)
    candidates = [(p, False) for p in _configured_jars(config)]
    for folder in _jar_dirs(config):
        candidates += [(Path(p), folder != own) for p in sorted(glob.glob(str(folder / "*.jar")))]
    return candidates


def comet_jar(config: Config) -> Path | None:
    """The Comet jar for this Spark line in the configured jars (None where there is none,
    or where it is in a folder Spark puts on its class path itself)."""
    return next((p for p, loaded_by_spark in _jar_candidates(config)
                 if not loaded_by_spark and JAR_PATTERNS["comet"].match(p.name) and p.exists()
                 and _wrong_spark_line("comet", p) is None), None)


def uses_delta_spark(config: Config, caps: Capabilities) -> bool:
    """Whether the Delta tables go through delta-spark (its jar is there and
    ``storage.backend`` is auto or delta-spark) rather than delta-rs."""
    return caps.delta_spark and config.storage.backend in ("auto", "delta-spark")


def accelerator_conf(config: Config, caps: Capabilities) -> dict[str, str]:
    """The settings that run queries on Comet, where ``spark.accelerator`` asks for it and its
    jar is there; empty otherwise. Comet runs the operators and expressions it supports in
    native code (Apache DataFusion, Arrow batches, its own shuffle) and leaves the rest to
    Spark, which gives the same results (a test checks on the daily and feature tables)."""
    wanted = config.spark.accelerator
    if wanted == "none":
        return {}
    if not caps.comet:
        if wanted == "comet":
            log.warning("spark.accelerator is comet but %s; running on Spark's own engine",
                        caps.reasons.get("comet", "no Comet jar"))
        return {}
    conf = {
        "spark.plugins": COMET_PLUGIN,
        "spark.shuffle.manager": COMET_SHUFFLE,
        # Comet works in Spark's off-heap memory, beside the JVM heap (spark.driver_memory)
        "spark.memory.offHeap.enabled": "true",
        "spark.memory.offHeap.size": config.spark.accelerator_memory,
    }
    jar = comet_jar(config)
    if jar is not None:  # its shuffle manager is loaded before spark.jars are
        conf["spark.driver.extraClassPath"] = str(jar)
        conf["spark.executor.extraClassPath"] = str(jar)
    return conf


# --- object storage: Spark's view of the environment's S3 settings -------------------------

def hadoop_options() -> dict[str, str]:
    """Spark's ``fs.s3a.*`` settings from the environment (empty when nothing is set: S3A's
    defaults and its credential chain, which reads ``AWS_ACCESS_KEY_ID`` and friends, apply)."""
    options: dict[str, str] = {}
    endpoint = s3_endpoint()
    if endpoint:
        options["fs.s3a.endpoint"] = endpoint
        # an S3-compatible server is addressed by path, not by bucket.host names
        options["fs.s3a.path.style.access"] = "true"
        options["fs.s3a.connection.ssl.enabled"] = str(endpoint.startswith("https")).lower()
    if s3_region():
        options["fs.s3a.endpoint.region"] = s3_region()
    return options


_S3A_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "fs.s3a.access.key",
                    "AWS_SECRET_ACCESS_KEY": "fs.s3a.secret.key",
                    "AWS_SESSION_TOKEN": "fs.s3a.session.token"}


def configure_spark(spark) -> list[str]:
    """Apply :func:`hadoop_options` to a running session (its SparkContext's Hadoop
    configuration, which DataFrame and RDD I/O both start from); returns the keys set.

    A JVM reads its environment once, when it starts: a session started before the object
    storage variables were set (a notebook, a test) also gets the credentials this way, in
    memory only (never in a file, a log or Spark's own settings). S3A caches one filesystem
    per bucket: settings changed after a bucket was first touched apply to other buckets."""
    options = hadoop_options()
    env = object_store_env(credentials=True)
    options.update({key: env[name] for name, key in _S3A_CREDENTIALS.items() if name in env})
    if options:
        conf = spark.sparkContext._jsc.hadoopConfiguration()  # the documented way from Python
        for key, value in options.items():
            conf.set(key, value)
    return sorted(options)


def _python_env() -> None:
    # Spark's Python workers start whatever python3 is first on PATH; pin them to ours so
    # pandas UDFs can import mktpipe even when the virtualenv is not activated.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")


def build_conf(config: Config, caps: Capabilities, extra_jars: list[str]) -> dict[str, str]:
    """The Spark settings for a session: defaults, capability settings, then config's own."""
    conf = {
        "spark.sql.shuffle.partitions": str(config.spark.shuffle_partitions),
        "spark.driver.memory": config.spark.driver_memory,
        "spark.ui.enabled": str(config.spark.ui_enabled).lower(),
        "spark.ui.showConsoleProgress": "false",
        # iterative graph algorithms checkpoint every round: delete files no longer needed
        "spark.cleaner.referenceTracking.cleanCheckpoints": "true",
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
        "spark.sql.sources.partitionOverwriteMode": "static",
        "spark.hadoop.mapreduce.fileoutputcommitter.marksuccessfuljobs": "false",
        "spark.sql.execution.arrow.pyspark.enabled": "true",
        "spark.driver.extraJavaOptions": JVM_OPTIONS,
        "spark.executor.extraJavaOptions": JVM_OPTIONS,
    }
    if config.spark.master.startswith("local"):
        # a read of more than 32 files (the delta-rs store reads a table as its file list)
        # lists them in a Spark job; on a local master that job runs on the same cores as a
        # driver loop would, and costs about 1 s of job overhead for a 120-file table against
        # 0.1-0.2 s (bench/features.py). A cluster keeps Spark's default.
        conf["spark.sql.sources.parallelPartitionDiscovery.threshold"] = str(
            LOCAL_LISTING_THRESHOLD)
    if config.spark.packages:
        conf["spark.jars.packages"] = ",".join(config.spark.packages)
    jars = [j for j in config.spark.conf.get("spark.jars", "").split(",") if j] + extra_jars
    if jars:
        conf["spark.jars"] = ",".join(dict.fromkeys(jars))
    if uses_delta_spark(config, caps):
        conf["spark.sql.extensions"] = "io.delta.sql.DeltaSparkSessionExtension"
        conf["spark.sql.catalog.spark_catalog"] = (
            "org.apache.spark.sql.delta.catalog.DeltaCatalog"
        )
        # Delta rebuilds a table's state from its log in this many tasks (its default, 50,
        # is for huge logs): as many as a shuffle, so a read of a small table on local[2]
        # takes about 1 s instead of 4
        conf["spark.databricks.delta.snapshotPartitions"] = str(config.spark.shuffle_partitions)
    conf.update(accelerator_conf(config, caps))
    for key, value in config.spark.conf.items():
        if key != "spark.jars":
            conf[key] = value
    # object storage reached through the environment's endpoint/region (mktpipe.storage.files)
    for key, value in hadoop_options().items():
        conf.setdefault("spark.hadoop." + key, value)
    for name, ok in (
        ("delta_spark", caps.delta_spark),
        ("graphframes", caps.graphframes),
        ("spark_nlp", caps.spark_nlp),
        ("s3a", caps.s3a),
        ("comet", caps.comet),
    ):
        conf[_CONF_PREFIX + name] = str(ok).lower()
        conf[_CONF_PREFIX + name + ".reason"] = caps.reasons.get(name, "")
    return conf


def get_spark(config: Config) -> SparkSession:
    """Build (or return the running) SparkSession for ``config``.

    Capability detection runs first; the chosen settings are logged.
    """
    _python_env()
    caps, extra_jars = detect_capabilities(config)
    conf = build_conf(config, caps, extra_jars)
    builder = SparkSession.builder.appName(config.spark.app_name)
    if "PYSPARK_GATEWAY_PORT" in os.environ:
        # launched by spark-submit: its --master and --driver-memory already apply
        conf.pop("spark.driver.memory", None)
        log.info("running under spark-submit; master comes from spark-submit")
    else:
        builder = builder.master(config.spark.master)
        blas.prepare_environment()  # read once by the JVM about to start (mktpipe.blas)
    for key, value in conf.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    lapack = blas.warm_lapack(spark)  # before any task can race F2J's first call
    configure_spark(spark)  # a session already running gets the environment's S3 settings
    log.info(
        "spark %s master=%s shuffle_partitions=%s capabilities=%s lapack=%s",
        spark.version,
        config.spark.master,
        config.spark.shuffle_partitions,
        {k: v for k, v in caps.to_dict().items() if k != "reasons"},
        lapack,
    )
    return spark


def capabilities(spark: SparkSession) -> Capabilities:
    """The capabilities detected when ``spark`` was built (all False for a foreign session)."""
    conf = spark.conf

    def flag(name: str) -> bool:
        return (conf.get(_CONF_PREFIX + name, "false") or "false").lower() == "true"

    reasons = {
        name: conf.get(_CONF_PREFIX + name + ".reason", "session not built by mktpipe") or ""
        for name in JAR_PATTERNS
    }
    return Capabilities(
        delta_spark=flag("delta_spark"),
        graphframes=flag("graphframes"),
        spark_nlp=flag("spark_nlp"),
        s3a=flag("s3a"),
        comet=flag("comet"),
        reasons=reasons,
    )


@contextmanager
def temporary_conf(spark: SparkSession, settings: Mapping[str, str]) -> Iterator[None]:
    """Each ``key: value`` of ``settings`` set in the session for the block; afterwards each
    key has what it had before (unset again where it was not set)."""
    previous = {key: spark.conf.get(key, None) for key in settings}
    for key, value in settings.items():
        spark.conf.set(key, value)
    try:
        yield
    finally:
        for key, value in previous.items():
            if value is None:
                spark.conf.unset(key)
            else:
                spark.conf.set(key, value)


def comet_active(spark: SparkSession) -> bool:
    """Whether ``spark`` was started with Comet's plugin (spark.accelerator took effect)."""
    return COMET_PLUGIN in (spark.conf.get("spark.plugins", "") or "")


@contextmanager
def accelerator_off(spark: SparkSession) -> Iterator[None]:
    """Spark's own engine for the queries of the block where Comet is loaded (no change
    otherwise). Ingest uses it: its scratch copy keeps the raw text of lines that are not
    valid UTF-8 (they go to quarantine), and Comet's Parquet reader refuses such strings
    ("encountered non UTF-8 data"), where Spark reads them as they are."""
    if not comet_active(spark):
        yield
        return
    with temporary_conf(spark, {"spark.comet.enabled": "false"}):
        yield


def from_pandas(spark: SparkSession, frame, schema=None) -> DataFrame:
    """A pandas frame made on the driver (per-vertex scores, say) as a Spark DataFrame whose
    plan holds an RDD of the rows rather than the rows themselves.

    ``createDataFrame`` of a pandas frame goes through Arrow to a local relation, which keeps
    every row in the logical plan: each later query over it, or over a cache of anything built
    from it, copies and compares those rows while it is planned (about 0.2 s a query at 100k
    rows of a few columns, 1-2 s at a million: bench/graph.py's spark engines paid that before
    their input was read from Parquet). Re-based on the relation's RDD, in the JVM (no
    round trip through Python), the plan stays small and the rows stay recomputable from the
    driver's copy, unlike a local checkpoint's. The optimiser no longer knows the size, so a
    join with it is planned as a shuffle join unless adaptive execution sees it small.
    """
    df = spark.createDataFrame(frame, schema=schema)
    return DataFrame(spark._jsparkSession.createDataFrame(df._jdf.rdd(), df._jdf.schema()), spark)
