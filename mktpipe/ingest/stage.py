"""The ingest stage: one landing date -> ``bronze.<source>`` + ``quarantine.<source>``.

Per source: read the date's files line by line, parse and classify every line (valid or a
reason code), check user references against ``bronze.users``, drop duplicates within the
batch, quarantine the bad rows (partition overwrite for the date: a re-run replaces, never
adds), and insert the valid rows whose natural key is not yet in bronze.

Nothing is lost: for every source ``read == written + quarantined + duplicates`` is checked,
from independent counts (lines read, rows in committed files, duplicates found), and
recorded in the run manifest; a mismatch fails the run.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from typing import Any

from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from mktpipe import schemas as S
from mktpipe.catalog import BRONZE, BRONZE_USERS, QUARANTINE
from mktpipe.config import Config
from mktpipe.errors import CountMismatchError
from mktpipe.ingest import landing
from mktpipe.ingest.validate import DETAIL, REASON, Rules, classify, parse_raw, typed_columns
from mktpipe.quality.manifest import StageResult
from mktpipe.session import accelerator_off
from mktpipe.stage import StageContext, span, stage
from mktpipe.storage import TableStore

log = logging.getLogger(__name__)

# users first: the other sources' user references are checked against bronze.users
INGEST_ORDER = ("users", "videos", "follows", "events", "comments", "orders")
USER_REFERENCES = {
    "events": (S.USER_ID,),
    "comments": (S.USER_ID,),
    "orders": (S.USER_ID,),
    "follows": (S.FOLLOWER_ID, S.FOLLOWEE_ID),
}
_RANK = "_rank"


def rules_from_config(config: Config, now: dt.datetime) -> Rules:
    ing = config.ingest
    return Rules(
        now=now,
        future_tolerance_hours=ing.future_tolerance_hours,
        max_order_usd=ing.max_order_usd,
        max_watch_time_s=ing.max_watch_time_s,
        fx_to_usd=tuple(sorted(ing.fx_to_usd.items())),
    )


def with_derived_columns(df: DataFrame, source: str, fx_to_usd: dict[str, float]) -> DataFrame:
    """Columns bronze adds to the raw fields (USD amount, event dates)."""
    if source == "orders":
        pairs = [x for k, v in sorted(fx_to_usd.items()) for x in (F.lit(k), F.lit(v))]
        rates = F.create_map(*pairs)
        return df.withColumn("amount_usd", F.round(F.col("amount") * rates[F.col("currency")], 4))
    if source == "events":
        return df.withColumn("event_date", F.to_date(S.TS))
    if source == "comments":
        return df.withColumn("comment_date", F.to_date(S.TS))
    return df


def flag_unknown_users(df: DataFrame, source: str, known_users: DataFrame | None) -> DataFrame:
    """Valid rows whose user reference is not a user landed on or before them: UNKNOWN_USER.

    ``known_users`` has ``user_id`` and ``_ingest_date`` (bronze.users).
    """
    refs = USER_REFERENCES.get(source, ())
    for i, ref in enumerate(refs):
        seen = f"_user_seen_{i}"
        if known_users is None:
            df = df.withColumn(seen, F.lit(None).cast("date"))
        else:
            known = known_users.select(F.col(S.USER_ID).alias(ref),
                                       F.col(S.INGEST_DATE).alias(seen))
            df = df.join(known, on=ref, how="left")
        unknown = F.col(REASON).isNull() & (
            F.col(seen).isNull() | (F.col(seen) > F.col(S.INGEST_DATE))
        )
        df = (
            df.withColumn(DETAIL, F.when(unknown, F.concat(F.lit(f"{ref}="), F.col(ref),
                                                           F.lit(" is not a known user")))
                          .otherwise(F.col(DETAIL)))
            .withColumn(REASON, F.when(unknown, F.lit(S.REASON_UNKNOWN_USER))
                        .otherwise(F.col(REASON)))
            .drop(seen)
        )
    return df


def rank_within_key(valid: DataFrame, source: str) -> DataFrame:
    """``_rank`` 1 for the first row of each natural key (by file, then text), 2.. for repeats."""
    keys = list(BRONZE[source].keys)
    order = Window.partitionBy(*keys).orderBy(S.SOURCE_FILE, landing.RAW)
    return valid.withColumn(_RANK, F.row_number().over(order))


def _prepare(spark, store, config, source, files, run_id, ingested_at, rules):
    lines = landing.read_lines(spark, source, files)
    parsed = classify(parse_raw(lines, source), source, rules)
    typed = parsed.select(
        landing.RAW, S.SOURCE_FILE, S.INGEST_DATE, REASON, DETAIL, *typed_columns(source)
    )
    known = None
    if source in USER_REFERENCES and store.exists(BRONZE_USERS):
        known = store.read(BRONZE_USERS).select(S.USER_ID, S.INGEST_DATE)
    return (
        typed.transform(flag_unknown_users, source, known)
        .transform(with_derived_columns, source, config.ingest.fx_to_usd)
        .withColumn(S.RUN_ID, F.lit(run_id))
        .withColumn(S.INGESTED_AT, F.lit(ingested_at))
    )


def _existing_filter(source: str, bounds: tuple[Any, Any] | None) -> str | None:
    """Restrict the duplicate lookup to the bronze partitions the batch can collide with."""
    part = (BRONZE[source].partition_by or (None,))[0]
    if part is None or bounds is None or bounds[0] is None:
        return None
    lo, hi = bounds
    return f"`{part}` BETWEEN DATE'{lo.isoformat()}' AND DATE'{hi.isoformat()}'"


def ingest_source(
    spark: SparkSession,
    store: TableStore,
    config: Config,
    source: str,
    dates: list[dt.date],
    run_id: str,
    now: dt.datetime,
) -> dict[str, Any]:
    """Ingest one source for the given landing dates; return its counts (module docstring).

    The landing files are parsed and validated once, in one Spark job that writes every row
    (valid or not, typed, with its reason) to a scratch Parquet folder; counts, quarantine,
    de-duplication and the bronze insert then read that columnar copy. Nothing is cached, so
    memory does not grow with the batch (a 10 M-row backfill runs in the default 2 GiB)."""
    started = time.monotonic()
    files = [f for d in dates for f in landing.landing_files(config.paths.landing, source, d)]
    if not files:
        log.info("%s %s: no landing files, nothing to ingest", source, span(dates))
        return {"status": "no_files", "files": 0, "read": 0, "written": 0,
                "quarantined": 0, "quarantine_reasons": {}, "duplicates_in_batch": 0,
                "duplicates_existing": 0}
    if landing.file_format(source) == "csv":
        landing.check_csv_headers(source, files)
    rules = rules_from_config(config, now)
    rows = _prepare(spark, store, config, source, files, run_id, now, rules)
    # Comet's Parquet reader refuses the scratch's raw text of non-UTF-8 lines: Spark's here
    with accelerator_off(spark), store.scratch(f"ingest-{source}") as scratch:
        rows.write.mode("error").parquet(f"{scratch}/rows")  # the one pass over the files
        parsed_s = time.monotonic() - started
        result = _write_source(store, source, dates, spark.read.parquet(f"{scratch}/rows"),
                               scratch)
    result["phase_s"] = {"parse": round(parsed_s, 2), **result["phase_s"]}
    result.update(status="ok", files=len(files), elapsed_s=round(time.monotonic() - started, 2))
    _check_balance(source, span(dates), result)
    return result


def _tally(source: str, rows: DataFrame) -> tuple[dict, dict, tuple | None]:
    """Counts by reason and by date, and the valid rows' bronze partition range (one job)."""
    part = (BRONZE[source].partition_by or (None,))[0]
    valid = F.col(REASON).isNull()
    aggs = [F.count(F.lit(1)).alias("n")]
    if part is not None:
        aggs += [F.min(F.when(valid, F.col(part))).alias("lo"),
                 F.max(F.when(valid, F.col(part))).alias("hi")]
    reasons: dict[str | None, int] = {}
    by_date: dict[str, dict[str, int]] = {}
    lo = hi = None
    for r in rows.groupBy(S.INGEST_DATE, REASON).agg(*aggs).collect():  # small aggregate
        reasons[r[REASON]] = reasons.get(r[REASON], 0) + r["n"]
        day = by_date.setdefault(str(r[S.INGEST_DATE]), {"read": 0, "quarantined": 0})
        day["read"] += r["n"]
        day["quarantined"] += r["n"] if r[REASON] is not None else 0
        if part is not None and r["lo"] is not None:
            lo = r["lo"] if lo is None else min(lo, r["lo"])
            hi = r["hi"] if hi is None else max(hi, r["hi"])
    return reasons, by_date, (lo, hi) if lo is not None else None


