"""Parse raw record lines and classify every row: valid, or a quarantine reason code.

Every field is parsed as text first and cast with ``try_cast``, so a wrong type is told apart
from a missing field and from a malformed record. Rules run in precedence order (the first
failing rule names the reason; see ``schemas.REASON_CODES``):

    BAD_ENCODING      the line held bytes that are not UTF-8 (decoded as U+FFFD)
    MALFORMED_RECORD  not a JSON object / wrong CSV field count / blank line
    MISSING_REQUIRED  a required field absent, null or empty
    WRONG_TYPE        a JSON value whose JSON type its field does not allow (an object or
                      array where a scalar belongs, a quoted number, an epoch number for a
                      time: see JSON_TYPES), or a value that does not parse as its type (or
                      a non-finite number)
    UNKNOWN_ENUM      a value outside its enum (event type, currency, device, ...)
    OUT_OF_RANGE      negative amounts, negative or impossible watch time, duration <= 0
    FUTURE_TIMESTAMP  event time after the landing date's end plus tolerance, or after now
    UNKNOWN_USER      (referential check, applied later) a user id never ingested
"""

from __future__ import annotations

import datetime as dt
import itertools
import re
from dataclasses import dataclass
from typing import NamedTuple

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import ArrayType, StringType, StructField, StructType

from mktpipe import schemas as S
from mktpipe.ingest.landing import RAW, file_format

REASON = "reason_code"
DETAIL = "reason_detail"
CORRUPT = "_corrupt"
PARSED = "_parsed"
VARIANT = "_variant"  # JSON sources: the line as a Variant, for each value's JSON type
JSON_TYPE_GROUP = "json_type"

# The JSON types (as schema_of_variant names them) a raw field of each kind may have. Spark's
# from_json reads an object or array into a string field as its JSON text, and a quoted number
# casts to a number: without this check {"order_id": {"nested": 1}} would land as an id.
_INTEGER = ("BIGINT", "INT", "SMALLINT", "TINYINT")
_NUMBER = _INTEGER + ("DOUBLE", "FLOAT", "DECIMAL")
JSON_TYPES: dict[str, tuple[str, ...]] = {
    "string": ("STRING",) + _NUMBER,  # ids and codes exported as numbers are still ids
    "double": _NUMBER,
    "long": _INTEGER,
    "int": _INTEGER,
    "boolean": ("BOOLEAN",),
    "timestamp": ("STRING",),  # ISO-8601 text; an epoch number is not accepted
    "date": ("STRING",),
    "array<string>": ("ARRAY<STRING>", "ARRAY<VOID>"),
}


@dataclass(frozen=True)
class Rules:
    """Validation settings (from config.ingest)."""

    now: dt.datetime
    future_tolerance_hours: int = 24
    max_order_usd: float = 20_000.0
    max_watch_time_s: float = 10_800.0
    max_video_duration_s: float = 3_600.0
    fx_to_usd: tuple[tuple[str, float], ...] = tuple(sorted(S.FX_TO_USD.items()))

    @property
    def currencies(self) -> tuple[str, ...]:
        return tuple(code for code, _ in self.fx_to_usd)

    def latest_valid_ts(self, landing_date: Column) -> Column:
        """The end of the row's landing date plus tolerance, or now if that is earlier."""
        end_of_day = F.to_timestamp(F.date_add(landing_date, 1))
        bound = end_of_day + F.make_dt_interval(F.lit(0), F.lit(self.future_tolerance_hours))
        return F.least(bound, F.lit(self.now))


def enum_fields(source: str, rules: Rules) -> dict[str, tuple[str, ...]]:
    """Fields checked against a closed set of values (null allowed unless required)."""
    return {
        "users": {
            "language": S.LANGUAGES,
            "age_band": S.AGE_BANDS,
            "gender": S.GENDERS,
            "device": S.DEVICES,
            "acquisition_channel": S.ACQUISITION_CHANNELS,
        },
        "videos": {"category": S.CATEGORIES},
        "events": {S.EVENT_TYPE: S.EVENT_TYPES, "device": S.DEVICES},
        "comments": {},
        "follows": {},
        "orders": {"currency": rules.currencies, "category": S.CATEGORIES},
    }[source]


