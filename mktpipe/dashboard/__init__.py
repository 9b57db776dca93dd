"""The interactive dashboard (``mktpipe dashboard``): Spark aggregates of one snapshot in a
self-contained page with cross-filtering charts and a pseudonymised customer drill-down."""
