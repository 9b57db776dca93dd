"""Realistic bad records: mutated copies of good rows, each with exactly one defect.

For a file of n clean rows about ``rate * n`` extra lines are made, spread evenly over the kinds
that apply to the source; good rows are never changed or dropped. Each kind maps to the reason
code ingest must give (``schemas.REASON_*`` or ``schemas.DUPLICATE``). Exact re-deliveries go
into the next date's file (the same file on the last date) and count there.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from mktpipe import schemas
from mktpipe.generate.params import SECONDS_PER_DAY
from mktpipe.generate.serialize import field_kind, is_csv, to_display, to_lines

REASON = {
    "malformed": schemas.REASON_MALFORMED,
    "missing": schemas.REASON_MISSING_REQUIRED,
    "wrong_type": schemas.REASON_WRONG_TYPE,
    "unknown_enum": schemas.REASON_UNKNOWN_ENUM,
    "out_of_range": schemas.REASON_OUT_OF_RANGE,
    "future": schemas.REASON_FUTURE_TIMESTAMP,
    "bad_encoding": schemas.REASON_BAD_ENCODING,
    "duplicate_exact": schemas.DUPLICATE,
    "duplicate_near": schemas.DUPLICATE,
    "duplicate_redelivery": schemas.DUPLICATE,
}
# (field, bad values, only rows where the field is set); values no cast accepts
WRONG_TYPE_VALUES = {
    "users": [("signup_date", ("31/02/2024", "yesterday", "2024-13-01"), False),
              ("is_creator", ("maybe", "2"), False)],
    "videos": [("posted_at", ("yesterday", "2024-13-45T99:00:00Z"), False),
               ("duration_s", ("abc", "long"), False)],
    "events": [("ts", ("yesterday", "not a time"), False),
               ("watch_time_s", ("abc", "ten"), True)],
    "comments": [("ts", ("yesterday", "last week"), False)],
    "follows": [("followed_at", ("yesterday", "2024-13-01 25:00"), False)],
    "orders": [("amount", ("twelve", "12,50 EUR"), False), ("ts", ("yesterday",), False)],
}
# only fields that ingest checks against a schemas enum
UNKNOWN_ENUM_VALUES = {
    "users": [("device", ("smart_tv", "blackberry"), False), ("gender", ("robot",), False),
              ("age_band", ("99+", "0-12"), False), ("language", ("fr", "klingon"), False),
              ("acquisition_channel", ("tv_ad", "billboard"), False)],
    "videos": [("category", ("astrology", "crypto"), False)],
    "events": [("event_type", ("swipe_up", "duet", "stitch"), False)],
    "orders": [("currency", ("XXX", "BTC"), False), ("category", ("crypto", "astrology"), False)],
}
# numeric field that must be > 0 (zero_is_bad) or >= 0
OUT_OF_RANGE_FIELDS = {
    "videos": ("duration_s", True),
    "events": ("watch_time_s", False),
    "orders": ("amount", True),
}
BAD_ENCODING_FIELDS = {
    "users": "country", "videos": "sound_id", "events": "app_version", "comments": "text",
    "follows": "followee_id", "orders": "source_video_id",
}
# private-use characters that never occur in clean text, turned into non-UTF-8 bytes
BAD_BYTES = {
    "\ue000": b"\xff\xfe",
    "\ue001": "ó".encode("latin-1"),
    "\ue002": "ñ".encode("latin-1"),
    "\ue003": "é".encode("latin-1"),
}
# latin-1 text inside a UTF-8 file
LATIN1_COMMENTS = ("me encant\ue001 esta canci\ue001n", "qu\ue003 bonito", "el mejor a\ue002o",
                   "caf\ue003 con leche", "\ue000\ue000")
LATIN1_SUFFIXES = ("\ue000", "-canci\ue001n", "-a\ue002o", "-caf\ue003")
FUTURE_MIN_DAYS, FUTURE_MAX_DAYS = 3, 30
NEAR_SHIFT_S = 3


@dataclass(frozen=True)
class Injection:
    """Injected lines for one file, the clean row each must follow (-1: anywhere), their
    reason codes, and re-delivered lines for the next date's file."""

    lines: np.ndarray
    after: np.ndarray
    reasons: np.ndarray
    carry: np.ndarray


@dataclass(frozen=True)
class _Ctx:
    source: str
    typed: pd.DataFrame
    display: pd.DataFrame
    lines: np.ndarray
    file_day: int
    rng: np.random.Generator

    @property
    def n(self) -> int:
        return len(self.lines)

    def rows(self, m: int, mask: np.ndarray | None = None) -> np.ndarray:
        pool = np.arange(self.n) if mask is None else np.flatnonzero(mask)
        return pool[self.rng.integers(0, len(pool), size=m)] if len(pool) else pool[:0]