def _raw_schema(source: str) -> StructType:
    fields = [StructField(name, StringType(), True) for name, _ in S.RAW_FIELDS[source]]
    return StructType(fields + [StructField(CORRUPT, StringType(), True)])


def parse_raw(lines: DataFrame, source: str) -> DataFrame:
    """``value`` -> one string column per raw field plus ``_corrupt`` (malformed records)."""
    options = {"mode": "PERMISSIVE", "columnNameOfCorruptRecord": CORRUPT}
    schema = _raw_schema(source)
    if file_format(source) == "csv":
        return lines.withColumn(PARSED, F.from_csv(F.col(RAW), schema.simpleString(), options))
    # the Variant (for each value's exact JSON type) is built only for the lines a cheap
    # look at the text cannot clear: parsing every line twice cost more than validating it
    return (
        lines.withColumn(PARSED, F.from_json(F.col(RAW), schema, options))
        .withColumn(VARIANT, F.when(json_types_suspect(source), F.try_parse_json(F.col(RAW))))
    )


def _json_type(name: str) -> Column:
    """The JSON type of field ``name`` (``STRING``, ``BIGINT``, ``OBJECT<...>``, ``VOID``...)."""
    return F.schema_of_variant(F.variant_get(F.col(VARIANT), f"$.{name}", "variant"))


class Check(NamedTuple):
    """One rule: the failing condition, its reason code, the detail text. Consecutive checks
    with the same ``group`` are evaluated only where that group's guard says they may fail."""

    cond: Column
    reason: str
    detail: Column
    group: str | None = None


def _json_type_failure(name: str, kind: str) -> tuple[Column, Column]:
    """(a present value whose JSON type the kind does not allow, detail)."""
    json_type = _json_type(name)
    base = F.regexp_extract(json_type, r"^([A-Z]+)", 1)
    allowed = JSON_TYPES[kind]
    scalar_ok = base.isin([t for t in allowed if "<" not in t])
    nested_ok = json_type.isin([t for t in allowed if "<" in t])
    bad = json_type.isNotNull() & (json_type != "VOID") & ~(scalar_ok | nested_ok)
    detail = F.concat(F.lit(f"{name} is a JSON "), F.substring(json_type, 1, 40),
                      F.lit(f", expected {kind}"))
    return bad, detail


# After a field's name (and the colon), the first character of a value whose JSON type the
# field's kind does not allow; a value starting otherwise can still be bad only as a number
# where an integer belongs (1.5, 1e3), which the integer pattern adds.
_BAD_START = {
    "string": r"[\[{tf]",  # object, array, true/false (numbers are fine: ids exported as numbers)
    "double": r"[^-0-9n\s]",  # anything but a number or null (a quoted number is a STRING)
    "long": r"(?:[^-0-9n\s]|-?[0-9]+[.eE])",
    "int": r"(?:[^-0-9n\s]|-?[0-9]+[.eE])",
    "boolean": r"[^tfn\s]",
    "timestamp": r"[^\"n\s]",  # ISO text only: an epoch number is not accepted
    "date": r"[^\"n\s]",
    # anything but null or an array of plain strings ([], ["a", "b"]; escapes are caught
    # by the backslash rule)
    "array<string>": r'(?!null|\[\s*(?:"[^"\\]*"\s*(?:,\s*"[^"\\]*"\s*)*)?\])',
}


