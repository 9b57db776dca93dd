"""Vectorised formatting of ids, timestamps and dates into their landing-file text."""

from __future__ import annotations

import datetime as dt

import numpy as np

from mktpipe.generate.params import ID_FORMATS, SECONDS_PER_DAY

EPOCH = dt.date(1970, 1, 1)


def epoch_day(day: dt.date) -> int:
    """Days since 1970-01-01 of a calendar date."""
    return (day - EPOCH).days


def date_of(epoch_days: int) -> dt.date:
    """The calendar date of an epoch day number."""
    return EPOCH + dt.timedelta(days=int(epoch_days))


def format_ids(kind: str, numbers: np.ndarray) -> np.ndarray:
    """Ids such as ``u0000042`` for integer ``numbers`` (object array of str).

    ``kind`` is a key of ``params.ID_FORMATS``; negative numbers (no id) become None.
    """
    prefix, width = ID_FORMATS[kind]
    numbers = np.asarray(numbers, dtype=np.int64)
    if len(numbers) == 0:
        return np.empty(0, dtype=object)
    text = np.char.add(prefix, np.char.zfill(np.maximum(numbers, 0).astype(f"U{width}"), width))
    out = text.astype(object)
    out[numbers < 0] = None
    return out


def format_ts(seconds: np.ndarray) -> np.ndarray:
    """ISO-8601 UTC text (``2024-03-01T12:34:56Z``) of epoch seconds (object array)."""
    stamps = np.asarray(seconds, dtype=np.int64).astype("datetime64[s]")
    return np.datetime_as_string(stamps, unit="s", timezone="UTC").astype(object)


def format_dates(epoch_days: np.ndarray) -> np.ndarray:
    """``YYYY-MM-DD`` text of epoch day numbers (object array)."""
    days = np.asarray(epoch_days, dtype=np.int64).astype("datetime64[D]")
    return np.datetime_as_string(days, unit="D").astype(object)


def format_bools(values: np.ndarray) -> np.ndarray:
    """``true``/``false`` text of booleans (object array)."""
    return np.where(np.asarray(values, dtype=bool), "true", "false").astype(object)


def day_seconds(epoch_days: np.ndarray | int) -> np.ndarray:
    """Epoch seconds of midnight UTC of each epoch day."""
    return np.asarray(epoch_days, dtype=np.int64) * SECONDS_PER_DAY
