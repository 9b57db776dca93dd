"""A user's locked-down laptop: no Maven, or a repository that does not answer, and an empty
jars folder. `make jars` says what falls back and goes on. The whole pipeline in a JVM that
has no extension jar at all (then `mktpipe doctor` and `mktpipe maintain` on its warehouse) is
the local-mode run of tests/integration/test_cluster.py, whose tables must equal the
jar-backed cluster run's."""

from __future__ import annotations

import os
import subprocess
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
    for fallback in ("delta-rs", "DataFrame power iteration", "VADER", "s3://",
                     "native engine"):
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
    assert [line.split()[1] for line in lines] == ["delta", "graphframes", "sparknlp", "s3",
                                                   "comet"]
    assert all("not resolved" in line for line in lines)
    assert "delta-rs" in lines[0] and "VADER" in lines[2] and "s3://" in lines[3]
    assert not list((tmp_path / "jars").glob("*.jar"))
