"""A JSON value whose JSON type its field does not allow is WRONG_TYPE, for every field of
every JSON source: objects and arrays where a scalar belongs (Spark's from_json would read them
into a string field as their text), quoted numbers, epoch numbers for timestamps, arrays of
anything but strings."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from pyspark.sql import functions as F

from mktpipe import schemas as S
from mktpipe.ingest.landing import RAW
from mktpipe.ingest.validate import (
    DETAIL,
    JSON_TYPES,
    REASON,
    Rules,
    classify,
    enum_fields,
    parse_raw,
)

DAY = dt.date(2026, 1, 10)
RULES = Rules(now=dt.datetime(2026, 2, 1, tzinfo=dt.timezone.utc))
NESTED = {"nested": {"value": "o1"}}
SAMPLE = {"string": "x1", "double": 12.5, "long": 3, "int": 3, "boolean": True,
          "timestamp": "2026-01-10T10:00:00Z", "date": "2026-01-10",
          "array<string>": ["a", "b"]}


def valid_record(source: str) -> dict:
    record = {name: SAMPLE[kind] for name, kind in S.RAW_FIELDS[source]}
    for name, allowed in enum_fields(source, RULES).items():
        record[name] = allowed[0]
    if source == "follows":
        record[S.FOLLOWEE_ID] = "x2"
    return record


def reasons(spark, source: str, records: list[dict]) -> list[tuple[str | None, str | None]]:
    lines = spark.createDataFrame([(json.dumps(r),) for r in records], f"{RAW} string")
    lines = lines.withColumn(S.INGEST_DATE, F.lit(DAY))
    out = classify(parse_raw(lines, source), source, RULES).select(REASON, DETAIL).collect()
    return [(row[REASON], row[DETAIL]) for row in out]


def test_every_raw_kind_has_its_json_types():
    kinds = {kind for fields in S.RAW_FIELDS.values() for _, kind in fields}
    assert kinds <= set(JSON_TYPES)


@pytest.mark.parametrize("source", S.JSON_SOURCES)
def test_nested_values_in_any_field_are_wrong_type(spark, source):
    base = valid_record(source)
    fields = [name for name, _ in S.RAW_FIELDS[source]]
    records = [base]
    for name in fields:
        records += [{**base, name: NESTED}, {**base, name: [NESTED]}]
    got = reasons(spark, source, records)
    assert got[0] == (None, None), f"the valid {source} record was rejected: {got[0]}"
    for i, name in enumerate(fields):
        for case, (reason, detail) in zip(("object", "array"), got[1 + 2 * i: 3 + 2 * i]):
            assert reason == S.REASON_WRONG_TYPE, f"{source}.{name} as an {case}: {reason}"
            assert detail.startswith(f"{name} is a JSON "), detail


@pytest.mark.parametrize("source", S.JSON_SOURCES)
def test_scalar_json_type_mismatches_are_wrong_type(spark, source):
    base = valid_record(source)
    cases = []
    for name, kind in S.RAW_FIELDS[source]:
        if kind in ("double", "long", "int"):
            cases.append((name, str(base[name])))  # a quoted number
            cases.append((name, True))
        elif kind in ("timestamp", "date"):
            cases.append((name, 1768039200))  # an epoch number
        elif kind == "array<string>":
            cases += [(name, "a,b"), (name, [1, 2])]
        elif kind == "string" and name not in enum_fields(source, RULES):
            cases.append((name, False))
    got = reasons(spark, source, [{**base, name: value} for name, value in cases])
    for (name, value), (reason, detail) in zip(cases, got):
        assert reason == S.REASON_WRONG_TYPE, f"{source}.{name}={value!r}: {reason} {detail}"


def test_numbers_for_string_ids_and_nulls_stay_valid(spark):
    base = valid_record("orders")
    got = reasons(spark, "orders", [{**base, "order_id": 12345},
                                    {**base, "source_video_id": None}])
    assert got == [(None, None), (None, None)]


GUARD_VALUES = [NESTED, [NESTED], [], {}, True, False, None, "x", "", "12.5", 12.5, 3, 3.0,
                -7, 1e3, 1768039200, "2026-01-10T10:00:00Z", ["a"], [1], ["a", 1], [None]]


def _lines(record: dict, name: str) -> list[str]:
    """The record as a line in three spellings: compact, spaced, and with ``name``'s key
    escaped (``"\\u0075ser_id"``), which from_json reads as the plain key."""
    compact = json.dumps(record, separators=(",", ":"))
    spaced = json.dumps(record, separators=(" , ", " :\t "))
    escaped = compact.replace(f'"{name}"', f'"\\u{ord(name[0]):04x}{name[1:]}"', 1)
    return [compact, spaced, escaped]


@pytest.mark.parametrize("source", S.JSON_SOURCES)
def test_the_cheap_guard_never_clears_a_line_the_exact_check_rejects(spark, source):
    """The regex over the raw text decides where the exact per-field JSON type check runs;
    it may flag fine lines, but a line it clears must have no field of a wrong JSON type."""
    from mktpipe.ingest.validate import VARIANT, _json_type_failure, json_types_suspect

    base = valid_record(source)
    lines = [json.dumps(base)]
    for name, _ in S.RAW_FIELDS[source]:
        for value in GUARD_VALUES:
            lines += _lines({**base, name: value}, name)
    df = spark.createDataFrame([(line,) for line in lines], f"{RAW} string")
    exact = F.lit(False)
    for name, kind in S.RAW_FIELDS[source]:
        exact = exact | F.coalesce(_json_type_failure(name, kind)[0], F.lit(False))
    rows = (
        df.withColumn(VARIANT, F.try_parse_json(RAW))
        .select(RAW, exact.alias("exact"), json_types_suspect(source).alias("guard"))
        .collect()
    )
    assert not rows[0]["guard"], f"the guard flags the plain valid {source} record"
    missed = [r[RAW] for r in rows if r["exact"] and not r["guard"]]
    assert not missed, f"{len(missed)} bad {source} lines cleared by the guard: {missed[:3]}"
    assert sum(r["exact"] for r in rows) > len(S.RAW_FIELDS[source]) * 4  # the cases bite
