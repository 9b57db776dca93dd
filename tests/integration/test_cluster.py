"""The pipeline through spark-submit on a real standalone cluster equals the local-mode run.

A module fixture starts a Spark standalone master + one worker on 127.0.0.1 with
``scripts/spark-cluster.sh`` (from the installed pyspark, state in a temporary folder) and
stops it afterwards, whatever happens. Tiny generated data (8 days) is run through ``STAGES``
(the whole batched backfill: ingest ... train, score; the HTML report, written on the driver
from tables compared here, is left to the local-mode pipeline tests) twice, each into its own
warehouse and registry, with the same config (``--env test``):

* ``spark-submit --master local[2]`` in a JVM with no extension jar at all (an empty
  ``spark.jars_dir``, no ``--jars``): a user's locked-down laptop, so every stage runs on the
  embedded defaults (delta-rs commits, igraph / DataFrame graph engines, lexicon sentiment);
* ``spark-submit --master spark://127.0.0.1:7077 --py-files <zip of mktpipe> --jars <the
  resolved extension jars>`` (delta-spark where ``make jars`` resolved it) with every path
  (landing, warehouse, models, exports, checkpoints) in a bucket of an S3 server on loopback
  (moto, started by the test; hadoop-aws from the resolved jars), as production runs: a
  cluster on object storage. Without hadoop-aws the cluster run uses local disk (and the
  bucket test skips, saying so).

Each run is one spark-submit whose driver executes the job scripts one after another (exactly
as ``spark-submit jobs/<stage>.py`` would, but sharing one JVM and SparkContext, which saves a
JVM start per stage). The two runs go concurrently, each with 2 cores. Then every Delta table
of both warehouses is compared row for row, run ids and time-of-run columns aside, and the
cluster run is shown to have really run on the cluster: its event log records the standalone
master and tasks on a worker's executor, the master lists the application as finished, and
executors imported mktpipe from the zip. So one pair of runs shows both that the cluster
equals local mode and that the jar-less defaults equal the jar-backed stack; ``mktpipe
doctor`` and ``mktpipe maintain`` then run against the jar-less warehouse.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import zipfile
from pathlib import Path

import pytest
from warehouse_compare import compare
from warehouse_compare import tables as compare_tables

from mktpipe.catalog import CUSTOMER_SEGMENTS

pytestmark = [pytest.mark.integration, pytest.mark.cluster]

ROOT = Path(__file__).resolve().parents[2]
HOST = "127.0.0.1"
MASTER_PORT = 7077
MASTER_URL = f"spark://{HOST}:{MASTER_PORT}"
APP_NAME = "mktpipe"  # spark.app_name in conf/base.yaml
RUN_TIMEOUT_S = 900  # both runs share 2 cores with the test session

START = dt.date(2026, 3, 1)  # in the past: ingest quarantines timestamps later than now
# 8 days: two closed 2-day label windows (train + validate) before the scored snapshot, with
# positives for every model (at 6 days no user of 200 bought twice and intent had no buyer)
DAYS = 8
USERS = 200


def day(n: int) -> str:
    return (START + dt.timedelta(days=n)).isoformat()


# The pipeline, in order: (job script, arguments). All run in one spark-submit per mode.
# The batched backfill of every landing date: ingest, sentiment, daily; graph + features +
# labels for the snapshots of the schedule (every 3 days and the day after the last); train,
# score (not the report: see the module docstring; it would add about a minute per run).
STAGES: list[tuple[str, list[str]]] = [
    ("jobs/backfill.py", []),
]
# config for both runs, beyond the paths (horizons short enough for DAYS days of data)
CONFIG_ENV = {
    "MKTPIPE_ENV": "test",
    "MKTPIPE__LABELS__CHURN_HORIZON_DAYS": "2",
    "MKTPIPE__LABELS__CHURN_ACTIVE_BEFORE_DAYS": "2",
    "MKTPIPE__LABELS__CLV_HORIZON_DAYS": "2",
    "MKTPIPE__LABELS__PURCHASE_HORIZON_DAYS": "2",
    "MKTPIPE__PIPELINE__SNAPSHOT_EVERY_DAYS": "3",
    "MKTPIPE__MODELS__SEGMENTATION": "{k_min: 2, k_max: 3}",
    # fewer fits: calibration (more Spark ML fits per model) is run by the pipeline tests
    "MKTPIPE__MODELS__INTENT__CALIBRATION": "none",
    "MKTPIPE__PIPELINE__STAGES": "[ingest, sentiment, daily, graph, features, anomalies, "
                                 "labels, train, score]",
    "MKTPIPE_EXPORT_KEY": "cluster-test-export-key-0123456789",
}
# tables that must exist after STAGES (so that an empty run cannot pass the comparison)
EXPECTED_TABLES = {"bronze/events", "bronze/users", "quarantine/events", "silver/user_daily",
                   "silver/comment_sentiment", "silver/graph_metrics", "silver/communities",
                   "silver/user_anomalies", "gold/user_features", "gold/user_labels",
                   "gold/customer_segments"}

# Runs STAGES in one driver process, as `spark-submit <script> <args>` would run each, then
# records where executors import mktpipe from. argv: stages-json info-json-path
DRIVER = r'''
import json, runpy, sys, time

stages, info_path = json.loads(sys.argv[1]), sys.argv[2]
done = []
for script, args in stages:
    began = time.perf_counter()
    sys.argv = [script, *args]
    try:
        runpy.run_path(script, run_name="__main__")
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    done.append({"script": script, "args": args, "exit": code,
                 "seconds": round(time.perf_counter() - began, 1)})
    print(f"[driver] {script} {' '.join(args)} -> exit {code} in {done[-1]['seconds']}s",
          flush=True)
    if code:
        break
info = {"stages": done}
if done and done[-1]["exit"] == 0:
    from pyspark import SparkContext

    sc = SparkContext._active_spark_context or SparkContext.getOrCreate()

    def where(_):
        import mktpipe
        return mktpipe.__file__

    info.update(master=sc.master, app_id=sc.applicationId, app_name=sc.appName,
                executor_mktpipe=sc.parallelize([0], 1).map(where).collect()[0])
with open(info_path, "w") as fh:
    json.dump(info, fh, indent=1)
sys.exit(done[-1]["exit"] if done else 1)
'''


def _pyspark_dir() -> Path:
    import pyspark

    return Path(pyspark.__file__).resolve().parent


def _port_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(1)
        return sock.connect_ex((HOST, port)) == 0


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def _tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return f"(no {path})"


def _get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=5) as resp:
        return json.load(resp)


def _alive(pid: int, group: bool = False) -> bool:
    """Whether process ``pid`` (or, with ``group``, any process of group ``pid``) exists."""
    try:
        (os.killpg if group else os.kill)(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# ---------------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A standalone master + worker on 127.0.0.1:7077, stopped (always) after the module."""
    if not (shutil.which("java") or os.environ.get("JAVA_HOME")):
        pytest.skip("no Java on PATH (nor JAVA_HOME): cannot start a Spark cluster")
    if not os.access(_pyspark_dir() / "bin" / "spark-class", os.X_OK):
        pytest.skip(f"no executable spark-class in {_pyspark_dir() / 'bin'}")
    if _port_open(MASTER_PORT):
        pytest.skip(f"port {MASTER_PORT} on {HOST} is busy (another Spark master?): "
                    "the cluster test needs it")
    state = tmp_path_factory.mktemp("spark-cluster")
    ui_port = _free_port()
    env = {
        **os.environ,
        "MKTPIPE_CLUSTER_DIR": str(state),
        "MKTPIPE_PYTHON": sys.executable,
        "SPARK_LOCAL_IP": HOST,
        "SPARK_MASTER_HOST": HOST,
        "SPARK_MASTER_PORT": str(MASTER_PORT),
        "SPARK_MASTER_WEBUI_PORT": str(ui_port),
        "SPARK_WORKER_WEBUI_PORT": str(_free_port()),
        "SPARK_WORKER_CORES": "2",
        "SPARK_WORKER_MEMORY": "2g",
    }
    script = ["bash", str(ROOT / "scripts" / "spark-cluster.sh")]

    def run(cmd: str, timeout: int) -> subprocess.CompletedProcess:
        return subprocess.run([*script, cmd], env=env, capture_output=True, text=True,
                              timeout=timeout, cwd=ROOT)

    pids: list[int] = []
    groups: list[int] = []
    try:
        began = time.perf_counter()
        up = run("up", 180)
        if up.returncode != 0 and "already in use" in up.stderr:  # lost a race for the port
            pytest.skip(f"cluster ports busy: {up.stderr.strip()}")
        assert up.returncode == 0, f"spark-cluster.sh up failed:\n{up.stdout}\n{up.stderr}"
        print(f"\n[cluster] up in {time.perf_counter() - began:.1f}s: {up.stdout.strip()}")
        pids = [int((state / f"{role}.pid").read_text()) for role in ("master", "worker")]
        # the daemons lead their own process groups (setsid), which hold the executors
        groups = [p for p in pids if os.getpgid(p) == p]
        yield {"url": MASTER_URL, "ui": f"http://{HOST}:{ui_port}", "state": state}
    finally:
        down = run("down", 120)
        print(f"[cluster] {down.stdout.strip()} {down.stderr.strip()}")
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and (any(_alive(p) for p in pids)
                                               or any(_alive(g, group=True) for g in groups)):
            time.sleep(0.5)
        survivors = [p for p in pids if _alive(p)]
        survivors += [-g for g in groups if _alive(g, group=True)]
        for pid in survivors:  # ours, by pid / group id: never leave a cluster behind
            if pid > 0:
                os.kill(pid, signal.SIGKILL)
            else:
                os.killpg(-pid, signal.SIGKILL)
        assert down.returncode == 0, f"spark-cluster.sh down failed: {down.stderr}"
        assert not survivors, f"cluster processes {survivors} survived `down`"


