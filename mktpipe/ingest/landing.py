"""The landing zone: which dates and files exist, and their raw lines.

Layout: ``<landing>/<source>/date=YYYY-MM-DD/*.{json,jsonl,csv}`` (optionally ``.gz``);
``<landing>`` is a local path or a URI (listed through the file door, read by Spark).
"""

from __future__ import annotations

import datetime as dt
import re
import zlib
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from mktpipe.errors import InputError
from mktpipe.schemas import CSV_SOURCES, INGEST_DATE, RAW_FIELDS, SOURCE_FILE, SOURCES
from mktpipe.storage import files as door

_DATE_DIR = re.compile(r"^date=(\d{4}-\d{2}-\d{2})$")
_DATE_IN_PATH = r"/date=(\d{4}-\d{2}-\d{2})/[^/]*$"
EXTENSIONS = {
    "json": (".json", ".jsonl", ".json.gz", ".jsonl.gz"),
    "csv": (".csv", ".csv.gz"),
}
RAW = "value"


def file_format(source: str) -> str:
    return "csv" if source in CSV_SOURCES else "json"


def csv_header(source: str) -> str:
    return ",".join(name for name, _ in RAW_FIELDS[source])


def landing_dates(landing: str | Path) -> list[dt.date]:
    """Every date that has a folder under any source, sorted."""
    dates: set[dt.date] = set()
    root = door.normalize(landing)
    for source in SOURCES:
        for name in door.list_dirs(door.join(root, source)):
            match = _DATE_DIR.match(name)
            if match:
                dates.add(dt.date.fromisoformat(match.group(1)))
    return sorted(dates)


def landing_files(landing: str | Path, source: str, run_date: dt.date) -> list[str]:
    """The data files of ``source`` for ``run_date``, sorted (empty when the folder is
    missing); paths in the canonical spelling (mktpipe.storage.files.normalize)."""
    folder = door.join(door.normalize(landing), source, f"date={run_date.isoformat()}")
    return door.list_files(folder, EXTENSIONS[file_format(source)])


def require_landing(landing: str | Path, run_date: dt.date) -> None:
    """Raise InputError when no source has a folder for ``run_date``."""
    if any(landing_files(landing, s, run_date) for s in SOURCES):
        return
    dates = landing_dates(landing)
    known = (
        f"dates present: {dates[0]} .. {dates[-1]} ({len(dates)} dates)"
        if dates
        else "the landing zone is empty"
    )
    raise InputError(
        f"no landing files for {run_date} under {landing} "
        f"(looked for <landing>/<source>/date={run_date}/*.json|csv); {known}. "
        f"Generate demo data with `mktpipe generate` or check paths.landing."
    )


def _first_line(path: str | Path, head_bytes: int = 65536) -> str:
    head = door.read_head(path, head_bytes)
    if str(path).endswith(".gz"):
        head = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(head)
    return head.split(b"\n", 1)[0].decode("utf-8", errors="replace").strip().lstrip("\ufeff")


def check_csv_headers(source: str, files: list[str] | list[Path]) -> None:
    """Every CSV file must start with the expected header; raise InputError naming the file."""
    expected = csv_header(source)
    for path in files:
        found = _first_line(path)
        if found != expected:
            raise InputError(
                f"{path}: CSV header is {found!r}, expected {expected!r}. "
                f"Fix the export's columns (names and order) and re-run."
            )


def read_lines(spark: SparkSession, source: str, files: list[str] | list[Path]) -> DataFrame:
    """One row per record line: ``value`` (raw text), ``_source_file``, ``_ingest_date``.

    CSV header lines are dropped (they are not records). Blank lines are kept: validation
    quarantines them, so the count of lines read is the count of records accounted for.
    """
    lines = (
        spark.read.text([str(p) for p in files])
        .select(F.col(RAW), F.col("_metadata.file_path").alias(SOURCE_FILE))
        .withColumn(INGEST_DATE, F.to_date(F.regexp_extract(SOURCE_FILE, _DATE_IN_PATH, 1)))
    )
    if file_format(source) == "csv":
        header = csv_header(source)
        lines = lines.filter(F.regexp_replace(F.col(RAW), "^\ufeff", "") != F.lit(header))
    return lines