def json_types_suspect(source: str) -> Column:
    """True when some field of the line may hold a JSON type its kind does not allow.

    One regular expression and one substring test over the raw text, with no parse: a field
    name followed by a value whose first character its kind rules out, or a backslash
    anywhere (an escaped key such as ``"\\u0061mount"`` names a field the text does not
    spell). It can say true for a fine line (a nested object that reuses a field name, a
    comment with an escaped quote), never false for a bad one, so the exact per-field check
    (``schema_of_variant``) runs only where it says true."""
    groups: dict[str, list[str]] = {}
    for name, kind in S.RAW_FIELDS[source]:
        groups.setdefault(_BAD_START[kind], []).append(name)
    branches = []
    for bad_start, names in groups.items():
        fields = "|".join(re.escape(n) for n in names)
        # possessive \s*+: the space before a value must not be read as its first character
        branches.append(f'(?:{fields})"\\s*+:\\s*+{bad_start}')
    # one leading quote for every branch: the matcher tries the alternatives only at a quote,
    # not at each character of the line (2.3x faster on 2 M event lines than one alternation
    # of whole branches); the backslash is a plain substring test
    return F.col(RAW).contains("\\") | F.col(RAW).rlike('"(?:' + "|".join(branches) + ")")


def _raw(name: str) -> Column:
    return F.col(f"{PARSED}.{name}")


def _is_blank(col: Column) -> Column:
    return col.isNull() | (F.trim(col) == "")


_TYPED = "_typed_"


def _typed(name: str, kind: str) -> Column:
    """Field ``name`` cast to its kind: the column ``classify`` computes once per row (rules,
    range checks and the typed output all read it, instead of casting again each)."""
    return _raw(name) if kind == "string" else F.col(_TYPED + name)


def _cast(name: str, kind: str) -> Column:
    raw = F.trim(_raw(name))
    if kind == "array<string>":
        return F.from_json(raw, ArrayType(StringType()))
    if kind == "timestamp":
        return raw.try_cast("timestamp")
    return raw.try_cast(kind)


def _type_failure(name: str, kind: str) -> Column:
    present = ~_is_blank(_raw(name))
    typed = _typed(name, kind)
    bad = present & typed.isNull()
    if kind == "double":
        bad = bad | (present & (F.isnan(typed) | (F.abs(typed) == float("inf"))))
    return bad


def _rules(source: str, rules: Rules) -> list[Check]:
    """The checks in precedence order."""
    checks: list = [
        (~F.is_valid_utf8(F.col(RAW)) | F.col(RAW).contains("\ufffd"), S.REASON_BAD_ENCODING,
         F.lit("invalid UTF-8 bytes")),
        (_is_blank(F.col(RAW)), S.REASON_MALFORMED, F.lit("blank line")),
        (
            F.col(PARSED).isNull() | _raw(CORRUPT).isNotNull(),
            S.REASON_MALFORMED,
            F.lit("not a valid JSON object" if file_format(source) == "json"
                  else "wrong number of CSV fields"),
        ),
    ]
    for name in S.REQUIRED_FIELDS[source]:
        checks.append((_is_blank(_raw(name)), S.REASON_MISSING_REQUIRED, F.lit(f"{name} missing")))
    if file_format(source) == "json":
        for name, kind in S.RAW_FIELDS[source]:
            bad, detail = _json_type_failure(name, kind)
            checks.append(Check(bad, S.REASON_WRONG_TYPE, detail, group=JSON_TYPE_GROUP))
    for name, kind in S.RAW_FIELDS[source]:
        if kind != "string":
            detail = F.concat(F.lit(f"{name}="), F.substring(_raw(name), 1, 40),
                              F.lit(f" is not a {kind}"))
            checks.append((_type_failure(name, kind), S.REASON_WRONG_TYPE, detail))
    for name, allowed in enum_fields(source, rules).items():
        value = _raw(name)
        bad = value.isNotNull() & ~value.isin(list(allowed))
        detail = F.concat(F.lit(f"{name}="), F.substring(value, 1, 40), F.lit(" unknown"))
        checks.append((bad, S.REASON_UNKNOWN_ENUM, detail))
    checks += _range_rules(source, rules)
    time_col, kind = S.EVENT_TIME[source], dict(S.RAW_FIELDS[source])[S.EVENT_TIME[source]]
    limit = rules.latest_valid_ts(F.col(S.INGEST_DATE))
    if kind == "date":
        future = _typed(time_col, kind) > F.to_date(limit)
    else:
        future = _typed(time_col, kind) > limit
    checks.append(
        (future, S.REASON_FUTURE_TIMESTAMP,
         F.concat(F.lit(f"{time_col}="), _raw(time_col), F.lit(" after "),
                  F.date_format(limit, "yyyy-MM-dd'T'HH:mm:ss'Z'")))
    )
    return [c if isinstance(c, Check) else Check(*c) for c in checks]