@pytest.fixture(scope="module")
def pyfiles(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dist") / "mktpipe-pyfiles.zip"
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "build_pyfiles.py"),
                           "--out", str(out)], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    return out


@pytest.fixture(scope="module")
def landing(tmp_path_factory) -> Path:
    from mktpipe.generate import generate

    root = tmp_path_factory.mktemp("cluster-landing")
    generate(out=root / "landing", users=USERS, days=DAYS, seed=7, start_date=START,
             dirty_rate=0.02, truth_dir=root / "truth")
    return root


def _extension_jars() -> list[Path]:
    from mktpipe.config import load_config
    from mktpipe.session import jar_inventory

    return [path for _, _, path in jar_inventory(load_config("test", environ={}))]


def _paths(landing: Path, root: Path, bucket: str | None) -> dict[str, str]:
    """``paths.*`` of one run: on local disk, or (``bucket``) every one in the bucket."""
    if bucket:
        out = {"landing": f"{bucket}/landing", "truth": f"{bucket}/truth"}
        out.update({key: f"{bucket}/{root.name}/{key}" for key in
                    ("warehouse", "models", "reports", "exports", "checkpoints")})
        return out
    out = {"landing": str(landing / "landing"), "truth": str(landing / "truth")}
    out.update({key: str(root / key) for key in
                ("warehouse", "models", "reports", "exports", "checkpoints")})
    return out


