"""The Airflow DAG jobs/airflow/mktpipe_daily.py.

The first tests need no Airflow: they read the DAG file's stage list with ``ast`` and check it
against the job scripts and the CLI. The rest load the DAG with Airflow's DagBag and are
skipped where Airflow is not installed (it is optional; see jobs/airflow/README.md).
"""

from __future__ import annotations

import argparse
import ast
import datetime as dt
import importlib.util
import inspect
import os
import shlex
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DAG_FILE = REPO / "jobs" / "airflow" / "mktpipe_daily.py"
ORDER = ["ingest", "sentiment", "daily", "graph", "features", "anomalies", "labels", "train",
         "score", "trends", "report"]
RUN_DATE_STAGES = {"ingest", "sentiment", "daily"}  # the others work on the snapshot D + 1
BEING_WRITTEN = {"train", "score", "report", "run"}  # scripts not in every checkout yet


def _dag_module() -> ast.Module:
    return ast.parse(DAG_FILE.read_text(), filename=str(DAG_FILE))


def _stages_in_dag_file() -> list[tuple[str, str, tuple[str, ...]]]:
    """STAGES of the DAG file: (task id, script name, arguments)."""
    for node in _dag_module().body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "STAGES" for t in node.targets
        ):
            return [tuple(entry) for entry in ast.literal_eval(node.value)]
    raise AssertionError("no STAGES = (...) in the DAG file")


# --- without Airflow -----------------------------------------------------------------------


def test_dag_stage_list_matches_the_job_scripts():
    stages = _stages_in_dag_file()
    assert [task_id for task_id, _, _ in stages] == ORDER
    for task_id, script_name, args in stages:
        date_flag = "--run-date" if task_id in RUN_DATE_STAGES else "--snapshot-date"
        if task_id == "labels":  # `run --stages labels` refreshes the closing snapshots
            assert (script_name, args[2:4]) == ("run", ("--stages", "labels")), args
            date_flag = "--run-date"
        else:
            assert script_name == task_id
        date = "{{ ds }}" if date_flag == "--run-date" else "{{ macros.ds_add(ds, 1) }}"
        assert args[:2] == (date_flag, date), task_id
        script = REPO / "jobs" / f"{script_name}.py"
        assert script.exists() or script_name in BEING_WRITTEN, f"{script} is missing"
        if script.exists():  # the script forwards its arguments to `mktpipe <script_name>`
            assert f'main(["{script_name}", *sys.argv[1:]])' in script.read_text(), script


def test_dag_arguments_parse_with_the_cli():
    cli = pytest.importorskip("mktpipe.cli")
    parser = cli.build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    checked = 0
    for task_id, script_name, args in _stages_in_dag_file():
        if script_name not in commands.choices:
            assert script_name in BEING_WRITTEN, f"the CLI has no '{script_name}' command"
            continue
        rendered = [a.replace("{{ ds }}", "2026-10-01")
                    .replace("{{ macros.ds_add(ds, 1) }}", "2026-10-02") for a in args]
        parsed = parser.parse_args([script_name, *rendered, "--env", "local"])
        assert parsed.command == script_name and parsed.env == "local"
        date = getattr(parsed, args[0].lstrip("-").replace("-", "_"))
        expected = 1 if task_id in RUN_DATE_STAGES or task_id == "labels" else 2
        assert date == dt.date(2026, 10, expected), task_id
        checked += 1
    assert checked >= 5


def test_dag_runs_the_stages_of_mktpipe_run_in_its_order():
    pipeline = pytest.importorskip("mktpipe.pipeline")
    assert [task_id for task_id, _, _ in _stages_in_dag_file()] == list(pipeline.STAGES)
    assert pipeline.snapshot_for(dt.date(2026, 10, 1)) == dt.date(2026, 10, 2)  # ds_add(ds, 1)


def test_dag_file_does_not_import_mktpipe():
    """The scheduler only needs Airflow; mktpipe runs inside spark-submit."""
    for node in ast.walk(_dag_module()):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [node.module or ""]
        else:
            continue
        assert not any(n == "mktpipe" or n.startswith("mktpipe.") for n in names), names


# --- with Airflow --------------------------------------------------------------------------

if importlib.util.find_spec("airflow") is not None:  # keep Airflow's files out of ~/airflow
    os.environ.setdefault("AIRFLOW_HOME", str(Path(tempfile.gettempdir()) / "mktpipe-airflow"))


