"""Pipeline pieces without Spark: the backfill schedule, run state, progress lines, CLI."""

from __future__ import annotations

import datetime as dt
import io

import pytest

from mktpipe.cli import build_parser
from mktpipe.pipeline import Progress, RunState, backfill_snapshots, snapshot_for
from mktpipe.quality.manifest import StageResult

D = dt.date


def test_backfill_snapshots_every_n_days_and_the_last():
    assert backfill_snapshots(D(2026, 6, 29), D(2026, 10, 26), 30) == [
        D(2026, 7, 29), D(2026, 8, 28), D(2026, 9, 27), D(2026, 10, 27)]
    # the schedule lands on the last snapshot: no duplicate
    assert backfill_snapshots(D(2026, 1, 1), D(2026, 1, 19), 10) == [
        D(2026, 1, 11), D(2026, 1, 20)]
    # shorter than one period: only the last
    assert backfill_snapshots(D(2026, 1, 1), D(2026, 1, 3), 7) == [D(2026, 1, 4)]
    assert snapshot_for(D(2026, 12, 31)) == D(2027, 1, 1)


def test_run_state_round_trip_and_clear(tmp_path):
    state = RunState.load(tmp_path, "run-2026-10-01")
    assert state.done("ingest") is None
    state.record("ingest", StageResult("ingest", "2026-10-01", rows_out=7), "run-1")
    again = RunState.load(tmp_path, "run-2026-10-01")
    assert again.done("ingest")["run_id"] == "run-1"
    assert again.done("ingest")["rows_out"] == 7
    again.clear()
    assert RunState.load(tmp_path, "run-2026-10-01").steps == {}


def test_unreadable_state_starts_over(tmp_path):
    path = tmp_path / "_state" / "run-x.json"
    path.parent.mkdir()
    path.write_text("{not json")
    assert RunState.load(tmp_path, "run-x").steps == {}


def test_progress_terminal_line_shows_stage_rows_elapsed():
    out = io.StringIO()
    p = Progress(out, interactive=True)
    p.start("features 2026-10-27")
    p.done("features 2026-10-27", StageResult("features", "2026-10-27", rows_out=12345,
                                              elapsed_s=3.25))
    p.done("train 2026-10-27", StageResult("train", "2026-10-27", status="skipped",
                                           details={"reason": "not due"}))
    text = out.getvalue()
    assert "features 2026-10-27" in text and "12,345 rows" in text and "3.2 s" in text
    assert "skipped" in text and "(not due)" in text


def test_progress_plain_logs_when_not_a_terminal(caplog):
    caplog.set_level("INFO", logger="mktpipe.pipeline")
    out = io.StringIO()
    p = Progress(out, interactive=False)
    p.done("daily 2026-10-01", StageResult("daily", "2026-10-01", rows_out=5, elapsed_s=1.0))
    assert out.getvalue() == ""
    assert "stage daily 2026-10-01: ok" in caplog.text


@pytest.mark.parametrize("argv", [
    ["run", "--run-date", "2026-10-01"],
    ["run", "--run-date", "latest", "--force", "--stages", "ingest,daily"],
    ["backfill", "--start", "2026-09-01", "--end", "2026-09-30", "--per-date"],
    ["train", "--snapshot-date", "2026-10-01", "--if-due"],
    ["score", "--snapshot-date", "latest", "--no-export"],
    ["report", "--snapshot-date", "2026-10-01"],
])
def test_cli_parses_pipeline_commands(argv):
    args = build_parser().parse_args(argv)
    assert args.command == argv[0]


def test_cli_rejects_a_bad_date(capsys):
    with pytest.raises(SystemExit) as exc:
        build_parser().parse_args(["run", "--run-date", "2026-13-01"])
    assert exc.value.code == 2
    assert "is not a date" in capsys.readouterr().err


def test_forget_drops_only_the_named_steps(tmp_path):
    state = RunState.load(tmp_path, "run-d")
    for step in ("ingest", "labels", "score"):
        state.record(step, StageResult(step, "d"), "run-1")
    state.forget(["labels"])
    assert list(RunState.load(tmp_path, "run-d").steps) == ["ingest", "score"]


