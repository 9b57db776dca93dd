"""KPI trends: the forecast tournament, trend diagnostics and alerts (the trends stage), and
the single-series analysis the report draws (:mod:`mktpipe.trends.analysis`)."""

from mktpipe.trends.diagnostics import diagnose
from mktpipe.trends.tournament import TournamentSettings, run_tournament

__all__ = ["TournamentSettings", "diagnose", "run_tournament"]