@pytest.fixture(scope="module")
def dag():
    pytest.importorskip(
        "airflow", reason="Apache Airflow is not installed (optional; see jobs/airflow/README.md)"
    )
    try:  # Airflow 3
        from airflow.dag_processing.dagbag import DagBag
    except ImportError:  # Airflow 2
        from airflow.models import DagBag
    kwargs = {"include_examples": False}
    if "include_examples" not in inspect.signature(DagBag).parameters:
        kwargs = {}  # Airflow 3.1+ never loads the examples into an explicit DagBag
    bag = DagBag(dag_folder=str(DAG_FILE), **kwargs)
    assert bag.import_errors == {}
    assert list(bag.dags) == ["mktpipe_daily"]
    return bag.dags["mktpipe_daily"]


class _Variables:
    """Stands in for the ``var`` template variable: no Airflow Variable is set."""

    class value:  # noqa: N801 (as templates spell it: var.value.get(...))
        @staticmethod
        def get(name, default=None):
            return default


def _macros():
    try:  # Airflow 3
        from airflow.sdk.execution_time import macros
    except ImportError:  # Airflow 2
        from airflow import macros
    return macros


CONTEXT = {"ds": "2026-10-01", "var": _Variables()}


def _command(task) -> tuple[str, str, list[str]]:
    """(raw template, rendered application path, its rendered arguments) of a task, be it a
    SparkSubmitOperator (the apache-spark provider) or a BashOperator (the fallback)."""
    CONTEXT.setdefault("macros", _macros())
    if hasattr(task, "application"):
        raw = " ".join([task.application, *task.application_args])
        args = task.render_template(task.application_args, CONTEXT)
        return raw, task.render_template(task.application, CONTEXT), args
    words = shlex.split(task.render_template(task.bash_command, CONTEXT))
    script = next(w for w in words if w.endswith(".py"))
    return task.bash_command, script, words[words.index(script) + 1:]


def test_dag_tasks_run_in_stage_order(dag):
    assert [t.task_id for t in dag.tasks] == ORDER
    for i, stage in enumerate(ORDER):
        task = dag.get_task(stage)
        assert task.upstream_task_ids == (set(ORDER[i - 1:i]) if i else set())
        assert task.downstream_task_ids == set(ORDER[i + 1:i + 2])


def test_each_task_submits_its_job_script_for_ds(dag):
    env = os.environ.get("MKTPIPE_ENV", "local")
    for task in dag.tasks:
        raw, script, args = _command(task)
        assert "{{ ds }}" in raw or "{{ macros.ds_add(ds, 1) }}" in raw  # the run's date
        script_name = "run" if task.task_id == "labels" else task.task_id
        assert script.endswith(f"jobs/{script_name}.py")
        if task.task_id in RUN_DATE_STAGES or task.task_id == "labels":
            assert args[:2] == ["--run-date", "2026-10-01"]
        else:
            assert args[:2] == ["--snapshot-date", "2026-10-02"]
        assert args[-2:] == ["--env", env]
    assert "--if-due" in _command(dag.get_task("train"))[2]
    assert _command(dag.get_task("labels"))[2][2:4] == ["--stages", "labels"]


def test_schedule_and_defaults(dag):
    timetable = dag.timetable  # Airflow 3's SDK timetable has .expression, Airflow 2's .summary
    expected = os.environ.get("MKTPIPE_SCHEDULE", "0 6 * * *")
    assert (getattr(timetable, "expression", None) or timetable.summary) == expected
    assert type(timetable).__name__ == "CronDataIntervalTimetable"  # ds = the day that ended
    if "MKTPIPE_CATCHUP" not in os.environ:
        assert dag.catchup is False
    assert dag.max_active_runs == 1
    assert {"mktpipe", "daily"} <= set(dag.tags)
    assert "MKTPIPE_EXPORT_KEY" in dag.doc_md
    for task in dag.tasks:
        assert task.retries == 1
        assert task.retry_delay == dt.timedelta(minutes=10)


def test_tasks_run_from_the_checkout_with_its_python(dag):
    home = os.environ.get("MKTPIPE_HOME", str(REPO))
    for task in dag.tasks:
        assert task.render_template(task.cwd, CONTEXT) == home
        env = task.env_vars if hasattr(task, "application") else task.env
        python = task.render_template(env, CONTEXT)["PYSPARK_PYTHON"]
        assert python and "{{" not in python
