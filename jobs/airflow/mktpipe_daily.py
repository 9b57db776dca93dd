"""Airflow DAG ``mktpipe_daily``: the mktpipe pipeline once a day, one task per stage.

    ingest -> sentiment -> daily -> graph -> features -> anomalies -> labels -> train -> score
    -> trends -> report

Each task runs ``spark-submit jobs/<stage>.py`` from the mktpipe checkout for the run's logical
date ``{{ ds }}``, with the dates and options of ``mktpipe run --run-date {{ ds }}``. With the
apache-spark provider installed the tasks are SparkSubmitOperators (master and deploy mode
from the Spark connection); without it they are BashOperators calling spark-submit with
``--master $MKTPIPE_SPARK_MASTER``. See jobs/airflow/README.md.

This file imports nothing from mktpipe: the scheduler only needs Airflow; the stages run in
the mktpipe virtualenv through spark-submit. It holds no secrets.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

try:  # Airflow 3
    from airflow.sdk import DAG, CronDataIntervalTimetable
except ImportError:  # Airflow 2
    from airflow import DAG
    from airflow.timetables.interval import CronDataIntervalTimetable

try:  # Airflow 3: the standard provider
    from airflow.providers.standard.operators.bash import BashOperator
except ImportError:  # Airflow 2
    from airflow.operators.bash import BashOperator

try:
    from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator
except ImportError:  # provider not installed: the tasks call spark-submit through bash
    SparkSubmitOperator = None

DAG_ID = "mktpipe_daily"

# (task id, script jobs/<script>.py, its arguments), in run order; the same steps, dates and
# options as `mktpipe run --run-date D` (mktpipe/pipeline.py). D = {{ ds }}, the landing date
# the run processes; the snapshot S = D + 1 uses the data up to and including D. labels goes
# through `run --stages labels`: it refreshes the past snapshots whose label windows close
# with D (S - each label horizon), which `labels --snapshot-date` alone would not.
STAGES = (
    ("ingest", "ingest", ("--run-date", "{{ ds }}")),
    ("sentiment", "sentiment", ("--run-date", "{{ ds }}")),
    ("daily", "daily", ("--run-date", "{{ ds }}")),
    ("graph", "graph", ("--snapshot-date", "{{ macros.ds_add(ds, 1) }}")),
    ("features", "features", ("--snapshot-date", "{{ macros.ds_add(ds, 1) }}")),
    ("anomalies", "anomalies", ("--snapshot-date", "{{ macros.ds_add(ds, 1) }}")),
    ("labels", "run", ("--run-date", "{{ ds }}", "--stages", "labels", "--force")),
    ("train", "train", ("--snapshot-date", "{{ macros.ds_add(ds, 1) }}", "--if-due")),
    ("score", "score", ("--snapshot-date", "{{ macros.ds_add(ds, 1) }}")),
    ("trends", "trends", ("--snapshot-date", "{{ macros.ds_add(ds, 1) }}")),
    ("report", "report", ("--snapshot-date", "{{ macros.ds_add(ds, 1) }}")),
)

# The checkout this file lives in (jobs/airflow/mktpipe_daily.py); a symlinked DAG file
# resolves to it. A copied one needs MKTPIPE_HOME.
_REPO = Path(__file__).resolve().parents[2]


def _env_flag(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    return default if value is None else value.strip().lower() in ("1", "true", "yes", "on")


def _var(name: str, default: str) -> str:
    """A Jinja expression: Airflow Variable NAME when the task runs, else $NAME, else default."""
    return f"var.value.get({name!r}, {os.environ.get(name, default)!r})"


# Read when the file is parsed (environment only: the DAG's shape never waits on a database).
SCHEDULE = os.environ.get("MKTPIPE_SCHEDULE", "0 6 * * *")
CATCHUP = _env_flag("MKTPIPE_CATCHUP", False)
START_DATE = dt.datetime.fromisoformat(os.environ.get("MKTPIPE_START_DATE", "2026-09-01"))
SPARK_CONN_ID = os.environ.get("MKTPIPE_SPARK_CONN_ID", "spark_default")
_home_at_parse = Path(os.environ.get("MKTPIPE_HOME", str(_REPO)))
_venv_bin = _home_at_parse / ".venv" / "bin"
SPARK_SUBMIT = os.environ.get("MKTPIPE_SPARK_SUBMIT") or (
    str(_venv_bin / "spark-submit") if (_venv_bin / "spark-submit").exists() else "spark-submit"
)
_python_default = str(_venv_bin / "python") if (_venv_bin / "python").exists() else "python3"

# Rendered when the task runs (Airflow Variable, else environment, else default).
HOME = "{{ " + _var("MKTPIPE_HOME", str(_REPO)) + " }}"
MKTPIPE_ENV = "{{ " + _var("MKTPIPE_ENV", "local") + " }}"
SPARK_MASTER = "{{ " + _var("MKTPIPE_SPARK_MASTER", "local[2]") + " }}"
PY_FILES = "{{ " + _var("MKTPIPE_PY_FILES", "") + " }}"
PYTHON = "{{ " + _var("MKTPIPE_PYTHON", _python_default) + " }}"
# the driver and the executors run the mktpipe virtualenv's Python
SPARK_ENV = {"PYSPARK_PYTHON": PYTHON, "PYSPARK_DRIVER_PYTHON": PYTHON}

DOC_MD = f"""
# mktpipe daily

