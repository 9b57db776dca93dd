"""Feature-stage cost at two data sizes, and its ratio to DuckDB over the same bronze files.

For each size: generate users x days, ingest (not timed here: see bench/ingest.py), then time

* ``spark``: the features stage as a daily pipeline would run it for a backfill: daily
  aggregates for every date (``run_daily_range``) + the features for one snapshot (the day
  after the last date) written to gold.user_features (the sentiment and graph stages are not
  run: they have their own benches, and their features come out null here);
* ``duckdb``: the same feature set (every gold.user_features column; the sentiment and graph
  ones are null on both sides here) in one DuckDB SQL statement straight over the bronze
  Parquet files (listed with ``deltalake.DeltaTable(path).file_uris()``) on this machine, in
  one pass over the events without a daily table: what a single-node user would write
  instead. DuckDB writes no Delta table and builds no daily table for later runs, so the
  comparison still favours DuckDB somewhat. ``features/duckdb`` is the ratio for one
  snapshot's features alone, what a scheduled day costs once its daily rows exist.

The DuckDB result is also compared with gold.user_features column by column: an
independent implementation of the definitions in ``mktpipe.features.columns`` (it must match).

    .venv/bin/python bench/features.py                      # 1000 and 4000 users x 60 days
    .venv/bin/python bench/features.py --users 500,2000 --days 30 --repeats 3
    MKTPIPE__SPARK__ACCELERATOR=comet .venv/bin/python bench/features.py   # on Comet

Timings are the best of ``--repeats`` runs (the first run of a process also pays the JVM's
warm-up). The machine's load average is printed with them: on a shared machine, compare ratios
measured in one run, not absolute seconds across runs.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import duckdb
import pandas as pd
from deltalake import DeltaTable

from mktpipe.catalog import BRONZE, USER_FEATURES
from mktpipe.config import load_config
from mktpipe.features import columns as C
from mktpipe.features import customer, run_daily_range, run_features
from mktpipe.generate import generate
from mktpipe.ingest import landing
from mktpipe.ingest.stage import run_ingest_dates
from mktpipe.session import comet_active, get_spark
from mktpipe.storage.delta_rs import DeltaRsStore

WINDOWS = (7, 30, 90)
ACTIVE = 90
_EVENT_METRICS = {m: t for m, t in C.EVENT_COUNTS.items() if m in C.WINDOW_METRICS}


def peer_sql(files: dict[str, list[str]], snapshot: dt.date,
             windows: tuple[int, ...] = WINDOWS, active_days: int = ACTIVE) -> str:
    """gold.user_features' columns as DuckDB SQL straight over the bronze files (``files``:
    table name -> Parquet URIs for events, orders, users, videos, follows), written from the
    definitions in ``mktpipe.features.columns``, not from mktpipe's code: one pass over the
    events, no daily table. The graph and sentiment columns are null."""
    windows = tuple(sorted(set(windows)))
    null_features = {**C.GRAPH_TYPES, **customer.sentiment_types(max(windows))}
    s = f"DATE '{snapshot}'"
    first = f"({s} - INTERVAL {max(max(windows), active_days)} DAY)"

    def since(w: int) -> str:
        return f"d >= {s} - INTERVAL {w} DAY"

    def ratio(num: str, den: str) -> str:
        return f"CASE WHEN ({den}) = 0 THEN NULL ELSE ({num}) / ({den}) END"

    metrics, rates, trends = [], [], []
    for w in windows:
        metrics += [f"count(*) FILTER (WHERE event_type = '{t}' AND {since(w)}) AS {m}_{w}d"
                    for m, t in _EVENT_METRICS.items()]
        metrics += [
            f"coalesce(sum(watch_time_s) FILTER (WHERE event_type = 'view' AND {since(w)}), 0)"
            f" AS watch_seconds_{w}d",
            f"count(DISTINCT (d, session_id)) FILTER (WHERE {since(w)} AND session_id IS NOT NULL)"
            f" AS sessions_{w}d",
            f"coalesce(sum(completion) FILTER (WHERE {since(w)}), 0) AS csum_{w}",
            f"count(completion) FILTER (WHERE {since(w)}) AS cviews_{w}",
        ]
        rates += [
            f"{ratio(f'likes_{w}d + comments_{w}d + shares_{w}d', f'views_{w}d')}"
            f" AS engagement_rate_{w}d",
            f"{ratio(f'csum_{w}', f'cviews_{w}')} AS completion_rate_{w}d",
        ]
    for a, b in C.window_pairs(list(windows)):
        trends += [f"{ratio(f'{m}_{a}d / {a}', f'{m}_{b}d / {b}')} AS {C.trend_col(m, a, b)}"
                   for m in C.TREND_METRICS]
    active = [f"count(DISTINCT d) FILTER (WHERE {since(w)}) AS active_days_{w}d"
              for w in windows]
    in_a = since(active_days)
    dayparts = [f"count(*) FILTER (WHERE {in_a} AND hour(ts) >= {lo} AND hour(ts) < {hi})"
                f" AS part_{name}" for name, lo, hi in C.DAYPARTS]
    weekdays = [f"count(*) FILTER (WHERE {in_a} AND dayofweek(d) = {k}) AS wd_{k}"
                for k in range(7)]
    wd_entropy = " + ".join(
        f"CASE WHEN wd_{k} > 0 THEN -(wd_{k} / n_events) * ln(wd_{k} / n_events) ELSE 0 END"
        for k in range(7))
    # the windowed counts and sums, in table order (active days come from ``act``)
    counts = [C.window_col(m, w) for w in windows for m in C.WINDOW_METRICS
              if m != C.ACTIVE_DAYS]
    nulls = [f"CAST(NULL AS {t.upper().replace('LONG', 'BIGINT')}) AS {c}"
             for c, t in null_features.items()]
    return f"""
    WITH vid AS (
        SELECT video_id, any_value(category) AS category, any_value(duration_s) AS duration_s
        FROM read_parquet({files['videos']!r}) GROUP BY video_id),
    ev AS (
        SELECT e.user_id, e.event_type, CAST(e.event_date AS DATE) AS d, e.ts, e.watch_time_s,
               e.session_id, e.creator_id, v.category,
               CASE WHEN e.event_type = 'view' AND e.watch_time_s IS NOT NULL
                         AND v.duration_s > 0
                    THEN least(e.watch_time_s / v.duration_s, 1.0) END AS completion
        FROM read_parquet({files['events']!r}, hive_partitioning = true) e
             LEFT JOIN vid v ON e.video_id = v.video_id
        WHERE e.event_date >= {first} AND e.event_date < {s}),
    od AS (
        SELECT user_id, CAST(ts AS DATE) AS d, amount_usd
        FROM read_parquet({files['orders']!r}) WHERE ts < CAST({s} AS TIMESTAMPTZ)),
    days AS (SELECT user_id, d FROM ev UNION SELECT user_id, d FROM od WHERE d >= {first}),
    act AS (SELECT user_id, {s} - max(d) AS days_since_last_active, {', '.join(active)}
            FROM days GROUP BY user_id HAVING max(d) >= {s} - INTERVAL {active_days} DAY),
    eng AS (SELECT user_id, {', '.join(metrics)},
                   count(*) FILTER (WHERE {in_a}) AS n_events,
                   count(*) FILTER (WHERE {in_a} AND isodow(d) IN (6, 7)) AS n_weekend,
                   {', '.join(dayparts)}, {', '.join(weekdays)}
            FROM ev GROUP BY user_id),
    cat AS (SELECT user_id, category, count(*) AS n FROM ev
            WHERE event_type = 'view' AND category IS NOT NULL AND {in_a}
            GROUP BY user_id, category),
    cats AS (SELECT user_id,
                    greatest(ln(sum(n)) - sum(n * ln(n)) / sum(n), 0) AS category_entropy,
                    first(category ORDER BY n DESC, category) AS top_category
             FROM cat GROUP BY user_id),
    cre AS (SELECT user_id, creator_id, count(*) AS n FROM ev
            WHERE event_type = 'view' AND creator_id IS NOT NULL AND {in_a}
            GROUP BY user_id, creator_id),
    cres AS (SELECT user_id, max(n) / sum(n) AS creator_loyalty FROM cre GROUP BY user_id),
    rfm AS (SELECT user_id, {s} - max(d) AS recency_days, count(*) AS order_count,
                   coalesce(sum(amount_usd), 0) AS monetary_total,
                   coalesce(sum(amount_usd), 0) / count(*) AS monetary_mean,
                   {s} - min(d) AS first_order_days FROM od GROUP BY user_id),
    usr AS (SELECT user_id, {s} - any_value(signup_date) AS tenure_days,
                   {', '.join(f'any_value({c}) AS {c}' for c in C.DEMOGRAPHICS)}
            FROM read_parquet({files['users']!r}) WHERE signup_date < {s} GROUP BY user_id),
    fol AS (SELECT follower_id, followee_id FROM read_parquet({files['follows']!r})
            WHERE followed_at < CAST({s} AS TIMESTAMPTZ) AND follower_id <> followee_id),
    ends AS (SELECT user_id, other, max(o) AS o, max(i) AS i FROM (
                 SELECT follower_id AS user_id, followee_id AS other, 1 AS o, 0 AS i FROM fol
                 UNION ALL
                 SELECT followee_id, follower_id, 0, 1 FROM fol) GROUP BY user_id, other),
    soc AS (SELECT user_id, sum(i) AS followers, sum(o) AS following,
                   {ratio('sum(i * o)', 'sum(i)')} AS follow_back_ratio
            FROM ends GROUP BY user_id),
    base AS (
        SELECT act.user_id, act.days_since_last_active,
               {', '.join(f'act.active_days_{w}d' for w in windows)},
               {', '.join(f'coalesce(eng.{c}, 0) AS {c}' for c in counts)},
               {', '.join(f'coalesce(eng.csum_{w}, 0) AS csum_{w}, '
                          f'coalesce(eng.cviews_{w}, 0) AS cviews_{w}' for w in windows)},
               coalesce(eng.n_events, 0) AS n_events, eng.n_weekend,
               {', '.join(f'eng.part_{name}' for name, _, _ in C.DAYPARTS)},
               {', '.join(f'eng.wd_{k}' for k in range(7))}
        FROM act LEFT JOIN eng USING (user_id))
    SELECT base.user_id,
           rfm.recency_days, coalesce(rfm.order_count, 0) AS order_count,
           coalesce(rfm.monetary_total, 0) AS monetary_total, rfm.monetary_mean,
           rfm.first_order_days, usr.tenure_days,
           {', '.join(counts)}, {', '.join(f'active_days_{w}d' for w in windows)},
           {', '.join(trends)}, {', '.join(rates)},
           days_since_last_active,
           {ratio('n_weekend', 'n_events')} AS weekend_share,
           {', '.join(f"{ratio(f'part_{name}', 'n_events')} AS {C.daypart_share(name)}"
                      for name, _, _ in C.DAYPARTS)},
           CASE WHEN n_events > 0 THEN least(greatest(1 - ({wd_entropy}) / ln(7), 0), 1)
                END AS weekday_concentration,
           cats.category_entropy, cats.top_category, cres.creator_loyalty,
           coalesce(soc.followers, 0) AS followers, coalesce(soc.following, 0) AS following,
           soc.follow_back_ratio, {', '.join(nulls)},
           {', '.join(f'usr.{c}' for c in C.DEMOGRAPHICS)}
    FROM base LEFT JOIN rfm USING (user_id) LEFT JOIN usr USING (user_id)
         LEFT JOIN cats USING (user_id) LEFT JOIN cres USING (user_id)
         LEFT JOIN soc USING (user_id)
    """


def bronze_files(store: DeltaRsStore) -> dict[str, list[str]]:
    """The Parquet files of the bronze tables the features read, from their Delta logs."""
    return {t: DeltaTable(store.path(BRONZE[t])).file_uris()
            for t in ("events", "orders", "users", "videos", "follows")}


def run_peer(store: DeltaRsStore, snapshot: dt.date, windows: tuple[int, ...] = WINDOWS,
             active_days: int = ACTIVE) -> tuple[float, pd.DataFrame]:
    """(seconds, the feature table) of the DuckDB peer for ``snapshot``."""
    files = bronze_files(store)
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.execute(f"SET threads = {os.cpu_count() or 2}")
    started = time.perf_counter()
    con.execute(f"CREATE TABLE core AS {peer_sql(files, snapshot, windows, active_days)}")
    elapsed = time.perf_counter() - started
    return elapsed, con.execute("SELECT * FROM core").df()


def compare(spark_df: pd.DataFrame, peer: pd.DataFrame) -> str:
    """'ok' when every column matches (numbers within 1e-6 relative, text and flags exactly,
    nulls in the same places), else each differing column with its count of differing users."""
    if set(spark_df.user_id) != set(peer.user_id):
        return f"populations differ ({len(spark_df)} vs {len(peer)} users)"
    left, right = spark_df.set_index("user_id"), peer.set_index("user_id").loc[spark_df.user_id]
    bad = {}
    for col in right.columns:
        a, b = left[col], right[col]
        if pd.api.types.is_numeric_dtype(b) and not pd.api.types.is_bool_dtype(b):
            a, b = a.astype(float), b.astype(float)
            same = ((a - b).abs() <= 1e-6 * (1 + b.abs())) | (a.isna() & b.isna())
        else:
            same = (a.isna() & b.isna()) | (a.astype(str) == b.astype(str))
        if not same.all():
            bad[col] = int((~same).sum())
    return "ok" if not bad else f"differ (users): {bad}"


def measure(spark, config, root: Path, users: int, days: int, repeats: int) -> dict:
    start = dt.date(2026, 1, 1)
    landing_dir = root / f"landing-{users}"
    generate(out=landing_dir, users=users, days=days, seed=7, start_date=start, dirty_rate=0.0)
    cfg = config.model_copy(deep=True)
    cfg.paths.landing = str(landing_dir)
    store = DeltaRsStore(spark, str(root / f"wh-{users}"))
    dates = landing.landing_dates(landing_dir)
    run_ingest_dates(spark, cfg, dates, store=store,
                     now=dt.datetime(2030, 1, 1, tzinfo=dt.timezone.utc))
    snapshot = dates[-1] + dt.timedelta(days=1)

    daily_s = features_s = peer_s = float("inf")
    for _ in range(repeats):  # re-runs replace the same partitions; the best time is kept
        started = time.perf_counter()
        daily = run_daily_range(spark, cfg, dates, store=store)
        daily_s = min(daily_s, time.perf_counter() - started)
        started = time.perf_counter()
        feats = run_features(spark, cfg, snapshot, store=store)
        features_s = min(features_s, time.perf_counter() - started)
        elapsed, peer = run_peer(store, snapshot)
        peer_s = min(peer_s, elapsed)
    got = store.read(USER_FEATURES).select(*peer.columns).toPandas()
    return {"users": users, "days": days, "events": daily.rows_in, "user_days": daily.rows_out,
            "feature_rows": feats.rows_out, "daily_s": daily_s, "features_s": features_s,
            "spark_s": daily_s + features_s, "duckdb_s": peer_s,
            "match": compare(got, peer)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", default="1000,4000", help="sizes, comma-separated")
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--repeats", type=int, default=2, help="runs per size; best is kept")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    config = load_config("local")
    spark = get_spark(config)
    engine = "comet" if comet_active(spark) else "spark"  # spark.accelerator took effect
    root = Path(tempfile.mkdtemp(prefix="mktpipe-bench-features-"))
    try:
        rows = [measure(spark, config, root, int(n), args.days, args.repeats)
                for n in args.users.split(",")]
    finally:
        spark.stop()
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    print(f"\nfeatures stage, {args.days} days, Spark master {config.spark.master}, "
          f"query engine {engine}, {os.cpu_count()} cores, best of {args.repeats}, load average "
          f"{os.getloadavg()[0]:.1f}")
    head = (f"{'users':>6} {'events':>8} {'user-days':>9} {'daily s':>8} {'features s':>10} "
            f"{'spark s':>8} {'us/event':>8} {'duckdb s':>8} {'spark/duckdb':>12} "
            f"{'features/duckdb':>15}  match")
    print(head)
    print("-" * len(head))
    for r in rows:
        per_event = 1e6 * r["spark_s"] / max(r["events"], 1)
        print(f"{r['users']:>6} {r['events']:>8} {r['user_days']:>9} {r['daily_s']:>8.1f} "
              f"{r['features_s']:>10.1f} {r['spark_s']:>8.1f} {per_event:>8.1f} "
              f"{r['duckdb_s']:>8.2f} {r['spark_s'] / r['duckdb_s']:>12.1f} "
              f"{r['features_s'] / r['duckdb_s']:>15.1f}  {r['match']}")
    if len(rows) >= 2:
        a, b = rows[0], rows[-1]
        growth = (b["spark_s"] / b["events"]) / (a["spark_s"] / a["events"])
        print(f"\ncost per event, {b['users']} vs {a['users']} users: x{growth:.2f} "
              f"(1.0 = linear; < 1 while fixed per-job overhead dominates); "
              f"data x{b['events'] / a['events']:.1f}, time x{b['spark_s'] / a['spark_s']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