def test_stage_failed_keeps_the_cause_exit_code():
    from mktpipe.config import ConfigError
    from mktpipe.errors import InputError, QualityCheckError
    from mktpipe.pipeline import StageFailed

    day = D(2026, 10, 1)
    assert StageFailed("score", day, ConfigError("no key"), "").exit_code == 2
    assert StageFailed("ingest", day, InputError("no folder"), "").exit_code == 3
    assert StageFailed("features", day, QualityCheckError("dupes"), "").exit_code == 4
    failed = StageFailed("train", day, RuntimeError("bug"), "re-run it")
    assert failed.exit_code == 1
    assert "stage 'train' failed for 2026-10-01: bug" in str(failed)


def test_a_jvm_out_of_memory_is_reported_as_such_with_what_to_change(tmp_path):
    """A task's OOM surfaces as a later failure (here an unpersist on a dead context); the
    runner reports the out-of-memory, exit code 5, and the settings to change."""
    from mktpipe.config import load_config
    from mktpipe.errors import EXIT_RESOURCES, is_out_of_memory
    from mktpipe.pipeline import Runner, StageFailed
    from mktpipe.quality.manifest import RunManifest

    def stage():
        try:
            raise RuntimeError("java.lang.OutOfMemoryError: Java heap space")
        finally:
            raise RuntimeError("An error occurred while calling o2895.unpersist")

    config = load_config("test", overrides={"spark": {"driver_memory": "2g"}})
    runner = Runner(spark=None, config=config, store=None,
                    manifest=RunManifest("run-1", "backfill", str(tmp_path)),
                    state=RunState.load(tmp_path, "run-1"),
                    progress=Progress(io.StringIO(), interactive=False))
    with pytest.raises(StageFailed) as failed:
        runner.step("ingest", "ingest", D(2026, 10, 1), stage)
    assert failed.value.exit_code == EXIT_RESOURCES
    message = str(failed.value)
    assert "ran out of memory" in message and "spark.driver_memory=2g" in message
    assert "MKTPIPE__SPARK__DRIVER_MEMORY" in message
    assert runner.manifest.stages[-1].status == "failed"
    assert not is_out_of_memory(RuntimeError("An error occurred while calling o1.count"))


def test_run_without_export_key_fails_fast_with_exit_2(tmp_path, monkeypatch, capsys):
    from mktpipe.cli import main

    (tmp_path / "events" / "date=2026-10-01").mkdir(parents=True)
    monkeypatch.delenv("MKTPIPE_EXPORT_KEY", raising=False)
    code = main(["run", "--run-date", "2026-10-01", "--conf", f"paths.landing={tmp_path}"])
    assert code == 2
    assert "MKTPIPE_EXPORT_KEY is not set" in capsys.readouterr().err


def test_stage_result_begin_finish_times_the_stage():
    import time

    r = StageResult.begin("score", "2026-10-01", "delta-rs", sentiment="vader")
    assert r.backend == {"storage": "delta-rs", "sentiment": "vader"} and r.started_at
    time.sleep(0.02)
    assert r.finish().elapsed_s >= 0.02
    assert "_clock" not in r.to_dict()


def test_an_out_of_memory_outside_the_stage_runner_exits_5(monkeypatch, capsys):
    """`mktpipe ingest` and the other single commands report an OOM the same way."""
    from mktpipe import cli
    from mktpipe.errors import EXIT_RESOURCES

    def ingest(args):
        raise RuntimeError("An error occurred while calling o7.parquet: "
                           "java.lang.OutOfMemoryError: Java heap space")

    monkeypatch.setitem(cli.COMMANDS, "ingest", ingest)
    assert cli.main(["ingest", "--run-date", "2026-10-01"]) == EXIT_RESOURCES
    err = capsys.readouterr().err
    assert "'ingest' ran out of memory" in err and "MKTPIPE__SPARK__DRIVER_MEMORY" in err
