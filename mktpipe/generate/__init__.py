"""Synthetic TikTok engagement data: the landing zone that ingest reads, plus its truth.

    from mktpipe.generate import generate
    summary = generate("data/landing", users=10_000, days=30, seed=7,
                       start_date=datetime.date(2024, 3, 1), dirty_rate=0.02)
"""

from mktpipe.generate.core import GenerateSummary, generate

__all__ = ["GenerateSummary", "generate"]
