"""Column names, enums and StructTypes for the landing zone and the tables.

The landing zone (what `mktpipe generate` writes and what real exports look like):

    <landing>/<source>/date=YYYY-MM-DD/*.json   JSON lines (videos, events, comments, orders)
    <landing>/<source>/date=YYYY-MM-DD/*.csv    CSV with a header line (users, follows)

``RAW_FIELDS`` lists each source's fields in file order; ``BRONZE_SCHEMAS`` are the typed tables
that ingest writes. Every module refers to columns through these constants.
"""

from __future__ import annotations

from pyspark.sql.types import (
    ArrayType,
    BooleanType,
    DateType,
    DoubleType,
    LongType,
    StringType,
    StructField,
    StructType,
    TimestampType,
)

from mktpipe.i18n import NP_

# --- shared column names -----------------------------------------------------------------
USER_ID = "user_id"
VIDEO_ID = "video_id"
CREATOR_ID = "creator_id"
EVENT_ID = "event_id"
EVENT_TYPE = "event_type"
COMMENT_ID = "comment_id"
ORDER_ID = "order_id"
FOLLOWER_ID = "follower_id"
FOLLOWEE_ID = "followee_id"
TS = "ts"
SNAPSHOT_DATE = "snapshot_date"
DATA_END = "data_end"  # gold.user_labels: the (exclusive) end of the data they were built from
EVENT_DATE = "event_date"  # bronze.events partition: the event's UTC day
COMMENT_DATE = "comment_date"  # bronze.comments / silver.comment_sentiment partition
ACTIVITY_DATE = "activity_date"  # silver.user_daily partition

# lineage columns every bronze table carries
RUN_ID = "_run_id"
INGESTED_AT = "_ingested_at"
SOURCE_FILE = "_source_file"
INGEST_DATE = "_ingest_date"  # the landing date (date=...) the row arrived in
LINEAGE_COLUMNS = (RUN_ID, INGESTED_AT, SOURCE_FILE, INGEST_DATE)

# --- enums --------------------------------------------------------------------------------
SOURCES = ("users", "videos", "events", "comments", "follows", "orders")
CSV_SOURCES = ("users", "follows")
JSON_SOURCES = ("videos", "events", "comments", "orders")

EVENT_TYPES = (
    "view",
    "like",
    "comment",
    "share",
    "follow",
    "profile_visit",
    "product_click",
    "add_to_cart",
    "purchase",
)
CURRENCIES = ("USD", "EUR", "MXN", "COP", "ARS", "BRL", "GBP")
# default conversion to USD (ingest.fx_to_usd overrides); the generator prices in USD with these
FX_TO_USD = {
    "USD": 1.0,
    "EUR": round(1 / 0.92, 6),
    "GBP": round(1 / 0.79, 6),
    "MXN": round(1 / 17.0, 6),
    "COP": round(1 / 3900.0, 8),
    "ARS": round(1 / 850.0, 8),
    "BRL": round(1 / 5.0, 6),
}
DEVICES = ("ios", "android", "web")
GENDERS = ("female", "male", "nonbinary", "undisclosed")
AGE_BANDS = ("13-17", "18-24", "25-34", "35-44", "45-54", "55+")
LANGUAGES = ("en", "es", "pt")
ACQUISITION_CHANNELS = ("organic", "paid_social", "referral", "influencer", "search")
CATEGORIES = (  # NP_: the readers' catalog translates them (mktpipe.i18n)
    NP_("category", "beauty"),
    NP_("category", "fashion"),
    NP_("category", "fitness"),
    NP_("category", "food"),
    NP_("category", "gaming"),
    NP_("category", "music"),
    NP_("category", "tech"),
    NP_("category", "travel"),
    NP_("category", "comedy"),
    NP_("category", "education"),
)

# --- raw landing fields, in file order ----------------------------------------------------
# Types are the *intended* types; raw files are untrusted, so ingest parses every field as
# text first and casts with validation (see mktpipe.ingest.validate).
RAW_FIELDS: dict[str, tuple[tuple[str, str], ...]] = {
    # CSV, header line: user_id,signup_date,country,language,age_band,gender,device,
    # acquisition_channel,is_creator   (signup_date YYYY-MM-DD, is_creator true|false)
    "users": (
        (USER_ID, "string"),
        ("signup_date", "date"),
        ("country", "string"),
        ("language", "string"),
        ("age_band", "string"),
        ("gender", "string"),
        ("device", "string"),
        ("acquisition_channel", "string"),
        ("is_creator", "boolean"),
    ),
    # JSON lines; posted_at ISO-8601 UTC ("2024-03-01T12:34:56Z"); hashtags a JSON array
    "videos": (
        (VIDEO_ID, "string"),
        (CREATOR_ID, "string"),
        ("posted_at", "timestamp"),
        ("duration_s", "double"),
        ("category", "string"),
        ("hashtags", "array<string>"),
        ("sound_id", "string"),
    ),
    # JSON lines; video_id/creator_id null for events without a video; watch_time_s only on
    # views (null otherwise)
    "events": (
        (EVENT_ID, "string"),
        (USER_ID, "string"),
        (EVENT_TYPE, "string"),
        (TS, "timestamp"),
        (VIDEO_ID, "string"),
        (CREATOR_ID, "string"),
        ("session_id", "string"),
        ("watch_time_s", "double"),
        ("device", "string"),
        ("app_version", "string"),
    ),
    "comments": (
        (COMMENT_ID, "string"),
        (USER_ID, "string"),
        (VIDEO_ID, "string"),
        (TS, "timestamp"),
        ("text", "string"),
    ),
    # CSV, header line: follower_id,followee_id,followed_at
    "follows": (
        (FOLLOWER_ID, "string"),
        (FOLLOWEE_ID, "string"),
        ("followed_at", "timestamp"),
    ),
    "orders": (
        (ORDER_ID, "string"),
        (USER_ID, "string"),
        (TS, "timestamp"),
        ("amount", "double"),
        ("currency", "string"),
        ("category", "string"),
        ("source_video_id", "string"),
    ),
}