# repeated keys up to this many are broadcast to the joins that split them off (a few tens
# of MB of ids); more than that (a whole day landed twice) and the joins shuffle instead
BROADCAST_REPEATED_KEYS = 1_000_000


def first_of_each_key(valid: DataFrame, source: str,
                      scratch: str | None = None) -> tuple[DataFrame, int]:
    """The first row of each natural key (by file, then text), and how many repeats there were.

    Only keys that occur more than once are ranked (a window over their rows); the others,
    nearly all of them, pass through an anti-join with that small set of keys, so the batch
    is not sorted by key as a whole. With ``scratch`` (a folder) the set of repeated keys is
    written there once, so the joins read it instead of aggregating the batch again, and it
    is broadcast when small enough."""
    keys = list(BRONZE[source].keys)
    repeated = valid.groupBy(*keys).count().filter(F.col("count") > 1)
    if scratch is not None:
        path = f"{scratch}/repeated-keys"
        repeated.write.mode("error").parquet(path)
        repeated = valid.sparkSession.read.parquet(path)
    stats = repeated.agg(F.sum(F.col("count") - 1).alias("extra"),
                         F.count(F.lit(1)).alias("n")).first()
    extra = int(stats["extra"] or 0)
    if extra == 0:
        return valid, 0
    repeated = repeated.select(*keys)
    if scratch is not None and stats["n"] <= BROADCAST_REPEATED_KEYS:
        repeated = F.broadcast(repeated)
    single = valid.join(repeated, on=keys, how="left_anti")
    ranked = rank_within_key(valid.join(repeated, on=keys, how="left_semi"), source)
    first = ranked.filter(F.col(_RANK) == 1).drop(_RANK)
    return single.unionByName(first), extra


