"""The file door (mktpipe.storage.files): one set of reads and writes for local paths and
URIs, the engines' spellings of a path, and object storage reached through the environment.
The S3 cases run against an S3-compatible server the test starts on loopback (no Spark)."""

from __future__ import annotations

import ast
import gzip
from pathlib import Path

import pytest

from mktpipe.config import ConfigError, load_config
from mktpipe.ingest import landing
from mktpipe.session import hadoop_options
from mktpipe.storage import files

ROOT = Path(__file__).resolve().parents[2]


def test_normalize_spells_each_path_the_way_every_engine_takes_it(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert files.normalize("data/wh") == str(tmp_path / "data" / "wh")
    assert files.normalize(f"file://{tmp_path}/x") == str(tmp_path / "x")
    assert files.normalize("s3://bucket/lake/") == "s3a://bucket/lake"
    assert files.normalize("S3A://bucket/lake") == "s3a://bucket/lake"
    assert files.normalize("abfss://c@acct.dfs.core.windows.net/x").startswith("abfss://")
    assert files.normalize("hdfs://nn:8020/x") == "hdfs://nn:8020/x"
    with pytest.raises(ValueError, match="unsupported URI scheme 'ftp'"):
        files.normalize("ftp://host/x")
    assert files.join("s3a://b/w", "bronze", "/events/") == "s3a://b/w/bronze/events"
    assert files.is_local("/x") and files.is_local("file:///x") and not files.is_local("s3://b")


def test_config_paths_take_uris_and_refuse_unknown_schemes(tmp_path):
    cfg = load_config("test", {"paths": {"warehouse": "s3://bucket/wh", "models": "models"}})
    assert cfg.uri("warehouse") == "s3a://bucket/wh"
    assert cfg.uri("models") == str(Path("models").resolve())
    with pytest.raises(ValueError, match="paths.warehouse is a URI"):
        cfg.resolve_path("warehouse")
    with pytest.raises(ConfigError, match="paths.*gs"):
        load_config("test", {"paths": {"exports": "gs://bucket/x"}})


def test_local_reads_writes_and_moves(tmp_path):
    target = tmp_path / "a" / "b.json"
    files.write_json(target, {"x": 1})
    assert files.read_json(target) == {"x": 1}
    assert [p.name for p in (tmp_path / "a").iterdir()] == ["b.json"]  # no temp file left
    with pytest.raises(FileNotFoundError, match="missing.json: no such file"):
        files.read_text(tmp_path / "missing.json")
    files.write_text(tmp_path / "d" / "1.txt", "one")
    files.write_text(tmp_path / "d" / "sub" / "2.txt", "two")
    assert files.list_files(tmp_path / "d", (".txt",)) == [str(tmp_path / "d" / "1.txt")]
    assert files.list_files(tmp_path / "d", recursive=True) == [
        str(tmp_path / "d" / "1.txt"), str(tmp_path / "d" / "sub" / "2.txt")]
    assert files.list_dirs(tmp_path / "d") == ["sub"]
    files.move(tmp_path / "d", tmp_path / "e" / "d")
    assert not files.exists(tmp_path / "d")
    assert files.read_text(tmp_path / "e" / "d" / "sub" / "2.txt") == "two"
    files.delete(tmp_path / "e")
    assert files.list_dirs(tmp_path) == ["a"]


def test_csv_header_is_read_from_a_gzipped_landing_file(tmp_path):
    folder = tmp_path / "users" / "date=2026-01-01"
    folder.mkdir(parents=True)
    header = landing.csv_header("users")
    with gzip.open(folder / "part-0.csv.gz", "wt") as fh:
        fh.write(header + "\n" + "x," * 5 + "\n")
    found = landing.landing_files(tmp_path, "users", __import__("datetime").date(2026, 1, 1))
    assert found == [str(folder / "part-0.csv.gz")]
    landing.check_csv_headers("users", found)  # raises when the header differs
    (folder / "part-1.csv").write_text("wrong,header\n")
    with pytest.raises(Exception, match="CSV header is 'wrong,header'"):
        landing.check_csv_headers("users", [str(folder / "part-1.csv")])


def test_engine_options_come_from_the_environment_only(monkeypatch):
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_REGION",
                 "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(name, raising=False)
    assert hadoop_options() == {}
    assert files.storage_options("/local/wh") == {}
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9000")
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    assert hadoop_options() == {
        "fs.s3a.endpoint": "http://127.0.0.1:9000", "fs.s3a.path.style.access": "true",
        "fs.s3a.connection.ssl.enabled": "false", "fs.s3a.endpoint.region": "eu-west-1"}
    options = files.storage_options("s3a://b/wh", {"AWS_S3_LOCKING_PROVIDER": "dynamodb"})
    assert options["AWS_ENDPOINT_URL"] == "http://127.0.0.1:9000"
    assert options["AWS_ALLOW_HTTP"] == "true"
    assert options["AWS_S3_LOCKING_PROVIDER"] == "dynamodb"
    assert "AWS_SECRET_ACCESS_KEY" not in options  # delta-rs reads keys from the environment


def test_the_door_on_s3(s3, tmp_path):
    base = files.normalize(f"{s3}/door")
    files.write_json(files.join(base, "runs", "r1.json"), {"run": 1})
    files.write_bytes(files.join(base, "runs", "r2.json"), b'{"run": 2}')
    assert files.read_json(files.join(base, "runs", "r1.json")) == {"run": 1}
    assert files.list_files(files.join(base, "runs"), (".json",)) == [
        f"{base}/runs/r1.json", f"{base}/runs/r2.json"]
    with pytest.raises(FileNotFoundError):
        files.read_bytes(files.join(base, "runs", "nope.json"))
    files.move(files.join(base, "runs"), files.join(base, "moved"))
    assert files.list_dirs(base) == ["moved"]
    assert files.read_bytes(files.join(base, "moved", "r2.json")) == b'{"run": 2}'
    (tmp_path / "up" / "x").mkdir(parents=True)
    (tmp_path / "up" / "x" / "f.txt").write_text("hi")
    files.upload(tmp_path / "up", files.join(base, "up"))
    assert files.read_text(files.join(base, "up", "x", "f.txt")) == "hi"
    files.delete(base)
    assert not files.exists(files.join(base, "moved", "r1.json"))


# --- no file I/O outside the storage package ---------------------------------------------------

_IO_CALLS = {"write_text", "read_text", "write_bytes", "read_bytes", "iterdir", "mkdir",
             "unlink", "rmtree", "makedirs", "remove", "rmdir"}
_IO_MODULES = ("shutil", "glob", "fsspec", "pyarrow.fs")
_DOOR_NAMES = {"files", "storage_files", "door", "artifacts"}
# where reading files outside the door is the point, and why
ALLOWED = {
    "mktpipe/config.py": "reads the YAML configuration it is given (local files)",
    "mktpipe/session.py": "finds the extension jars on local disk before the JVM starts",
    "mktpipe/blas.py": "reads this machine's CPU flags (/proc/cpuinfo) before the JVM starts",
    "mktpipe/report/stage.py": "reads its template and stylesheet from the installed package",
    "mktpipe/dashboard/page.py": "reads its template from the installed package",
    "mktpipe/i18n.py": "reads its message catalogs from the installed package",
}


def io_outside_the_door(source: str) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call):
            f = node.func
            if isinstance(f, ast.Name) and f.id == "open":
                found.append((node.lineno, "open()"))
            elif (isinstance(f, ast.Attribute) and f.attr in _IO_CALLS
                  and not (isinstance(f.value, ast.Name) and f.value.id in _DOOR_NAMES)):
                found.append((node.lineno, f".{f.attr}()"))
            elif (isinstance(f, ast.Attribute) and f.attr == "replace"
                  and isinstance(f.value, ast.Name) and f.value.id == "os"):
                found.append((node.lineno, "os.replace()"))
        elif isinstance(node, ast.Import | ast.ImportFrom):
            names = [a.name for a in node.names]
            if isinstance(node, ast.ImportFrom) and node.module:
                names.append(node.module)
            found += [(node.lineno, f"import {n}") for n in names
                      if n.split(".")[0] in _IO_MODULES or n.startswith(_IO_MODULES)]
    return found


def test_the_walker_finds_file_io():
    probe = "import shutil\nfrom pathlib import Path\nPath('x').write_text('y')\nopen('z')\n"
    assert [what for _, what in io_outside_the_door(probe)] == [
        "import shutil", ".write_text()", "open()"]
    assert io_outside_the_door("files.write_text('x', 'y')\n") == []


def test_no_file_io_outside_the_storage_package():
    offenders = []
    for base in ("mktpipe", "jobs"):
        for path in sorted((ROOT / base).rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            if rel.startswith("mktpipe/storage/") or rel in ALLOWED:
                continue
            offenders += [f"{rel}:{line}: {what}"
                          for line, what in io_outside_the_door(path.read_text())]
    assert offenders == [], "file I/O outside mktpipe.storage.files:\n" + "\n".join(offenders)