# natural keys: a row whose key is already in bronze is a duplicate
NATURAL_KEYS: dict[str, tuple[str, ...]] = {
    "users": (USER_ID,),
    "videos": (VIDEO_ID,),
    "events": (EVENT_ID,),
    "comments": (COMMENT_ID,),
    "follows": (FOLLOWER_ID, FOLLOWEE_ID),
    "orders": (ORDER_ID,),
}

# fields that must be present and non-empty
REQUIRED_FIELDS: dict[str, tuple[str, ...]] = {
    "users": (USER_ID, "signup_date"),
    "videos": (VIDEO_ID, CREATOR_ID, "posted_at"),
    "events": (EVENT_ID, USER_ID, EVENT_TYPE, TS),
    "comments": (COMMENT_ID, USER_ID, VIDEO_ID, TS),
    "follows": (FOLLOWER_ID, FOLLOWEE_ID, "followed_at"),
    "orders": (ORDER_ID, USER_ID, TS, "amount", "currency"),
}

# the event-time column of each source (for future-timestamp checks and partitioning)
EVENT_TIME: dict[str, str] = {
    "users": "signup_date",
    "videos": "posted_at",
    "events": TS,
    "comments": TS,
    "follows": "followed_at",
    "orders": TS,
}

# --- quarantine reason codes, in precedence order (first failing rule wins) ---------------
REASON_BAD_ENCODING = "BAD_ENCODING"
REASON_MALFORMED = "MALFORMED_RECORD"
REASON_MISSING_REQUIRED = "MISSING_REQUIRED"
REASON_WRONG_TYPE = "WRONG_TYPE"
REASON_UNKNOWN_ENUM = "UNKNOWN_ENUM"
REASON_OUT_OF_RANGE = "OUT_OF_RANGE"
REASON_FUTURE_TIMESTAMP = "FUTURE_TIMESTAMP"
REASON_UNKNOWN_USER = "UNKNOWN_USER"
REASON_CODES = (
    REASON_BAD_ENCODING,
    REASON_MALFORMED,
    REASON_MISSING_REQUIRED,
    REASON_WRONG_TYPE,
    REASON_UNKNOWN_ENUM,
    REASON_OUT_OF_RANGE,
    REASON_FUTURE_TIMESTAMP,
    REASON_UNKNOWN_USER,
)
# not a quarantine reason: rows whose natural key was already seen are counted, not kept
DUPLICATE = "DUPLICATE"

_SPARK_TYPES = {
    "string": StringType(),
    "date": DateType(),
    "timestamp": TimestampType(),
    "double": DoubleType(),
    "long": LongType(),
    "boolean": BooleanType(),
    "array<string>": ArrayType(StringType()),
}


def spark_type(name: str):
    """The Spark DataType for a type name used in RAW_FIELDS."""
    return _SPARK_TYPES[name]


def _bronze_schema(source: str) -> StructType:
    fields = [StructField(name, spark_type(kind), True) for name, kind in RAW_FIELDS[source]]
    if source == "orders":
        fields.append(StructField("amount_usd", DoubleType(), True))
    if source == "events":
        fields.append(StructField(EVENT_DATE, DateType(), True))
    if source == "comments":
        fields.append(StructField(COMMENT_DATE, DateType(), True))
    fields += [
        StructField(RUN_ID, StringType(), True),
        StructField(INGESTED_AT, TimestampType(), True),
        StructField(SOURCE_FILE, StringType(), True),
        StructField(INGEST_DATE, DateType(), True),
    ]
    return StructType(fields)


BRONZE_SCHEMAS: dict[str, StructType] = {source: _bronze_schema(source) for source in SOURCES}

QUARANTINE_KEYS = (SOURCE_FILE, "record_sha256", "occurrence")
QUARANTINE_SCHEMA = StructType(
    [
        StructField("source", StringType(), False),
        StructField("raw_record", StringType(), True),
        StructField(SOURCE_FILE, StringType(), True),
        StructField("reason_code", StringType(), False),
        StructField("reason_detail", StringType(), True),
        # identity of the record: a re-run quarantines the same (file, hash, occurrence) once
        StructField("record_sha256", StringType(), False),
        StructField("occurrence", LongType(), False),
        StructField(RUN_ID, StringType(), False),
        StructField(INGESTED_AT, TimestampType(), False),
        StructField(INGEST_DATE, DateType(), False),
    ]
)


def require_columns(df, required, what: str) -> None:
    """Raise ValueError naming `what`, the missing columns and the columns that are there."""
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise ValueError(
            f"{what} is missing column(s) {missing}; it has {sorted(df.columns)}"
        )