def _range_rules(source: str, rules: Rules) -> list[tuple[Column, str, Column]]:
    def rule(name: str, bad: Column, text: str) -> tuple[Column, str, Column]:
        detail = F.concat(F.lit(f"{name}="), _raw(name), F.lit(f" {text}"))
        return bad, S.REASON_OUT_OF_RANGE, detail

    if source == "orders":
        amount = _typed("amount", "double")
        pairs = [x for code, rate in rules.fx_to_usd for x in (F.lit(code), F.lit(rate))]
        usd = amount * F.create_map(*pairs)[_raw("currency")]
        return [rule("amount", (amount <= 0) | (usd > rules.max_order_usd),
                     f"outside (0, {rules.max_order_usd} USD]")]
    if source == "events":
        watch = _typed("watch_time_s", "double")
        return [rule("watch_time_s", (watch < 0) | (watch > rules.max_watch_time_s),
                     f"outside [0, {rules.max_watch_time_s}]")]
    if source == "videos":
        duration = _typed("duration_s", "double")
        return [rule("duration_s", (duration <= 0) | (duration > rules.max_video_duration_s),
                     f"outside (0, {rules.max_video_duration_s}]")]
    if source == "follows":
        return [rule(S.FOLLOWER_ID, _raw(S.FOLLOWER_ID) == _raw(S.FOLLOWEE_ID),
                     "follows itself")]
    return []


_RULE = "_rule"


def classify(parsed: DataFrame, source: str, rules: Rules) -> DataFrame:
    """Add ``reason_code`` / ``reason_detail`` (null for valid rows) by the first failing rule.

    Each rule's condition is evaluated once per row, in order, up to the first that fails
    (the rule's index); the reason and its detail text are looked up from that index."""
    checks = _rules(source, rules)
    guards = {JSON_TYPE_GROUP: lambda: F.col(VARIANT).isNotNull()}
    picks: list[Column] = []
    for group, members in itertools.groupby(enumerate(checks), key=lambda ic: ic[1].group):
        group_picks = [F.when(F.coalesce(c.cond, F.lit(False)), F.lit(i)) for i, c in members]
        if group is None:
            picks += group_picks
        else:  # one guard per row for the whole group
            picks.append(F.when(guards[group](), F.coalesce(*group_picks)))
    first = F.coalesce(*picks)
    reason = F.coalesce(*[F.when(F.col(_RULE) == i, F.lit(c.reason))
                          for i, c in enumerate(checks)])
    detail = F.coalesce(*[F.when(F.col(_RULE) == i, F.coalesce(c.detail, F.lit(c.reason)))
                          for i, c in enumerate(checks)])
    casts = {_TYPED + name: _cast(name, kind)
             for name, kind in S.RAW_FIELDS[source] if kind != "string"}
    return (
        parsed.withColumns(casts)
        .withColumn(_RULE, first)
        .withColumn(REASON, reason)
        .withColumn(DETAIL, detail)
        .drop(_RULE)
    )


def typed_columns(source: str) -> list[Column]:
    """The raw fields cast to their types, from a frame ``classify`` made (valid rows only:
    their casts are known to succeed)."""
    out = []
    for name, kind in S.RAW_FIELDS[source]:
        col = _typed(name, kind)
        if kind == "string":
            col = F.when(_is_blank(_raw(name)), F.lit(None)).otherwise(F.trim(_raw(name)))
        out.append(col.cast(S.spark_type(kind)).alias(name))
    return out
