"""The pipeline through spark-submit on a real standalone cluster equals the local run.

A module fixture starts a Spark standalone master + one worker on 127.0.0.1 with
``scripts/spark-cluster.sh`` (from the installed pyspark, state in a temporary folder) and
stops it afterwards, whatever happens. The reference is the session's shared backfill
(tests/conftest.py: 300 users x 30 days, run in this process through delta-rs, the backend of
a JVM without the delta-spark jar). Each cluster run is one ``spark-submit --master
spark://127.0.0.1:7077 --py-files <zip of mktpipe> --jars <the resolved extension jars>``
(delta-spark where ``make jars`` resolved it) with the same settings, in an empty working
directory, whose driver executes job scripts exactly as ``spark-submit jobs/<job>.py`` would:

* ``make test``: ``jobs/run.py`` for the backfill's last date (RERUN_STAGES: the stages that
  run the project's Python on the executors) into a copy of the reference warehouse,
  scoring with the reference's registry. Every table of the copy must equal the reference,
  as must the manifest's counts and the pseudonymised export.
* ``make test-slow``: ``jobs/backfill.py`` over every landing date into its own warehouse
  (every stage but trends and the report, which run on the driver alone), while this process
  runs the reference; then every table, the manifests' counts, the models' metrics and the
  export are compared.

Either way the event log must record the standalone master and tasks on a worker's executor,
the master must list the application as finished, and executors must have imported mktpipe
from the zip. ``mktpipe doctor`` and ``mktpipe maintain`` then run in a JVM with no extension
jar at all, against a copy of the reference warehouse.

Left out for ``make test``'s time (measured in README "Tests"): a second, jar-less
``spark-submit --master local[2]`` backfill (the shared reference replaces it), and every path
in an S3 bucket (moto's server made the cluster's ingest six times slower). The backfill with
every path in a bucket is
tests/integration/test_pipeline.py::test_backfill_on_object_storage_equals_the_local_run
(`make test-slow`); ``make test`` writes and merges Delta tables on S3 through both backends
in tests/unit/test_storage_backends.py, and the file door's S3 paths in test_files.py.
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
RUN_TIMEOUT_S = 900  # it shares 2 cores with the local backfill in this process

# What each spark-submit runs, in order: (job script, arguments), all in one driver process.
# The full run (slow): the batched backfill of every landing date (the same dates and snapshots
# as the local backfill), every stage but trends and the report (module docstring).
BACKFILL: list[tuple[str, list[str]]] = [("jobs/backfill.py", [])]
BACKFILL_STAGES = "[ingest, sentiment, daily, graph, features, anomalies, labels, train, score]"
# The default run: the last date again, on a copy of the local run's warehouse with its models
# (module docstring): sentiment (its pandas UDF and the lexicons inside the zip), anomalies (the
# learned detectors' mapInPandas, fitted on a sample that must not depend on the partitioning)
# and score (XGBoost's predict UDF, the registry's models). daily and features are DataFrame
# queries alone, and graph's igraph results enter Spark from the driver as any small frame
# does: on a cluster they run as locally, and `make test-slow`'s whole cluster backfill runs
# them there (daily and features about 24 s of this run's 158 s; graph 28-31 s of 100-108:
# the run without it took 85 s, measured 2026-12-07). That the graph's seeded communities do
# not depend on the partitioning (a cluster's is not the local one) is
# tests/unit/test_graph_local.py::test_seeded_communities_do_not_depend_on_the_partitioning.
# Running this run beside the rest of the suite (submitted early, its results read last) was
# measured and dropped: the cold driver and executor JIT-compile on the same 2 cores, and the
# tests beside them slowed by as much as the overlap saved (pytest 1,734 -> 1,722 s in all)
RERUN_STAGES = "sentiment,anomalies,score"
# tables that must exist after BACKFILL (so that an empty run cannot pass the comparison)
EXPECTED_TABLES = {"bronze/events", "bronze/users", "quarantine/events", "silver/user_daily",
                   "silver/comment_sentiment", "silver/graph_metrics", "silver/communities",
                   "silver/user_anomalies", "gold/user_features", "gold/user_labels",
                   "gold/customer_segments"}

# Runs its stages in one driver process, as `spark-submit <script> <args>` would run each, then
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


def _extension_jars() -> list[Path]:
    from mktpipe.config import load_config
    from mktpipe.session import jar_inventory

    return [path for _, _, path in jar_inventory(load_config("test", environ={}))]


def _paths(landing: Path, root: Path, models: str | None = None) -> dict[str, str]:
    """``paths.*`` of one run: ``landing`` (the local backfill's landing zone) and the run's
    own folders under ``root``, or ``models`` (a registry to score with) for the models."""
    out = {"landing": str(landing), "truth": str(landing / "_truth")}
    out.update({key: str(root / key) for key in
                ("warehouse", "models", "reports", "exports", "checkpoints")})
    if models:
        out["models"] = models
    return out


def _run_env(landing: Path, root: Path, with_jars: bool, models: str | None = None) -> dict:
    """The environment of one run: the local backfill's settings (tests/conftest.py) as
    MKTPIPE__* variables, the paths, and without jars an empty jars folder."""
    from conftest import PIPELINE_EXPORT_KEY, PIPELINE_SETTINGS, settings_env

    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("MKTPIPE__", "PYSPARK_GATEWAY", "SPARK_CONF_DIR"))}
    env.update(settings_env(PIPELINE_SETTINGS))
    env.update({
        "MKTPIPE_ENV": "test",
        "MKTPIPE__PIPELINE__STAGES": BACKFILL_STAGES,
        "MKTPIPE_EXPORT_KEY": PIPELINE_EXPORT_KEY,
        "SPARK_HOME": str(_pyspark_dir()),
        "SPARK_LOCAL_IP": HOST,
        "PYSPARK_PYTHON": sys.executable,
        "PYSPARK_DRIVER_PYTHON": sys.executable,
        "MKTPIPE_CONF_DIR": str(ROOT / "conf"),
    })
    for key, value in _paths(landing, root, models).items():
        env[f"MKTPIPE__PATHS__{key.upper()}"] = value
    if not with_jars:
        empty = root / "empty-jars"
        empty.mkdir(exist_ok=True)
        env["MKTPIPE__SPARK__JARS_DIR"] = str(empty)
    elif _extension_jars():  # the relative default (jars/) would resolve in the empty workdir
        env["MKTPIPE__SPARK__JARS_DIR"] = str(_extension_jars()[0].parent)
    return env


def _submit(mode: str, master_args: list[str], landing: Path, root: Path,
            jobs: list[tuple[str, list[str]]], with_jars: bool = True,
            models: str | None = None) -> dict:
    """Start one spark-submit of ``jobs`` into ``root`` (``models``: the registry to use
    instead of ``root``'s); returns what _wait and _result need.
    It runs in an empty working directory, ``root/workdir``: anything written locally by
    mistake would land there."""
    spark_home = _pyspark_dir()
    events = root / "events"
    events.mkdir(parents=True)
    workdir = root / "workdir"
    workdir.mkdir()
    env = _run_env(landing, root, with_jars, models)
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
        str(driver), json.dumps([(str(ROOT / script), args) for script, args in jobs]),
        str(root / "info.json"),
    ]
    log = root / "spark-submit.log"
    with log.open("w") as fh:
        proc = subprocess.Popen(cmd, cwd=workdir, env=env, stdout=fh, stderr=subprocess.STDOUT,
                                start_new_session=True)
    return {"mode": mode, "proc": proc, "root": root, "log": log, "cmd": cmd,
            "began": time.perf_counter(), "workdir": workdir,
            "paths": _paths(landing, root, models)}


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
    return {**info, "seconds": run["seconds"], "root": run["root"], "paths": run["paths"],
            "workdir": run["workdir"], "warehouse": run["paths"]["warehouse"],
            "events": run["root"] / "events"}


CLUSTER_ARGS = ["--total-executor-cores", "2", "--executor-memory", "1g"]


def _reference(backfill: dict, cfg) -> dict:
    """The shared local backfill as the runs' reference: its manifest, start, config and
    warehouse URI."""
    return {**backfill, "cfg": cfg, "warehouse": cfg.uri("warehouse")}


def _cluster_master(cluster: dict, pyfiles: Path) -> list[str]:
    return ["--master", cluster["url"], "--py-files", str(pyfiles), *CLUSTER_ARGS]


@pytest.fixture(scope="module")
def rerun(cluster, pyfiles, pipeline_landing, pipeline_backfill, pipeline_cfg,
          tmp_path_factory) -> dict:
    """``mktpipe run`` of the local backfill's last date on the cluster, RERUN_STAGES, into a
    copy of its warehouse, scoring with its registry: the executor-side Python of sentiment,
    the anomaly detectors and scoring (XGBoost's predict UDF)."""
    from conftest import PIPELINE_END

    root = tmp_path_factory.mktemp("rerun-cluster")
    shutil.copytree(pipeline_cfg.resolve_path("warehouse"), root / "warehouse")
    started = dt.datetime.now(dt.timezone.utc)
    submitted = _submit("cluster", _cluster_master(cluster, pyfiles), pipeline_landing, root,
                        [("jobs/run.py", ["--run-date", str(PIPELINE_END), "--force",
                                          "--stages", RERUN_STAGES])],
                        models=str(pipeline_cfg.resolve_path("models")))
    try:
        _wait([submitted], time.monotonic() + RUN_TIMEOUT_S)
    finally:
        _kill([submitted])
    return {"cluster": _result(submitted), "local": _reference(pipeline_backfill, pipeline_cfg),
            "started": started, "cluster_info": cluster}


@pytest.fixture(scope="module")
def runs(cluster, pyfiles, pipeline_landing, tmp_path_factory, request) -> dict:
    """The whole backfill on the cluster, submitted first; the local backfill (the session's
    shared one) runs in this process meanwhile, if it has not run yet."""
    started = dt.datetime.now(dt.timezone.utc)
    deadline = time.monotonic() + RUN_TIMEOUT_S
    submitted = _submit("cluster", _cluster_master(cluster, pyfiles), pipeline_landing,
                        tmp_path_factory.mktemp("run-cluster"), BACKFILL)
    try:
        local = request.getfixturevalue("pipeline_backfill")
        _wait([submitted], deadline)
    finally:
        _kill([submitted])
    return {"cluster": _result(submitted),
            "local": _reference(local, request.getfixturevalue("pipeline_cfg")),
            "started": min(started, local["started"]), "cluster_info": cluster}


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


def _manifest_stages(warehouse: str, run_id: str | None = None) -> list[dict]:
    """Per-stage counts of the run manifests (of ``run_id`` only, if given), timings and paths
    aside, in a stable order."""
    from mktpipe.quality.manifest import load_manifests

    rows = []
    for manifest in load_manifests(warehouse):
        if run_id is not None and manifest["run_id"] != run_id:
            continue
        for stage in manifest["stages"]:
            rows.append({"command": manifest["command"], "status": manifest["status"],
                         **{k: stage.get(k) for k in (
                             "stage", "run_date", "status", "rows_in", "rows_out",
                             "rows_quarantined", "rows_deduplicated", "tables_read",
                             "tables_written", "backend", "error")}})
    return sorted(rows, key=lambda r: json.dumps(r, sort_keys=True))


# ----------------------------------------------------------------------------------- tests


def _export(spark, warehouse: str, run_id: str):
    """The parquet export written by run ``run_id``'s score stage, as a sorted pandas frame
    (a row per scored user)."""
    from mktpipe.quality.manifest import load_manifests

    score = next(s for m in load_manifests(warehouse) for s in m["stages"]
                 if s["stage"] == "score" and m["run_id"] == run_id)
    path = score["details"]["export"]["paths"]["parquet"]
    return spark.read.parquet(path).toPandas().sort_values("user_key").reset_index(drop=True)


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


def _ran_on_the_cluster(runs: dict) -> None:
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


def test_rerun_ran_on_the_cluster(rerun):
    _ran_on_the_cluster(rerun)


def test_rerun_tables_equal_the_local_run(rerun):
    """Every table the cluster rewrote (the snapshot's anomalies and segments, the last date's
    sentiment rows) equals the local run's, row for row, and so does every other table
    of the copy."""
    local_wh, cluster_wh = rerun["local"]["warehouse"], rerun["cluster"]["warehouse"]
    tables = compare_tables(cluster_wh)
    assert EXPECTED_TABLES <= tables and tables == compare_tables(local_wh)
    # time-of-run columns: every value is after the local run started, in both warehouses
    problems, summary = compare(local_wh, cluster_wh, rerun["local"]["started"], tables,
                                versions=False)
    print("[compare] " + "; ".join(summary))
    assert not problems, "\n\n".join(problems)


def test_rerun_wrote_what_the_local_run_did(rerun, spark):
    """The cluster run's manifest: each stage ran on the cluster's storage backend and counted
    the rows the local backfill counted for the same snapshot, into the same tables; the
    export is the same; nothing was written to the driver's working directory."""
    from conftest import PIPELINE_END

    from mktpipe.pipeline import snapshot_for
    from mktpipe.quality.manifest import load_manifests

    cluster = _manifest_stages(rerun["cluster"]["warehouse"])
    cluster = [r for r in cluster if r["command"] == "run"]
    assert sorted(r["stage"] for r in cluster) == sorted(RERUN_STAGES.split(","))
    assert all(r["status"] == "ok" for r in cluster)
    assert {(r["backend"] or {}).get("storage") for r in cluster if r["backend"]} == {
        _cluster_storage()}
    snapshot = str(snapshot_for(PIPELINE_END))
    local = {r["stage"]: r for r in _manifest_stages(rerun["local"]["warehouse"],
                                                     rerun["local"]["manifest"].run_id)
             if r["run_date"] == snapshot}
    for row in cluster:
        if row["run_date"] == snapshot:  # anomalies, score: the same snapshot, the same counts
            ref = local[row["stage"]]
            # (the tables' versions aside: the copy's are one commit further)
            assert (row["rows_in"], row["rows_out"], set(row["tables_written"])) == (
                ref["rows_in"], ref["rows_out"], set(ref["tables_written"])), row["stage"]

    run_id = next(m["run_id"] for m in load_manifests(rerun["cluster"]["warehouse"])
                  if m["command"] == "run")
    remote = _export(spark, rerun["cluster"]["warehouse"], run_id)
    assert len(remote) and remote["user_key"].str.fullmatch("[0-9a-f]{64}").all()
    local = rerun["local"]
    assert _export(spark, local["warehouse"], local["manifest"].run_id).equals(remote)
    assert list(rerun["cluster"]["workdir"].iterdir()) == []


@pytest.mark.slow
def test_backfill_ran_on_the_cluster(runs):
    _ran_on_the_cluster(runs)


@pytest.mark.slow
def test_every_table_equals_local_mode(runs):
    local_wh, cluster_wh = runs["local"]["warehouse"], runs["cluster"]["warehouse"]
    tables = compare_tables(cluster_wh)
    assert EXPECTED_TABLES <= tables, f"missing tables: {sorted(EXPECTED_TABLES - tables)}"
    # the local run wrote these and the trends tables (a stage the cluster run leaves out)
    assert tables <= compare_tables(local_wh), sorted(tables - compare_tables(local_wh))
    # versions aside: the two stores may commit a no-op differently (delta-rs vs delta-spark)
    problems, summary = compare(local_wh, cluster_wh, runs["started"], tables,
                                versions=_cluster_storage() == "delta-rs")
    print("[compare] " + "; ".join(summary))
    assert not problems, "\n\n".join(problems)


@pytest.mark.slow
def test_run_manifests_agree(runs):
    local = _manifest_stages(runs["local"]["warehouse"], runs["local"]["manifest"].run_id)
    cluster = _manifest_stages(runs["cluster"]["warehouse"])

    def storage(rows):
        return {(r["backend"] or {}).get("storage") for r in rows if r["backend"]}

    assert storage(cluster) == {_cluster_storage()}
    assert storage(local) == {"delta-rs"}  # the jar-less backend
    assert all(r["status"] == "ok" for r in local + cluster)
    # the cluster run's stages are the local run's but trends and the report
    assert ({r["stage"] for r in local} - {r["stage"] for r in cluster}) == {"trends", "report"}
    local = [r for r in local if r["stage"] not in ("trends", "report")]
    for row in local + cluster:  # which engine ran aside, every count and table agrees
        row.pop("backend")
    assert cluster == local


@pytest.mark.slow
def test_models_and_export_equal_the_local_run(runs, spark):
    """The models registered by the cluster run (MLflow) score their validation data as the
    local run's do, and the pseudonymised export is the same, row for row; the driver's
    working directory stayed empty (nothing written outside the configured paths)."""
    from mktpipe.config import load_config
    from mktpipe.models.stage import registry_for
    from mktpipe.quality.manifest import load_manifests

    cluster, local = runs["cluster"], runs["local"]
    assert list(cluster["workdir"].iterdir()) == []
    here = registry_for(local["cfg"])
    there = registry_for(load_config("test", {"paths": cluster["paths"]}, environ={}))
    for name, metric in (("churn", "average_precision"), ("intent", "average_precision"),
                         ("clv", "rmse")):
        assert there.latest_version(name) == here.latest_version(name) == 1, name
        assert there.metrics(name, 1)["xgb"][metric] == pytest.approx(
            here.metrics(name, 1)["xgb"][metric], rel=1e-6), name
    assert there.model_uri("churn", 1).startswith(cluster["paths"]["models"])
    assert there.load("churn", 1).feature_cols == here.load("churn", 1).feature_cols

    run_id = load_manifests(cluster["warehouse"])[0]["run_id"]
    remote = _export(spark, cluster["warehouse"], run_id)
    assert len(remote) and remote["user_key"].str.fullmatch("[0-9a-f]{64}").all()
    assert _export(spark, local["warehouse"], local["manifest"].run_id).equals(remote)


def _cluster_storage() -> str:
    has_delta_jar = any(p.name.startswith("delta-spark") for p in _extension_jars())
    return "delta-spark" if has_delta_jar else "delta-rs"


def _cli(args: list[str], env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mktpipe.cli", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)


def test_doctor_and_maintain_without_any_extension_jar(pipeline_backfill, pipeline_cfg,
                                                     pipeline_landing, tmp_path_factory):
    """In a JVM with no extension jar, on a copy of the local (delta-rs) run's warehouse:
    doctor says every capability uses its default, and maintain compacts and vacuums every
    table on delta-rs."""
    root = tmp_path_factory.mktemp("jarless")
    shutil.copytree(pipeline_cfg.resolve_path("warehouse"), root / "warehouse")
    env = _run_env(pipeline_landing, root, with_jars=False)
    doctor = _cli(["doctor"], env)
    assert doctor.returncode == 0, doctor.stderr[-3000:]
    assert "none: every capability uses its embedded default" in doctor.stdout
    assert "Delta tables     delta-rs" in doctor.stdout
    maintained = _cli(["maintain", "--vacuum-hours", "0"], env)
    assert maintained.returncode == 0, maintained.stderr[-3000:]
    assert "(delta-rs)" in maintained.stdout and CUSTOMER_SEGMENTS in maintained.stdout
