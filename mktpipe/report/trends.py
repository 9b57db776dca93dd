"""Moved to :mod:`mktpipe.trends.analysis` (the trends stage owns the series analysis); this
name stays for code written against it."""

from mktpipe.trends.analysis import *  # noqa: F401,F403
from mktpipe.trends.analysis import (  # noqa: F401  (names the star leaves out)
    _stl,
    analyse,
    as_daily,
    decompose,
    flag_anomalies,
    forecast,
    robust_zscores,
)