def _write_source(store, source, dates, rows, scratch: str | None = None) -> dict[str, Any]:
    phases: dict[str, float] = {}
    clock = time.monotonic()

    def lap(name: str) -> None:
        nonlocal clock
        now = time.monotonic()
        phases[name] = round(now - clock, 2)
        clock = now

    reasons, by_date, bounds = _tally(source, rows)
    lap("tally")
    read = sum(reasons.values())
    valid_count = reasons.pop(None, 0)
    run_date = span(dates)

    q_table = QUARANTINE[source]
    q_new, q_existing = (0, 0)
    if read - valid_count or not store.exists(q_table):
        q_new, q_existing = _quarantine(store, q_table, source, dates, rows,
                                        read - valid_count)
    if q_new + q_existing != read - valid_count:
        raise CountMismatchError(
            f"ingest {source} {run_date}: {read - valid_count} rows failed validation but "
            f"{q_new} were quarantined now and {q_existing} before — please report this bug"
        )
    quarantined = q_new + q_existing
    lap("quarantine")

    bronze_cols = S.BRONZE_SCHEMAS[source].fieldNames()
    first, in_batch = first_of_each_key(rows.filter(F.col(REASON).isNull()), source, scratch)
    first = first.select(*bronze_cols)
    lap("dedupe")
    table = BRONZE[source]
    keys = list(table.keys)
    existing = 0
    if store.exists(table):
        condition = _existing_filter(source, bounds)
        current = store.read(table)
        if condition:
            current = current.filter(condition)
        existing = first.join(current.select(*keys), on=keys, how="left_semi").count()
        store.merge_insert(first, table, keys, existing_filter=condition)
    else:  # the first write creates the table with its partitioning; keys are unique
        store.write(first, table, partition_by=table.partitions)
    lap("bronze")
    return {
        "read": read,
        "written": store.last_write.rows,
        "quarantined": quarantined,
        "quarantine_reasons": dict(sorted(reasons.items())),
        "duplicates_in_batch": in_batch,
        "duplicates_existing": existing,
        "bronze_version": store.version(table),
        "quarantine_version": store.version(q_table),
        "quarantine_new": q_new,
        "by_date": dict(sorted(by_date.items())),
        "phase_s": phases,
    }


