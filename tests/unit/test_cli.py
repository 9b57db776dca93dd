"""The command line: help texts, exit codes, and a tiny end-to-end generate + ingest."""

from __future__ import annotations

import json

import pytest

from mktpipe.cli import build_parser, main


@pytest.mark.parametrize("command", [[], ["generate"], ["ingest"], ["doctor"]])
def test_help_is_available_for_every_command(command, capsys):
    with pytest.raises(SystemExit) as exit_:
        main([*command, "--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert "usage: mktpipe" in out
    assert "--help" in out


def test_every_subcommand_has_a_help_line():
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    for name, choice in sub.choices.items():
        assert choice.description, name
    assert all(action.help for action in sub._choices_actions)


def test_bad_config_exits_2_naming_the_key(capsys):
    assert main(["doctor", "--conf", "spark.shufle_partitions=2"]) == 2
    assert "spark.shufle_partitions" in capsys.readouterr().err


def test_missing_landing_date_exits_3_with_a_clear_message(tmp_path, capsys):
    code = main(["ingest", "--run-date", "2026-01-01", "--env", "test",
                 "--conf", f"paths.landing={tmp_path}/nothing",
                 "--conf", f"paths.warehouse={tmp_path}/wh"])
    assert code == 3
    err = capsys.readouterr().err
    assert "no landing files for 2026-01-01" in err
    assert "Traceback" not in err


def test_bad_date_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["ingest", "--run-date", "01/02/2026"])
    assert exit_.value.code == 2
    assert "is not a date" in capsys.readouterr().err


@pytest.mark.integration
def test_generate_then_ingest_all_dates(spark, tmp_path, capsys):
    landing, wh = tmp_path / "landing", tmp_path / "wh"
    conf = ["--env", "test", "--conf", f"paths.landing={landing}",
            "--conf", f"paths.warehouse={wh}"]
    assert main(["generate", "--users", "60", "--days", "2", "--seed", "3",
                 "--start-date", "2026-02-01", "--dirty-rate", "0.05", *conf]) == 0
    assert main(["ingest", "--all-dates", *conf]) == 0
    out = capsys.readouterr().out
    assert "ingest 2026-02-01 .. 2026-02-02 (2 date(s))" in out
    assert "MISMATCH" not in out
    manifests = list((wh / "_runs").glob("ingest-*.json"))
    assert len(manifests) == 1
    manifest = json.loads(manifests[0].read_text())
    assert manifest["status"] == "ok"
    events = manifest["stages"][0]["details"]["events"]
    assert events["balanced"] is True
    assert events["read"] == (events["written"] + events["quarantined"]
                              + events["duplicates_in_batch"] + events["duplicates_existing"])
