"""The landing zone: which dates and files exist, and their raw lines.

Layout: ``<landing>/<source>/date=YYYY-MM-DD/*.{json,jsonl,csv}`` (optionally ``.gz``).
"""

from __future__ import annotations

import datetime as dt
import gzip
import re
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from mktpipe.errors import InputError
from mktpipe.schemas import CSV_SOURCES, INGEST_DATE, RAW_FIELDS, SOURCE_FILE, SOURCES

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
    for source in SOURCES:
        folder = Path(landing) / source
        if not folder.is_dir():
            continue
        for child in folder.iterdir():
            match = _DATE_DIR.match(child.name)
            if match and child.is_dir():
                dates.add(dt.date.fromisoformat(match.group(1)))
    return sorted(dates)


def landing_files(landing: str | Path, source: str, run_date: dt.date) -> list[Path]:
    """The data files of ``source`` for ``run_date`` (empty when the folder is missing)."""
    folder = Path(landing) / source / f"date={run_date.isoformat()}"
    if not folder.is_dir():
        return []
    suffixes = EXTENSIONS[file_format(source)]
    return sorted(p for p in folder.iterdir() if p.is_file() and p.name.endswith(suffixes))


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


def _first_line(path: Path) -> str:
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rb") as fh:
        return fh.readline().decode("utf-8", errors="replace").strip().lstrip("\ufeff")


def check_csv_headers(source: str, files: list[Path]) -> None:
    """Every CSV file must start with the expected header; raise InputError naming the file."""
    expected = csv_header(source)
    for path in files:
        found = _first_line(path)
        if found != expected:
            raise InputError(
                f"{path}: CSV header is {found!r}, expected {expected!r}. "
                f"Fix the export's columns (names and order) and re-run."
            )


def read_lines(spark: SparkSession, source: str, files: list[Path]) -> DataFrame:
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