The mktpipe daily pipeline for the logical date `ds` = D, the landing date it processes (with
the `{SCHEDULE}` schedule the run for D starts when its interval ends, the next morning):
{" → ".join(f"`{task}`" for task, _, _ in STAGES)}. Each task is
`spark-submit jobs/<stage>.py ... --env $MKTPIPE_ENV` run from `MKTPIPE_HOME`, with the same
dates and options as `mktpipe run --run-date D`: ingest, sentiment and daily for D; graph,
features, train (only when due), score and report for the snapshot S = D + 1 (data up to and
including D); labels via `jobs/run.py --stages labels` (refreshes the past snapshots whose
label windows close with D). Every stage is idempotent per date, so clearing a task or a run
re-does it safely; runs go one at a time, oldest first (`max_active_runs=1`).

Settings (Airflow Variable, else the worker's environment, else the default):

| name | default | meaning |
|---|---|---|
| `MKTPIPE_HOME` | the checkout holding this file | repo the jobs run from (and cwd) |
| `MKTPIPE_ENV` | `local` | config overlay, passed as `--env` |
| `MKTPIPE_PYTHON` | the checkout's `.venv/bin/python` | Python of driver and executors |
| `MKTPIPE_PY_FILES` | none | `--py-files`, e.g. `dist/mktpipe-pyfiles.zip` for a cluster |
| `MKTPIPE_SPARK_MASTER` | `local[2]` | `--master` when the apache-spark provider is absent |

Environment only, read when the DAG is parsed: `MKTPIPE_SCHEDULE` (cron, `0 6 * * *`),
`MKTPIPE_CATCHUP` (`false`), `MKTPIPE_START_DATE` (`2026-09-01`), `MKTPIPE_SPARK_CONN_ID`
(`spark_default`: with the provider, the master and deploy mode come from this connection),
`MKTPIPE_SPARK_SUBMIT` (the virtualenv's spark-submit if present, else `spark-submit`).

Secrets are not in this DAG: the activation export's pseudonymisation key `MKTPIPE_EXPORT_KEY`
must be set in the worker's environment (spark-submit passes it on to the driver).
Exit codes of a failing stage: 2 configuration, 3 bad input (e.g. no landing folder for the
date), 4 a hard data-quality check; 1 is a bug.
"""


def _spark_task(task_id: str, script: str, args: tuple[str, ...]):
    application = f"jobs/{script}.py"
    arguments = [*args, "--env", MKTPIPE_ENV]
    if SparkSubmitOperator is not None:
        return _MktpipeSparkSubmitOperator(
            task_id=task_id,
            cwd=HOME,
            application=f"{HOME}/{application}",
            application_args=arguments,
            py_files=PY_FILES,
            conn_id=SPARK_CONN_ID,
            spark_binary=SPARK_SUBMIT,
            env_vars=SPARK_ENV,
            name=f"mktpipe-{task_id}",
        )
    py_files = (
        "{% if " + _var("MKTPIPE_PY_FILES", "") + " %}--py-files \"" + PY_FILES + "\" {% endif %}"
    )
    quoted = " ".join(f'"{arg}"' for arg in arguments)
    return BashOperator(
        task_id=task_id,
        cwd=HOME,
        bash_command=(
            f'"{SPARK_SUBMIT}" --master "{SPARK_MASTER}" --name mktpipe-{task_id} {py_files}'
            f"{application} {quoted}"
        ),
        env=SPARK_ENV,
        append_env=True,
    )


if SparkSubmitOperator is not None:

    class _MktpipeSparkSubmitOperator(SparkSubmitOperator):
        """SparkSubmitOperator that starts spark-submit in the mktpipe checkout (``cwd``), so
        relative paths in conf/*.yaml resolve there as they do for ``make run``."""

        template_fields = (*SparkSubmitOperator.template_fields, "cwd")

        def __init__(self, *, cwd: str, **kwargs):
            super().__init__(**kwargs)
            self.cwd = cwd

        def execute(self, context):
            os.chdir(self.cwd)  # the task runs in a process of its own
            return super().execute(context)


with DAG(
    dag_id=DAG_ID,
    description="mktpipe: ingest -> ... -> report for one day, via spark-submit",
    schedule=CronDataIntervalTimetable(SCHEDULE, timezone="UTC"),
    start_date=START_DATE.replace(tzinfo=START_DATE.tzinfo or dt.timezone.utc),
    catchup=CATCHUP,
    max_active_runs=1,
    default_args={
        "owner": "mktpipe",
        "depends_on_past": False,
        "retries": 1,
        "retry_delay": dt.timedelta(minutes=10),
        "execution_timeout": dt.timedelta(hours=3),
    },
    tags=["mktpipe", "spark", "daily"],
    doc_md=DOC_MD,
) as dag:
    previous = None
    for _task_id, _script, _args in STAGES:
        task = _spark_task(_task_id, _script, _args)
        if previous is not None:
            previous >> task
        previous = task


if __name__ == "__main__":  # python jobs/airflow/mktpipe_daily.py: print the task chain
    for _task in dag.tasks:
        print(f"{_task.task_id:10} {type(_task).__name__} after {sorted(_task.upstream_task_ids)}")