def applicable_kinds(source: str) -> tuple[str, ...]:
    """The defect kinds that make sense for a source (enum/range checks exist for some)."""
    skip = set()
    if source not in UNKNOWN_ENUM_VALUES:
        skip.add("unknown_enum")
    if source not in OUT_OF_RANGE_FIELDS:
        skip.add("out_of_range")
    return tuple(k for k in REASON if k not in skip)


def inject(source: str, typed: pd.DataFrame, display: pd.DataFrame, lines: np.ndarray,
           file_day: int, rate: float, rng: np.random.Generator, last: bool) -> Injection:
    """Make about ``rate * len(lines)`` bad lines for the file of ``file_day`` (epoch day)."""
    empty = np.empty(0, dtype=object)
    ctx = _Ctx(source, typed.reset_index(drop=True), display.reset_index(drop=True), lines,
               file_day, rng)
    k = int(np.floor(rate * ctx.n + rng.random())) if rate > 0 and ctx.n else 0
    kinds = applicable_kinds(source)
    counts = np.bincount(rng.integers(0, len(kinds), size=k), minlength=len(kinds))
    out_lines, out_after, out_reasons, carry = [], [], [], empty
    for kind, m in zip(kinds, counts):  # a loop per defect kind
        if m == 0:
            continue
        made, after = _HANDLERS[kind](ctx, int(m))
        if kind == "duplicate_redelivery" and not last:
            carry = made
            continue
        out_lines.append(made)
        out_after.append(after)
        out_reasons.append(np.full(len(made), REASON[kind], dtype=object))
    if not out_lines:
        return Injection(empty, np.empty(0, dtype=np.int64), empty, carry)
    return Injection(np.concatenate(out_lines), np.concatenate(out_after),
                     np.concatenate(out_reasons), carry)


