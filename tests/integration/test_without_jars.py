"""A user's locked-down laptop: no Maven, or a repository that does not answer, and an empty
jars folder. `make jars` says what falls back and goes on; the pipeline runs on the embedded
defaults in a JVM that has no extension jar at all."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "resolve-jars.sh"


def _resolve(out: Path, **env) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(SCRIPT), str(out)], cwd=ROOT, capture_output=True,
                          text=True, timeout=600, env={**os.environ, **env})


def test_without_maven_one_line_says_what_falls_back(tmp_path):
    done = _resolve(tmp_path / "jars", MVN=str(tmp_path / "no-such-mvn"))
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 1
    assert "not found on PATH" in lines[0]
    for fallback in ("delta-rs", "DataFrame power iteration", "VADER"):
        assert fallback in lines[0]
    assert not (tmp_path / "jars").exists()  # nothing was attempted


def test_unreachable_repository_falls_back_per_extension(tmp_path):
    # a mirror on a closed loopback port, and an empty local repository: nothing resolves
    settings = tmp_path / "settings.xml"
    settings.write_text(
        "<settings><localRepository>{}</localRepository><mirrors><mirror><id>none</id>"
        "<mirrorOf>*</mirrorOf><url>http://127.0.0.1:9/maven2</url></mirror></mirrors>"
        "</settings>".format(tmp_path / "m2"))
    done = _resolve(tmp_path / "jars", MVN_ARGS=f"-s {settings}")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert [line.split()[1] for line in lines] == ["delta", "graphframes", "sparknlp"]
    assert all("not resolved" in line for line in lines)
    assert "delta-rs" in lines[0] and "VADER" in lines[2]
    assert not list((tmp_path / "jars").glob("*.jar"))


def _cli(args: list[str], env: dict, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mktpipe.cli", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=900)


def test_pipeline_runs_in_a_jvm_without_any_extension_jar(tmp_path):
    from mktpipe.generate import generate

    generate(out=tmp_path / "landing", users=200, days=8, seed=7,
             start_date=dt.date(2026, 3, 1), dirty_rate=0.02, truth_dir=tmp_path / "truth")
    empty = tmp_path / "empty-jars"
    empty.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MKTPIPE__")}
    env.update({
        "PYTHONPATH": str(ROOT), "MKTPIPE_CONF_DIR": str(ROOT / "conf"), "MKTPIPE_ENV": "test",
        "MKTPIPE__SPARK__JARS_DIR": str(empty),
        "MKTPIPE__PATHS__LANDING": str(tmp_path / "landing"),
        "MKTPIPE__PATHS__TRUTH": str(tmp_path / "truth"),
        "MKTPIPE__LABELS__CHURN_HORIZON_DAYS": "2",
        "MKTPIPE__LABELS__CHURN_ACTIVE_BEFORE_DAYS": "2",
        "MKTPIPE__LABELS__CLV_HORIZON_DAYS": "2",
        "MKTPIPE__LABELS__PURCHASE_HORIZON_DAYS": "2",
        "MKTPIPE__PIPELINE__SNAPSHOT_EVERY_DAYS": "3",
        "MKTPIPE__MODELS__SEGMENTATION": "{k_min: 2, k_max: 4}",
        "MKTPIPE_EXPORT_KEY": "no-jars-test-export-key-0123456789",
    })
    for key in ("warehouse", "models", "reports", "exports", "checkpoints"):
        env[f"MKTPIPE__PATHS__{key.upper()}"] = str(tmp_path / key)
    doctor = _cli(["doctor"], env, tmp_path)
    assert doctor.returncode == 0, doctor.stderr
    assert "none: every capability uses its embedded default" in doctor.stdout
    assert "Delta tables     delta-rs" in doctor.stdout

    run = _cli(["backfill"], env, tmp_path)
    assert run.returncode == 0, (run.stdout + run.stderr)[-4000:]
    manifests = list((tmp_path / "warehouse" / "_runs").glob("backfill-*.json"))
    stages = json.loads(manifests[0].read_text())["stages"]
    assert [s["status"] for s in stages] == ["ok"] * len(stages)
    assert {s["backend"]["storage"] for s in stages if s.get("backend")} == {"delta-rs"}
    assert {s["stage"] for s in stages} >= {"ingest", "graph", "train", "score", "report"}
    maintained = _cli(["maintain", "--vacuum-hours", "0"], env, tmp_path)
    assert maintained.returncode == 0, maintained.stderr[-3000:]
    assert "(delta-rs)" in maintained.stdout and "gold.customer_segments" in maintained.stdout