def _quarantine(store, table, source, dates, rows, n_bad: int) -> tuple[int, int]:
    """Insert the rows that failed validation; return (newly quarantined, already there).

    A record's identity is (file, SHA-256 of its raw bytes, occurrence among identical lines
    of that file), so re-running a date quarantines nothing twice. The table is not
    partitioned (a few rows per date would make one tiny file per date; compaction can merge
    across dates) and a batch's rows go to as few files as ``target_file_rows`` allows.
    """
    digest = F.sha2(F.col(landing.RAW).cast("binary"), 256)
    same_line = Window.partitionBy(S.SOURCE_FILE, "record_sha256").orderBy(REASON)
    bad = (
        rows.filter(F.col(REASON).isNotNull())
        .withColumn("record_sha256", digest)
        .withColumn("occurrence", F.row_number().over(same_line).cast("long"))
        .select(
            F.lit(source).alias("source"),
            F.make_valid_utf8(F.col(landing.RAW)).alias("raw_record"),  # Parquet needs UTF-8
            S.SOURCE_FILE, REASON, DETAIL, "record_sha256", "occurrence",
            S.RUN_ID, S.INGESTED_AT, S.INGEST_DATE,
        )
        .coalesce(max(1, -(-n_bad // store.target_file_rows)))
    )
    keys = list(table.keys)
    in_dates = ", ".join(f"DATE'{d}'" for d in dates)
    same_date = f"`{S.INGEST_DATE}` IN ({in_dates})"
    existing = 0
    if store.exists(table):
        current = store.read(table).filter(same_date).select(*keys)
        existing = bad.join(current, on=keys, how="left_semi").count()
        store.merge_insert(bad, table, keys, existing_filter=same_date)
    else:
        store.write(bad, table)
    return store.last_write.rows, existing


def _check_balance(source: str, run_date: str, counts: dict[str, Any]) -> None:
    accounted = (counts["written"] + counts["quarantined"] + counts["duplicates_in_batch"]
                 + counts["duplicates_existing"])
    counts["balanced"] = accounted == counts["read"]
    if not counts["balanced"]:
        raise CountMismatchError(
            f"ingest {source} {run_date}: read {counts['read']} rows but accounted for "
            f"{accounted} (written {counts['written']}, quarantined {counts['quarantined']}, "
            f"duplicates {counts['duplicates_in_batch']}+{counts['duplicates_existing']}); "
            f"nothing was committed after the mismatch was found — please report this bug"
        )


@stage("ingest")
def run_ingest(ctx: StageContext, run_date: dt.date) -> StageResult:
    """Ingest every source for ``run_date``; raise InputError when its folder is missing."""
    landing.require_landing(ctx.config.paths.landing, run_date)
    return run_ingest_dates(ctx, [run_date])


@stage("ingest")
def run_ingest_dates(ctx: StageContext, dates: list[dt.date]) -> StageResult:
    """Ingest several landing dates in one batch per source (a backfill).

    The result is the same as ingesting the dates one by one, oldest first: the earliest
    copy of a duplicated record wins and a user reference must point to a user landed on or
    before the row's date. Far fewer Spark jobs, so a 60-day backfill takes a minute.
    """
    dates = sorted(dates)
    now = ctx.now()  # every row of the run carries this _ingested_at
    result = ctx.begin(span(dates))
    result.started_at = now.isoformat(timespec="seconds")
    result.details["dates"] = [d.isoformat() for d in dates]
    for source in INGEST_ORDER:
        counts = ingest_source(ctx.spark, ctx.store, ctx.config, source, dates, ctx.run_id, now)
        result.details[source] = counts
        result.rows_in += counts["read"]
        result.rows_out += counts["written"]
        result.rows_quarantined += counts["quarantined"]
        result.rows_deduplicated += counts["duplicates_in_batch"] + counts["duplicates_existing"]
        if counts["status"] == "ok":
            result.tables_written[BRONZE[source]] = counts["bronze_version"]
            result.tables_written[QUARANTINE[source]] = counts["quarantine_version"]
        log.info(
            "ingest %s %s: read %d, written %d, quarantined %d %s, duplicates %d",
            span(dates), source, counts["read"], counts["written"], counts["quarantined"],
            counts["quarantine_reasons"], counts["duplicates_in_batch"]
            + counts["duplicates_existing"],
        )
    return ctx.finish(result, "%d rows read, %d written, %d quarantined, %d duplicates",
                      result.rows_in, result.rows_out, result.rows_quarantined,
                      result.rows_deduplicated)