def _anywhere(lines: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return lines, np.full(len(lines), -1, dtype=np.int64)


def _malformed(ctx: _Ctx, m: int):
    """Truncated JSON, a stray brace, a missing colon; CSV with a field too few or too many."""
    text = ctx.lines[ctx.rows(m)].astype(str)
    variant = ctx.rng.integers(0, 3, size=m)
    if is_csv(ctx.source):
        fewer = np.strings.rpartition(text, ",")[0]
        bad = np.where(variant == 0, fewer, np.strings.add(text, ",extra"))
    else:
        length = np.strings.str_len(text)
        cut = 10 + np.floor(ctx.rng.random(m) * (length - 11)).astype(np.int64)
        bad = np.where(variant == 0, np.strings.slice(text, 0, cut),
                       np.where(variant == 1, np.strings.add("{", text),
                                np.strings.replace(text, '":', '" ', 1)))
    return _anywhere(bad.astype(object))


def _missing(ctx: _Ctx, m: int):
    """A required field absent (JSON only), null or empty."""
    required = schemas.REQUIRED_FIELDS[ctx.source]
    rows = ctx.rows(m)
    sub = ctx.display.iloc[rows].astype(object).reset_index(drop=True)
    field = np.array(required, dtype=object)[ctx.rng.integers(0, len(required), size=m)]
    variant = ctx.rng.integers(0 if not is_csv(ctx.source) else 1, 3, size=m)
    parts = []
    for name in required:  # a loop per required field
        mine = field == name
        sub.loc[mine & (variant == 1), name] = None
        sub.loc[mine & (variant == 2), name] = ""
        absent = mine & (variant == 0)
        if absent.any():
            parts.append(to_lines(ctx.source, sub.loc[absent].drop(columns=[name])))
    parts.append(to_lines(ctx.source, sub.loc[variant != 0]))
    return _anywhere(np.concatenate(parts))


def _set_values(ctx: _Ctx, m: int, entries) -> tuple[np.ndarray, np.ndarray]:
    """Copies of m rows with one field replaced by a bad value from ``entries``."""
    pick = ctx.rng.integers(0, len(entries), size=m)
    frames = []
    for j, (name, values, needs_value) in enumerate(entries):  # a loop per field
        mask = ctx.display[name].notna().to_numpy() if needs_value else None
        rows = ctx.rows(int((pick == j).sum()), mask)
        if len(rows) < (pick == j).sum():  # no row has the field: use the first entry
            rows = ctx.rows(int((pick == j).sum()))
            name, values = entries[0][0], entries[0][1]
        sub = ctx.display.iloc[rows].astype(object)
        sub[name] = np.array(values, dtype=object)[ctx.rng.integers(0, len(values), len(rows))]
        frames.append(sub)
    return _anywhere(to_lines(ctx.source, pd.concat(frames)))


def _wrong_type(ctx: _Ctx, m: int):
    return _set_values(ctx, m, WRONG_TYPE_VALUES[ctx.source])


def _unknown_enum(ctx: _Ctx, m: int):
    return _set_values(ctx, m, UNKNOWN_ENUM_VALUES[ctx.source])


def _out_of_range(ctx: _Ctx, m: int):
    """A negative value (or zero where it must be positive)."""
    name, zero_is_bad = OUT_OF_RANGE_FIELDS[ctx.source]
    rows = ctx.rows(m, ctx.display[name].notna().to_numpy())
    sub = ctx.display.iloc[rows].astype(object)
    value = -np.abs(sub[name].to_numpy(dtype=np.float64)) - 0.5
    zero = zero_is_bad & (ctx.rng.random(len(rows)) < 0.2)
    sub[name] = np.where(zero, 0.0, np.round(value, 2))
    return _anywhere(to_lines(ctx.source, sub))


def _future(ctx: _Ctx, m: int):
    """Event time FUTURE_MIN_DAYS or more after the file's date."""
    name = schemas.EVENT_TIME[ctx.source]
    sub = ctx.typed.iloc[ctx.rows(m)].copy()
    ahead = ctx.file_day + ctx.rng.integers(FUTURE_MIN_DAYS, FUTURE_MAX_DAYS + 1, size=m)
    if field_kind(ctx.source, name) == "date":
        sub[name] = ahead
    else:
        sub[name] = ahead * SECONDS_PER_DAY + ctx.rng.integers(0, SECONDS_PER_DAY, size=m)
    return _anywhere(to_lines(ctx.source, to_display(ctx.source, sub)))


def _bad_encoding(ctx: _Ctx, m: int):
    """Latin-1 or stray bytes inside a text field (the file stays UTF-8 elsewhere)."""
    name = BAD_ENCODING_FIELDS[ctx.source]
    sub = ctx.display.iloc[ctx.rows(m, ctx.display[name].notna().to_numpy())].astype(object)
    if name == "text":
        pool = np.array(LATIN1_COMMENTS, dtype=object)
        sub[name] = pool[ctx.rng.integers(0, len(pool), size=len(sub))]
    else:
        pool = np.array(LATIN1_SUFFIXES, dtype=object)
        sub[name] = sub[name].to_numpy() + pool[ctx.rng.integers(0, len(pool), size=len(sub))]
    return _anywhere(_with_bad_bytes(to_lines(ctx.source, sub)))


def _with_bad_bytes(lines: np.ndarray) -> np.ndarray:
    """Replace the marker characters by invalid bytes, held as lone surrogates
    (``surrogateescape``) until the file is encoded."""
    raw = np.strings.encode(lines.astype(str), "utf-8")
    for marker, bad in BAD_BYTES.items():
        raw = np.strings.replace(raw, marker.encode("utf-8"), bad)
    return np.strings.decode(raw, "utf-8", "surrogateescape").astype(object)


def _duplicate_exact(ctx: _Ctx, m: int):
    rows = ctx.rows(m)
    return ctx.lines[rows], rows


def _duplicate_redelivery(ctx: _Ctx, m: int):
    return _duplicate_exact(ctx, m)


def _duplicate_near(ctx: _Ctx, m: int):
    """Same natural key, slightly different payload: time +3 s, another watch time/device."""
    rows = ctx.rows(m)
    sub = ctx.typed.iloc[rows].copy()
    if ctx.source == "users":
        code = sub["device"].map({d: i for i, d in enumerate(schemas.DEVICES)}).to_numpy()
        shift = 1 + ctx.rng.integers(0, len(schemas.DEVICES) - 1, size=m)
        sub["device"] = np.array(schemas.DEVICES, dtype=object)[(code + shift) % 3]
        return to_lines(ctx.source, to_display(ctx.source, sub)), rows
    name = schemas.EVENT_TIME[ctx.source]
    rewatch = np.zeros(m, dtype=bool)
    if ctx.source == "events":
        watch = sub["watch_time_s"].to_numpy(dtype=np.float64)
        rewatch = ~np.isnan(watch) & (ctx.rng.random(m) < 0.5)
        sub["watch_time_s"] = np.where(rewatch, np.round(watch + 1 + 4 * ctx.rng.random(m), 1),
                                       watch)
    sub[name] = np.where(rewatch, sub[name].to_numpy(), sub[name].to_numpy() + NEAR_SHIFT_S)
    return to_lines(ctx.source, to_display(ctx.source, sub)), rows


_HANDLERS = {
    "malformed": _malformed,
    "missing": _missing,
    "wrong_type": _wrong_type,
    "unknown_enum": _unknown_enum,
    "out_of_range": _out_of_range,
    "future": _future,
    "bad_encoding": _bad_encoding,
    "duplicate_exact": _duplicate_exact,
    "duplicate_near": _duplicate_near,
    "duplicate_redelivery": _duplicate_redelivery,
}
