"""Typed frames -> landing text: display conversion and JSON-lines / CSV line building.

A *typed* frame has the RAW_FIELDS columns with timestamps as epoch seconds, dates as epoch
days and booleans as bool; its *display* frame holds the text that lands in the file. Lines are
object arrays of str without the trailing newline; BAD_ENCODING lines carry their invalid bytes
as lone surrogates, which ``encode_file`` writes back as those bytes.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from mktpipe import schemas
from mktpipe.generate.fmt import format_bools, format_dates, format_ts

JSON_DOUBLE_PRECISION = 6


def is_csv(source: str) -> bool:
    return source in schemas.CSV_SOURCES


def field_names(source: str) -> list[str]:
    return [name for name, _ in schemas.RAW_FIELDS[source]]


def field_kind(source: str, name: str) -> str:
    return dict(schemas.RAW_FIELDS[source])[name]


def csv_header(source: str) -> str:
    return ",".join(field_names(source))


def to_display(source: str, typed: pd.DataFrame) -> pd.DataFrame:
    """The text form of a typed frame: ISO timestamps, YYYY-MM-DD dates, true/false."""
    out = typed.loc[:, field_names(source)].copy()
    for name, kind in schemas.RAW_FIELDS[source]:
        if kind == "timestamp":
            out[name] = format_ts(out[name].to_numpy())
        elif kind == "date":
            out[name] = format_dates(out[name].to_numpy())
        elif kind == "boolean":
            out[name] = format_bools(out[name].to_numpy())
    return out


def to_lines(source: str, display: pd.DataFrame) -> np.ndarray:
    """One line per row: a JSON object (keys in frame order) or a CSV record."""
    if len(display) == 0:
        return np.empty(0, dtype=object)
    if is_csv(source):
        text = display.to_csv(header=False, index=False, lineterminator="\n")
    else:
        text = display.to_json(orient="records", lines=True, force_ascii=False,
                               double_precision=JSON_DOUBLE_PRECISION)
    lines = np.array(text.split("\n"), dtype=object)
    return lines[:-1] if lines[-1] == "" else lines


def encode_file(source: str, lines: np.ndarray) -> bytes:
    """File bytes: CSV header (if any) and the lines in UTF-8; lone surrogates (from
    ``errors="surrogateescape"`` decoding) become the raw bytes they stand for."""
    parts = ([csv_header(source)] if is_csv(source) else []) + lines.tolist()
    body = "\n".join(parts) + ("\n" if parts else "")
    return body.encode("utf-8", errors="surrogateescape")