def _mlflow_uri(root: Path) -> str:
    """The cluster run's MLflow store: a database on the driver's disk (a server in
    production); the model files are run artifacts in the bucket."""
    return f"sqlite:///{root / 'mlflow.db'}"


def _run_env(landing: Path, root: Path, with_jars: bool, bucket: str | None = None) -> dict:
    """The environment of one run (config, paths; without jars: an empty jars folder)."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("MKTPIPE__", "PYSPARK_GATEWAY", "SPARK_CONF_DIR"))}
    env.update(CONFIG_ENV)
    env.update({
        "SPARK_HOME": str(_pyspark_dir()),
        "SPARK_LOCAL_IP": HOST,
        "PYSPARK_PYTHON": sys.executable,
        "PYSPARK_DRIVER_PYTHON": sys.executable,
        "MKTPIPE_CONF_DIR": str(ROOT / "conf"),
    })
    for key, value in _paths(landing, root, bucket).items():
        env[f"MKTPIPE__PATHS__{key.upper()}"] = value
    if bucket:
        env["MKTPIPE__MODELS__MLFLOW_TRACKING_URI"] = _mlflow_uri(root)
        # and the HTML report, written into the bucket through the file door
        env["MKTPIPE__PIPELINE__STAGES"] = CONFIG_ENV["MKTPIPE__PIPELINE__STAGES"].replace(
            "score]", "score, report]")
    if not with_jars:
        empty = root / "empty-jars"
        empty.mkdir(exist_ok=True)
        env["MKTPIPE__SPARK__JARS_DIR"] = str(empty)
    elif _extension_jars():  # the relative default (jars/) would resolve in the empty workdir
        env["MKTPIPE__SPARK__JARS_DIR"] = str(_extension_jars()[0].parent)
    return env


def _submit(mode: str, master_args: list[str], landing: Path, root: Path,
            with_jars: bool = True, bucket: str | None = None) -> dict:
    """Start one spark-submit of STAGES into ``root`` (or, with ``bucket``, into the bucket);
    returns what _wait and _result need. It runs in an empty working directory,
    ``root/workdir``: anything written locally by mistake would land there."""
    spark_home = _pyspark_dir()
    events = root / "events"
    events.mkdir(parents=True)
    workdir = root / "workdir"
    workdir.mkdir()
    env = _run_env(landing, root, with_jars, bucket)
    driver = root / "driver.py"
    driver.write_text(DRIVER)
    # the resolved extension jars (make jars) travel with --jars, as on a real cluster
    jars = [str(j) for j in _extension_jars()] if with_jars else []
    cmd = [
        str(spark_home / "bin" / "spark-submit"), *master_args,
        *(["--jars", ",".join(jars)] if jars else []),
        "--driver-memory", "1g",
        "--conf", "spark.eventLog.enabled=true",
        "--conf", f"spark.eventLog.dir={events}",
        "--conf", "spark.eventLog.compress=false",
        "--conf", "spark.eventLog.rolling.enabled=false",
        str(driver), json.dumps([(str(ROOT / script), args) for script, args in STAGES]),
        str(root / "info.json"),
    ]
    log = root / "spark-submit.log"
    with log.open("w") as fh:
        proc = subprocess.Popen(cmd, cwd=workdir, env=env, stdout=fh, stderr=subprocess.STDOUT,
                                start_new_session=True)
    return {"mode": mode, "proc": proc, "root": root, "log": log, "cmd": cmd,
            "began": time.perf_counter(), "bucket": bucket, "workdir": workdir,
            "paths": _paths(landing, root, bucket)}


def _wait(submitted: list[dict], deadline: float) -> None:
    """Wait for every run (recording when each ended); kill them all at the deadline."""
    while any(run["proc"].poll() is None for run in submitted):
        for run in submitted:
            if run["proc"].poll() is not None and "seconds" not in run:
                run["seconds"] = time.perf_counter() - run["began"]
        if time.monotonic() > deadline:
            late = [run["mode"] for run in submitted if run["proc"].poll() is None]
            _kill(submitted)
            pytest.fail(f"{late} exceeded {RUN_TIMEOUT_S}s; log tails:\n" + "\n".join(
                f"--- {run['mode']}:\n{_tail(run['log'])}" for run in submitted))
        time.sleep(0.5)
    for run in submitted:
        run.setdefault("seconds", time.perf_counter() - run["began"])


def _kill(submitted: list[dict]) -> None:
    for run in submitted:
        if run["proc"].poll() is None:  # its own session: spark-submit and its children
            os.killpg(run["proc"].pid, signal.SIGKILL)
            run["proc"].wait()


def _result(run: dict) -> dict:
    proc = run["proc"]
    info_path = run["root"] / "info.json"
    info = json.loads(info_path.read_text()) if info_path.exists() else {}
    if proc.returncode != 0:
        pytest.fail(f"{run['mode']} spark-submit exited {proc.returncode} "
                    f"(stages: {info.get('stages')}); command {' '.join(run['cmd'])}\n"
                    f"log tail ({run['log']}):\n{_tail(run['log'], 60)}")
    print(f"[{run['mode']}] {run['seconds']:.1f}s, stages: "
          + ", ".join(f"{Path(s['script']).stem} {s['seconds']}s" for s in info["stages"]))
    warehouse = run["paths"]["warehouse"]
    if run["bucket"]:
        warehouse = warehouse.replace("s3://", "s3a://")  # as Config.uri spells it
    return {**info, "seconds": run["seconds"], "root": run["root"], "paths": run["paths"],
            "bucket": run["bucket"], "workdir": run["workdir"],
            "warehouse": warehouse, "events": run["root"] / "events"}


@pytest.fixture(scope="module")
def bucket(spark, landing, tmp_path_factory):
    """An S3 server on loopback (moto, as the pipeline's object-storage tests use) with the
    landing zone uploaded, for the cluster run; None (the cluster run then uses local disk)
    when this session's Spark has no s3a (no hadoop-aws jar)."""
    from conftest import s3_server

    from mktpipe.session import capabilities, configure_spark
    from mktpipe.storage import files

    if not capabilities(spark).s3a:
        print("[cluster] no s3a in this session: " + capabilities(spark).reasons["s3a"]
              + "; the cluster run writes to local disk")
        yield None
        return
    with pytest.MonkeyPatch.context() as env, \
            s3_server(tmp_path_factory.mktemp("s3-server"), env) as uri:
        configure_spark(spark)  # the session started before the server did
        files.upload(str(landing / "landing"), f"{uri}/landing")
        files.upload(str(landing / "truth"), f"{uri}/truth")
        yield uri


@pytest.fixture(scope="module")
def runs(cluster, pyfiles, landing, bucket, tmp_path_factory) -> dict:
    """STAGES with spark-submit in local mode (local disk, no jar) and on the cluster (every
    path in the bucket when there is one, and then the report), concurrently."""
    started = dt.datetime.now(dt.timezone.utc)
    deadline = time.monotonic() + RUN_TIMEOUT_S
    submitted = [
        _submit("local", ["--master", "local[2]"], landing,
                tmp_path_factory.mktemp("run-local"), with_jars=False),
        _submit("cluster",
                ["--master", cluster["url"], "--py-files", str(pyfiles),
                 "--total-executor-cores", "2", "--executor-memory", "1g"],
                landing, tmp_path_factory.mktemp("run-cluster"), bucket=bucket),
    ]
    try:
        _wait(submitted, deadline)
    finally:
        _kill(submitted)
    results = {run["mode"]: _result(run) for run in submitted}
    return {**results, "started": started, "cluster_info": cluster}


# --------------------------------------------------------------------------------- helpers


def _event_log(events_dir: Path) -> list[dict]:
    """Applications in an event-log folder: id, name, master, executors that ran tasks."""
    apps = []
    for path in sorted(p for p in events_dir.iterdir() if p.is_file()):
        app = {"file": path.name, "task_executors": set(), "executor_hosts": set()}
        with path.open() as fh:
            for line in fh:
                event = json.loads(line)
                kind = event.get("Event")
                if kind == "SparkListenerApplicationStart":
                    app["id"], app["name"] = event.get("App ID"), event.get("App Name")
                elif kind == "SparkListenerEnvironmentUpdate":
                    props = event.get("Spark Properties", {})
                    props = dict(props) if isinstance(props, list) else props
                    app["master"] = props.get("spark.master")
                elif kind == "SparkListenerTaskEnd":
                    app["task_executors"].add(event["Task Info"]["Executor ID"])
                elif kind == "SparkListenerExecutorAdded":
                    app["executor_hosts"].add(event["Executor Info"]["Host"])
        apps.append(app)
    return apps


def _manifest_stages(warehouse: str) -> list[dict]:
    """Per-stage counts of every run manifest, timings and paths aside, in a stable order."""
    from mktpipe.quality.manifest import load_manifests

    rows = []
    for manifest in load_manifests(warehouse):
        for stage in manifest["stages"]:
            rows.append({"command": manifest["command"], "status": manifest["status"],
                         **{k: stage.get(k) for k in (
                             "stage", "run_date", "status", "rows_in", "rows_out",
                             "rows_quarantined", "rows_deduplicated", "tables_read",
                             "tables_written", "backend", "error")}})
    return sorted(rows, key=lambda r: json.dumps(r, sort_keys=True))


# ----------------------------------------------------------------------------------- tests


def test_cluster_overlay_loads_without_maven_packages():
    from mktpipe.config import load_config

    config = load_config("cluster")
    assert config.app.env == "cluster"
    assert config.spark.master == MASTER_URL
    assert config.spark.packages == []  # never by default: no Maven here


def test_pyfiles_zip_holds_the_package(pyfiles):
    with zipfile.ZipFile(pyfiles) as zf:
        names = set(zf.namelist())
    expected = {p.relative_to(ROOT).as_posix() for p in (ROOT / "mktpipe").rglob("*")
                if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"}
    assert "mktpipe/__init__.py" in names and "mktpipe/cli.py" in names
    assert expected <= names, sorted(expected - names)
    assert not any("__pycache__" in n or n.endswith(".pyc") for n in names)


def test_cluster_run_ran_on_the_cluster(runs):
    cluster = runs["cluster"]
    assert cluster["master"] == MASTER_URL
    assert ".zip" in cluster["executor_mktpipe"], (
        f"executors imported mktpipe from {cluster['executor_mktpipe']}, not the --py-files zip")
    apps = _event_log(cluster["events"])
    assert apps, f"no event log in {cluster['events']}"
    ui = runs["cluster_info"]["ui"]
    for app in apps:
        assert app["master"] == MASTER_URL, app
        assert app["id"].startswith("app-"), app  # a standalone application id
        assert app["task_executors"] and "driver" not in app["task_executors"], (
            f"tasks ran on {app['task_executors']}: not (only) on the worker's executors")
        assert app["executor_hosts"] == {HOST}, app
    # the master saw the application(s) come and go
    ids = {app["id"] for app in apps}
    deadline = time.monotonic() + 30
    while True:
        status = _get_json(f"{ui}/json/")
        finished = {a["id"]: a for a in status.get("completedapps", [])}
        if ids <= finished.keys() or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert ids <= finished.keys(), (ids, status)
    for app_id in ids:
        assert finished[app_id]["name"] == APP_NAME
        assert finished[app_id]["state"] == "FINISHED"
    assert status["aliveworkers"] == 1


def test_local_run_ran_in_local_mode(runs):
    """The same checks tell local mode apart (so the cluster checks above mean something)."""
    local = runs["local"]
    assert local["master"] == "local[2]"
    assert ".zip" not in local["executor_mktpipe"]
    apps = _event_log(local["events"])
    assert apps and all(a["id"].startswith("local-") for a in apps)
    assert all(a["task_executors"] == {"driver"} for a in apps)


def test_every_table_equals_local_mode(runs):
    local_wh, cluster_wh = runs["local"]["warehouse"], runs["cluster"]["warehouse"]
    tables = compare_tables(local_wh)
    assert EXPECTED_TABLES <= tables, f"missing tables: {sorted(EXPECTED_TABLES - tables)}"
    assert compare_tables(cluster_wh) == tables
    # versions aside: the two stores may commit a no-op differently (delta-rs vs delta-spark)
    problems, summary = compare(local_wh, cluster_wh, runs["started"], tables,
                                versions=_cluster_storage() == "delta-rs")
    print("[compare] " + "; ".join(summary))
    assert not problems, "\n\n".join(problems)


def test_run_manifests_agree(runs):
    local = _manifest_stages(runs["local"]["warehouse"])
    cluster = _manifest_stages(runs["cluster"]["warehouse"])

    def storage(rows):
        return {(r["backend"] or {}).get("storage") for r in rows if r["backend"]}

    assert storage(cluster) == {_cluster_storage()}
    assert storage(local) == {"delta-rs"}  # no jar in its JVM
    assert len(local) >= len(STAGES)
    assert all(r["status"] == "ok" for r in local)
    if runs["cluster"]["bucket"]:  # the cluster run on S3 also wrote the report
        report = [r for r in cluster if r["stage"] == "report"]
        assert [r["status"] for r in report] == ["ok"]
        cluster = [r for r in cluster if r["stage"] != "report"]
    for row in local + cluster:  # which engine ran aside, every count and table agrees
        row.pop("backend")
    assert cluster == local


def test_the_cluster_run_kept_everything_in_the_bucket(runs, spark):
    """Every path of the cluster run was in the bucket (moto on loopback, the S3 server the
    object-storage tests use): tables (compared with local mode above), manifests and run
    state, MLflow's model files (its store a database on the driver's disk), the export; the
    driver's working directory stayed empty. The models and the export equal the jar-less
    local run's."""
    from mktpipe.config import load_config
    from mktpipe.models.stage import registry_for
    from mktpipe.quality.manifest import load_manifests
    from mktpipe.storage import files

    cluster, local = runs["cluster"], runs["local"]
    if not cluster["bucket"]:
        pytest.skip("this session has no s3a (no hadoop-aws jar; `make jars` resolves it): "
                    "the cluster run wrote to local disk")
    bucket = cluster["bucket"].replace("s3://", "s3a://")
    assert cluster["warehouse"].startswith(f"{bucket}/")
    assert list(cluster["workdir"].iterdir()) == []  # nothing written locally by mistake
    assert files.list_files(files.join(cluster["warehouse"], "_state"), (".json",))

    def registry(run, tracking_uri):
        return registry_for(load_config("test", {
            "paths": run["paths"], "models": {"mlflow_tracking_uri": tracking_uri}},
            environ={}))

    here, there = registry(local, None), registry(cluster, _mlflow_uri(cluster["root"]))
    for name, metric in (("churn", "average_precision"), ("intent", "average_precision"),
                         ("clv", "rmse")):
        assert there.latest_version(name) == here.latest_version(name) == 1, name
        assert there.metrics(name, 1)["xgb"][metric] == pytest.approx(
            here.metrics(name, 1)["xgb"][metric], rel=1e-6), name
    assert there.model_uri("churn", 1).startswith(
        f"{bucket}/{cluster['root'].name}/models/mlartifacts/")
    assert there.load("churn", 1).feature_cols == here.load("churn", 1).feature_cols

    def export(run):
        score = next(s for m in load_manifests(run["warehouse"]) for s in m["stages"]
                     if s["stage"] == "score")
        path = score["details"]["export"]["paths"]["parquet"]
        return (spark.read.parquet(path).toPandas()  # USERS rows
                .sort_values("user_key").reset_index(drop=True))

    remote = export(cluster)
    assert remote["user_key"].str.fullmatch("[0-9a-f]{64}").all()
    assert export(local).equals(remote)

    report = next(s for m in load_manifests(cluster["warehouse"]) for s in m["stages"]
                  if s["stage"] == "report")
    assert report["details"]["path"].startswith(f"{bucket}/{cluster['root'].name}/reports/")
    html = files.read_text(report["details"]["path"])
    # the cluster run leaves the trends stage out (its cost), so those two sections say so
    assert "<svg" in html and set(report["details"]["missing"]) == {"alerts", "forecasts"}
    folder = files.parent(report["details"]["path"])
    assert files.exists(files.join(folder, "executive.html"))  # the audience pages too
    assert files.list_files(files.join(folder, "tables"), (".csv",))


def _cluster_storage() -> str:
    has_delta_jar = any(p.name.startswith("delta-spark") for p in _extension_jars())
    return "delta-spark" if has_delta_jar else "delta-rs"


def _cli(args: list[str], env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mktpipe.cli", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)


def test_doctor_and_maintain_without_any_extension_jar(runs, landing):
    """On the jar-less run's warehouse: doctor says every capability uses its default, and
    maintain compacts and vacuums every table on delta-rs (last: it rewrites files)."""
    env = _run_env(landing, runs["local"]["root"], with_jars=False)
    doctor = _cli(["doctor"], env)
    assert doctor.returncode == 0, doctor.stderr[-3000:]
    assert "none: every capability uses its embedded default" in doctor.stdout
    assert "Delta tables     delta-rs" in doctor.stdout
    maintained = _cli(["maintain", "--vacuum-hours", "0"], env)
    assert maintained.returncode == 0, maintained.stderr[-3000:]
    assert "(delta-rs)" in maintained.stdout and CUSTOMER_SEGMENTS in maintained.stdout
