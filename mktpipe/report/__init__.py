"""The HTML report: ``run_report(ctx, snapshot_date)`` (or ``(spark, config, ...)``) writes
``<paths.reports>/<YYYY-MM-DD>/index.html`` (see ``mktpipe.report.stage``)."""

from mktpipe.report.stage import run_report

__all__ = ["run_report"]
