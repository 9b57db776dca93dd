"""The ``mktpipe`` command: argument parsing only; every command calls a stage function.

Exit codes: 0 ok, 1 internal error, 2 bad configuration or usage, 3 bad input (e.g. a missing
landing folder), 4 a failed data-quality check.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import sys

from mktpipe import __version__
from mktpipe.config import Config, ConfigError, load_config
from mktpipe.errors import (
    EXIT_ALERT,
    EXIT_CONFIG,
    EXIT_INTERNAL,
    EXIT_OK,
    EXIT_RESOURCES,
    MktpipeError,
    is_out_of_memory,
    out_of_memory_advice,
)

log = logging.getLogger("mktpipe")

EPILOG = """\
configuration: conf/base.yaml + conf/<env>.yaml, then MKTPIPE__SECTION__KEY environment
variables, then --conf section.key=value (repeatable). Exit codes: 0 ok, 1 internal error,
2 bad configuration/usage, 3 bad input, 4 failed quality check.
"""


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date (YYYY-MM-DD)") from None


def _snapshot(text: str) -> dt.date | str:
    return "latest" if text == "latest" else _date(text)


def resolve_snapshot(value: dt.date | str, config: Config) -> dt.date:
    """``latest`` = the day after the last landing date (a snapshot uses data before it)."""
    if value != "latest":
        return value
    from mktpipe.ingest import landing

    dates = landing.landing_dates(config.paths.landing)
    if not dates:
        landing.require_landing(config.paths.landing, dt.date.today())
    return dates[-1] + dt.timedelta(days=1)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--env", default=None,
                        help="config overlay: local (default), test, cluster, ...")
    parser.add_argument("--conf", action="append", default=[], metavar="SECTION.KEY=VALUE",
                        help="override one config value (repeatable)")
    parser.add_argument("--log-level", default=None,
                        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
                        help="log verbosity (default from config app.log_level)")


def _alert_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--fail-on-alert", nargs="?", const="warning", default=None,
        choices=["never", "warning", "critical"],
        help=f"exit {EXIT_ALERT} after a successful run when the trends stage raised an alert "
             "of this severity or worse (bare flag: warning; default: alerts.exit_on, "
             "'never' unless configured); the alerts are in gold.alerts and the report")


def alert_exit_code(manifest, config: Config, flag: str | None) -> int:
    """EXIT_ALERT when the run's trends result holds an alert of the chosen severity or worse
    (printed to stderr), else EXIT_OK."""
    from mktpipe.trends.alerts import SEVERITIES

    severity = flag or config.alerts.exit_on
    if severity not in SEVERITIES:
        return EXIT_OK
    floor = SEVERITIES.index(severity)
    fired = [a for r in manifest.stages if r.stage == "trends" and r.status == "ok"
             for a in r.details.get("alerts", [])
             if SEVERITIES.index(a["severity"]) >= floor]
    for a in fired:
        print(f"mktpipe: alert ({a['severity']}) {a['rule']}: {a['message']}", file=sys.stderr)
    return EXIT_ALERT if fired else EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mktpipe",
        description="Scheduled PySpark analytics for TikTok engagement data.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"mktpipe {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    gen = sub.add_parser(
        "generate", help="write a synthetic TikTok landing zone (demo and test data)",
        description="Write users, videos, events, comments, follows and orders per day under "
                    "OUT/<source>/date=YYYY-MM-DD/, with the planted truth in OUT/_truth.",
    )
    gen.add_argument("--out", default=None,
                     help="landing folder or URI (s3://...) to write (default: paths.landing)")
    gen.add_argument("--users", type=int, default=None, help="number of users (default: config)")
    gen.add_argument("--days", type=int, default=None, help="number of days (default: config)")
    gen.add_argument("--seed", type=int, default=None, help="random seed (default: config)")
    gen.add_argument("--start-date", type=_date, default=None, help="first day, YYYY-MM-DD")
    gen.add_argument("--dirty-rate", type=float, default=None,
                     help="share of extra bad records to inject, 0..0.5 (default: config)")
    gen.add_argument("--truth-dir", default=None,
                     help="where the planted truth goes (default: OUT/_truth)")
    _common(gen)

    ing = sub.add_parser(
        "ingest", help="landing files of a date -> bronze tables (+ quarantine)",
        description="Validate the landing files of one date (or all dates), write good rows "
                    "to bronze.<source>, bad rows to quarantine.<source> with a reason code, "
                    "and drop duplicates by natural key. Re-running a date changes nothing.",
    )
    when = ing.add_mutually_exclusive_group(required=True)
    when.add_argument("--run-date", type=_date, help="the landing date to ingest, YYYY-MM-DD")
    when.add_argument("--all-dates", action="store_true",
                      help="ingest every date in the landing zone, oldest first")
    _common(ing)

    graph = sub.add_parser(
        "graph", help="PageRank influence and Louvain communities for a snapshot",
        description="Build the follow + interaction graph from bronze data before the "
                    "snapshot, run PageRank and Louvain, write silver.graph_metrics and "
                    "silver.communities (engines and weights from the graph config section).",
    )
    graph.add_argument("--snapshot-date", type=_snapshot, required=True,
                       help="the snapshot, YYYY-MM-DD (uses data strictly before it), or "
                            "'latest' (the day after the last landing date)")
    _common(graph)

    for name, text, desc in (
        ("sentiment", "score comment sentiment (English and Spanish) into silver",
         "Score bronze.comments of the run date (and late-arrival days) with the lexicon "
         "model; write silver.comment_sentiment."),
        ("daily", "per-user daily aggregates into silver.user_daily",
         "Aggregate bronze events and orders of the run date (and late-arrival days) into "
         "one row per user per active day."),
    ):
        stage = sub.add_parser(name, help=text, description=desc)
        when = stage.add_mutually_exclusive_group(required=True)
        when.add_argument("--run-date", type=_date, help="the date to process, YYYY-MM-DD")
        when.add_argument("--all-dates", action="store_true",
                          help="every date in the landing zone, in one batch")
        _common(stage)

    for name, text, desc in (
        ("features", "point-in-time user features for a snapshot",
         "Build gold.user_features for the snapshot from data strictly before it, with "
         "quality checks (a failing hard check exits 4 and writes nothing)."),
        ("anomalies", "flag users with anomalous engagement for a snapshot",
         "Score every user active in the models.anomaly_lookback_days before SNAPSHOT with "
         "robust z-scores of daily bursts and levels (silver.user_daily) and write "
         "silver.user_anomalies; train leaves the flagged users out, score marks them."),
        ("labels", "churn / CLV / purchase labels for a snapshot",
         "Build gold.user_labels from data at or after the snapshot (null where the horizon "
         "runs past the data's end)."),
        ("train", "train and register the churn, intent, CLV and segment models",
         "Build training sets from the feature snapshots before SNAPSHOT whose label windows "
         "have closed (the latest validates), fit the models, register them under "
         "paths.models; a new version becomes latest unless its metric regresses beyond "
         "models.promotion_tolerance."),
        ("score", "score a snapshot into gold.customer_segments and the activation export",
         "Apply the registry's latest models to gold.user_features of SNAPSHOT; replace its "
         "gold.customer_segments partition; write the export with pseudonymised ids "
         "(HMAC key from $MKTPIPE_EXPORT_KEY)."),
        ("trends", "forecast tournament, trend diagnostics and alerts for a snapshot",
         "Build the KPI series of the trends.history_days before SNAPSHOT (totals, and per "
         "segment where volume allows), backtest every trends.models forecaster, forecast "
         "with the winner, diagnose trend / seasonality / regime changes, evaluate the alert "
         "rules; write gold.forecast_backtests, gold.kpi_forecasts, gold.trend_daily, "
         "gold.trend_diagnostics and gold.alerts."),
        ("report", "write the HTML report for a snapshot",
         "Write <paths.reports>/<SNAPSHOT>/index.html: KPIs, trends and forecast, model "
         "quality, segments, influencers and communities, data quality. Self-contained."),
    ):
        stage = sub.add_parser(name, help=text, description=desc)
        stage.add_argument("--snapshot-date", type=_snapshot, required=True,
                           help="YYYY-MM-DD, or 'latest' (the day after the last landing date)")
        if name == "train":
            stage.add_argument("--if-due", action="store_true",
                               help="train only when due (a model missing, or older than "
                                    "models.retrain_every_days)")
        if name == "score":
            stage.add_argument("--no-export", action="store_true",
                               help="write gold.customer_segments only, no activation export")
        if name == "trends":
            _alert_flag(stage)
        _common(stage)

    run = sub.add_parser(
        "run", help="the whole daily pipeline for one run date (resumable)",
        description="ingest -> sentiment -> daily -> graph -> features -> anomalies -> labels "
                    "-> train (when due) -> score -> trends -> report for RUN_DATE (the snapshot "
                    "is RUN_DATE + 1 day). A re-run skips the stages already completed for that "
                    "date unless --force.",
    )
    run.add_argument("--run-date", type=_snapshot, required=True,
                     help="the landing date to process, YYYY-MM-DD, or 'latest' (the last "
                          "landing date)")
    run.add_argument("--force", action="store_true", help="re-run completed stages too")
    run.add_argument("--stages", default=None,
                     help="comma-separated subset of stages (default: pipeline.stages)")
    _alert_flag(run)
    _common(run)

    back = sub.add_parser(
        "backfill", help="run a range of dates in order; stops at the first failure",
        description="Backfill START..END. Default (batched): ingest, sentiment and daily for "
                    "the whole range in one batch each, graph + features + labels for every "
                    "pipeline.snapshot_every_days-th snapshot, then train, score and report "
                    "for the last one. --per-date runs the full daily pipeline for each date. "
                    "Resumable: re-run the same command after a failure.",
    )
    back.add_argument("--start", type=_date, default=None,
                      help="first date, YYYY-MM-DD (default: the first landing date)")
    back.add_argument("--end", type=_date, default=None,
                      help="last date, YYYY-MM-DD (default: the last landing date)")
    back.add_argument("--per-date", action="store_true",
                      help="the full daily pipeline for each date, in order")
    back.add_argument("--force", action="store_true", help="re-run completed steps too")
    _alert_flag(back)
    _common(back)

    dash = sub.add_parser(
        "dashboard", help="the interactive dashboard of a snapshot (a file, or served)",
        description="Aggregate the snapshot's scored users and their daily activity in Spark "
                    "and write one self-contained interactive page (filters by date range, "
                    "segment, churn tier, community and language cross-filter every chart; "
                    "click a bar to drill down; customers listed by pseudonymised id only). "
                    "Default output <paths.reports>/<SNAPSHOT>/dashboard.html; --serve serves "
                    "it on HOST:PORT (127.0.0.1 by default) until interrupted.")
    dash.add_argument("--snapshot-date", type=_snapshot, required=True,
                      help="YYYY-MM-DD, or 'latest' (the day after the last landing date)")
    dash.add_argument("--out", default=None, help="write the page here instead")
    dash.add_argument("--days", type=int, default=90, help="days of activity (default 90)")
    dash.add_argument("--serve", action="store_true", help="serve the page over HTTP")
    dash.add_argument("--host", default="127.0.0.1",
                      help="address to serve on (default 127.0.0.1: this machine only)")
    dash.add_argument("--port", type=int, default=8050)
    dash.add_argument("--language", choices=("en", "es"), default=None,
                      help="the page's language (default: report.language of the config)")
    _common(dash)

    mnt = sub.add_parser(
        "maintain", help="compact small files (OPTIMIZE) and vacuum unreferenced ones",
        description="OPTIMIZE (bin-packing compaction) and VACUUM every Delta table of the "
                    "warehouse, or the ones named, on the configured storage backend.",
    )
    mnt.add_argument("--table", action="append", default=[], metavar="LAYER.NAME",
                     help="a table to maintain (repeatable; default: every table)")
    mnt.add_argument("--vacuum-hours", type=float, default=None,
                     help="keep files referenced by versions newer than this many hours "
                          "(default 168, Delta's own; lower loses time travel)")
    mnt.add_argument("--full", action="store_true",
                     help="full VACUUM: also list every folder for files no commit ever "
                          "referenced (slower; default LITE uses the log's tombstones)")
    _common(mnt)

    doc = sub.add_parser(
        "doctor", help="versions, and which backend each capability uses and why",
        description="Print Python/Java/Spark/package versions and the backend chosen for "
                    "Delta tables, PageRank, Louvain and sentiment, with the reason.",
    )
    _common(doc)
    return parser


def _configure_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    for noisy in ("py4j", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def _load(args) -> Config:
    config = load_config(args.env, args.conf)
    _configure_logging(args.log_level or config.app.log_level)
    log.info("mktpipe %s env=%s effective config: %s", __version__, config.app.env,
             config.model_dump())
    return config


def cmd_generate(args) -> int:
    from mktpipe.generate import generate

    config = _load(args)
    g = config.generate
    out = args.out or config.paths.landing
    summary = generate(
        out=out,
        users=args.users or g.users,
        days=args.days or g.days,
        seed=g.seed if args.seed is None else args.seed,
        start_date=args.start_date or g.start_date,
        dirty_rate=g.dirty_rate if args.dirty_rate is None else args.dirty_rate,
        truth_dir=args.truth_dir,
    )
    data = summary.to_dict()
    print(f"wrote landing zone {out}: {data.get('total_rows', '?')} rows "
          f"in {data.get('elapsed_s', 0):.1f}s")
    return EXIT_OK


def _run_stage(args, command: str, stage, when: dt.date | str, summary=None,
               **options) -> int:
    """Build the session, run one stage through the pipeline's single-stage path
    (``pipeline.run_one``), print what it did. ``when``: a date, ``latest`` (the day after the
    last landing date) or ``all-dates`` (every landing date, ``stage`` taking the list)."""
    from mktpipe.pipeline import new_manifest, run_one
    from mktpipe.session import get_spark
    from mktpipe.stage import StageContext

    config = _load(args)
    date = _landing_dates(config) if when == "all-dates" else resolve_snapshot(when, config)
    spark = get_spark(config)
    manifest = new_manifest(command, config)
    ctx = StageContext.open(spark, config, run_id=manifest.run_id)
    result = run_one(ctx, stage, date, manifest, **options)
    if summary is not None:
        summary(manifest)
        return EXIT_OK
    print(f"{command} {result.run_date}: {result.rows_out} rows out in "
          f"{result.elapsed_s:.1f}s; tables {result.tables_written}")
    for key, value in result.details.items():
        if not isinstance(value, (dict, list)):
            print(f"  {key}: {value}")
    print(f"manifest: {manifest.path}")
    return EXIT_OK


def _dated_stage(args, command: str, single, batch, summary=None) -> int:
    """A stage run for --run-date D, or for --all-dates in one batch."""
    if args.all_dates:
        return _run_stage(args, command, batch, "all-dates", summary)
    return _run_stage(args, command, single, args.run_date, summary)


def cmd_ingest(args) -> int:
    from mktpipe.ingest.stage import run_ingest, run_ingest_dates
    from mktpipe.reporting import print_ingest_summary

    return _dated_stage(args, "ingest", run_ingest, run_ingest_dates, print_ingest_summary)


def cmd_sentiment(args) -> int:
    from mktpipe.nlp.stage import run_sentiment, run_sentiment_range

    return _dated_stage(args, "sentiment", run_sentiment, run_sentiment_range)


def cmd_daily(args) -> int:
    from mktpipe.features.daily import run_daily, run_daily_range

    return _dated_stage(args, "daily", run_daily, run_daily_range)


def cmd_features(args) -> int:
    from mktpipe.features.user_features import run_features

    return _run_stage(args, "features", run_features, args.snapshot_date)


def cmd_anomalies(args) -> int:
    from mktpipe.models.anomaly_stage import run_anomalies

    return _run_stage(args, "anomalies", run_anomalies, args.snapshot_date)


def cmd_labels(args) -> int:
    from mktpipe.features.labels import run_labels

    return _run_stage(args, "labels", run_labels, args.snapshot_date)


def cmd_graph(args) -> int:
    from mktpipe.graph.stage import run_graph

    return _run_stage(args, "graph", run_graph, args.snapshot_date)


def cmd_train(args) -> int:
    from mktpipe.models.stage import run_train

    return _run_stage(args, "train", run_train, args.snapshot_date, only_if_due=args.if_due)


def cmd_score(args) -> int:
    from mktpipe.score.stage import run_score

    return _run_stage(args, "score", run_score, args.snapshot_date, export=not args.no_export)


def cmd_trends(args) -> int:
    from mktpipe.trends.stage import run_trends

    config = _load(args)
    manifest = {}

    def summary(m) -> None:
        manifest["m"] = m
        r = m.stages[-1]
        print(f"trends {r.run_date}: {r.details.get('series')} series in {r.elapsed_s:.1f}s; "
              f"tables {r.tables_written}")
        for series, w in sorted(r.details.get("winners", {}).items()):
            print(f"  {series:<40} {w['model']:<15} MASE {w['mase']:.3f}  "
                  f"coverage {w['coverage']:.0%}")
        for a in r.details.get("alerts", []):
            print(f"  alert ({a['severity']}) {a['rule']}: {a['message']}")
        print(f"manifest: {m.path}")

    _run_stage(args, "trends", run_trends, args.snapshot_date, summary)
    return alert_exit_code(manifest["m"], config, args.fail_on_alert)


def cmd_report(args) -> int:
    from mktpipe.report.stage import run_report

    return _run_stage(args, "report", run_report, args.snapshot_date)


def _landing_dates(config: Config) -> list[dt.date]:
    from mktpipe.ingest import landing

    dates = landing.landing_dates(config.paths.landing)
    if not dates:
        landing.require_landing(config.paths.landing, dt.date.today())
    return dates


def cmd_run(args) -> int:
    from mktpipe.pipeline import Progress, preflight, run_pipeline, snapshot_for
    from mktpipe.reporting import print_run_summary
    from mktpipe.session import get_spark

    config = _load(args)
    run_date = _landing_dates(config)[-1] if args.run_date == "latest" else args.run_date
    stages = tuple(s.strip() for s in args.stages.split(",")) if args.stages else None
    preflight(config, stages or config.pipeline.stages)  # before the JVM starts
    spark = get_spark(config)
    print(f"mktpipe run {run_date} (snapshot {snapshot_for(run_date)})")
    manifest = run_pipeline(spark, config, run_date, force=args.force, progress=Progress(),
                            stages=stages)
    print_run_summary(manifest, config)
    return alert_exit_code(manifest, config, args.fail_on_alert)


def cmd_backfill(args) -> int:
    from mktpipe.pipeline import Progress, preflight, run_backfill
    from mktpipe.reporting import print_run_summary
    from mktpipe.session import get_spark

    config = _load(args)
    preflight(config, config.pipeline.stages)  # before the JVM starts
    dates = None
    if args.start is None or args.end is None:
        dates = _landing_dates(config)
    start = args.start or dates[0]
    end = args.end or dates[-1]
    spark = get_spark(config)
    mode = "date by date" if args.per_date else "batched"
    print(f"mktpipe backfill {start} .. {end} ({mode})")
    manifest = run_backfill(spark, config, start, end, force=args.force,
                            per_date=args.per_date, progress=Progress())
    print_run_summary(manifest, config)
    return alert_exit_code(manifest, config, args.fail_on_alert)


def cmd_dashboard(args) -> int:
    from mktpipe import i18n
    from mktpipe.dashboard import data as dashboard_data
    from mktpipe.dashboard.page import render, serve
    from mktpipe.session import get_spark
    from mktpipe.storage import files, open_store

    config = _load(args)
    snapshot = resolve_snapshot(args.snapshot_date, config)
    per_group = 50
    spark = get_spark(config)
    # the page in the readers' language (--language, else report.language)
    with i18n.use(getattr(args, "language", None) or config.report.language):
        data = dashboard_data.build(open_store(spark, config), config, snapshot,
                                    days=args.days, per_group=per_group)
        html = render(data, per_group)
    out = args.out or files.join(config.uri("reports"), snapshot.isoformat(), "dashboard.html")
    files.write_text(out, html)
    print(f"dashboard {snapshot}: {len(data.cube)} cube rows, {int(data.users['users'].sum())} "
          f"users, {len(data.customers)} customers listed -> {out}")
    if args.serve:
        server = serve(html, args.host, args.port)
        print(f"serving on http://{args.host}:{server.server_address[1]}/ (Ctrl-C stops)")
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            server.server_close()
    return EXIT_OK


def cmd_maintain(args) -> int:
    from mktpipe.session import get_spark
    from mktpipe.storage import DEFAULT_VACUUM_HOURS, open_store
    from mktpipe.storage.maintain import maintain_tables

    config = _load(args)
    hours = DEFAULT_VACUUM_HOURS if args.vacuum_hours is None else args.vacuum_hours
    spark = get_spark(config)
    store = open_store(spark, config)
    print(f"mktpipe maintain {store.warehouse} ({store.backend}), vacuum retention {hours:g} h")
    results = maintain_tables(store, args.table or None, hours, full_vacuum=args.full)
    print(f"{'table':<34} {'files before':>12} {'after':>6} {'compacted':>9} "
          f"{'vacuumed':>8} {'version':>7}")
    for r in results:
        print(f"{r.table:<34} {r.files_before:>12} {r.files_after:>6} {r.files_compacted:>9} "
              f"{r.files_vacuumed:>8} {r.version:>7}")
    return EXIT_OK


def cmd_doctor(args) -> int:
    from mktpipe.doctor import report

    config = _load(args)
    print(report(config))
    return EXIT_OK


COMMANDS = {
    "generate": cmd_generate,
    "ingest": cmd_ingest,
    "sentiment": cmd_sentiment,
    "daily": cmd_daily,
    "graph": cmd_graph,
    "features": cmd_features,
    "anomalies": cmd_anomalies,
    "labels": cmd_labels,
    "train": cmd_train,
    "score": cmd_score,
    "trends": cmd_trends,
    "report": cmd_report,
    "run": cmd_run,
    "backfill": cmd_backfill,
    "dashboard": cmd_dashboard,
    "maintain": cmd_maintain,
    "doctor": cmd_doctor,
}


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except ConfigError as exc:
        print(f"mktpipe: configuration error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except MktpipeError as exc:
        print(f"mktpipe: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("mktpipe: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # an internal error: full traceback in the log, short line for humans
        if is_out_of_memory(exc):  # commands outside the stage runner (e.g. `mktpipe ingest`)
            log.error("out of memory in %s", args.command, exc_info=True)
            print(f"mktpipe: {out_of_memory_advice(repr(args.command))}", file=sys.stderr)
            return EXIT_RESOURCES
        log.exception("internal error in %s", args.command)
        print(f"mktpipe: internal error in '{args.command}' (traceback above); "
              f"please report it", file=sys.stderr)
        return EXIT_INTERNAL


if __name__ == "__main__":
    sys.exit(main())
