"""Ingest a generated dirty landing zone: every injected defect is caught, with its reason."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from mktpipe.catalog import BRONZE_EVENTS, BRONZE_FOLLOWS
from mktpipe.generate import generate
from mktpipe.ingest import landing
from mktpipe.ingest.stage import run_ingest_dates
from mktpipe.schemas import DUPLICATE, REASON_CODES, SOURCES
from mktpipe.storage.delta_rs import DeltaRsStore

pytestmark = pytest.mark.integration
NOW = dt.datetime(2030, 1, 1, tzinfo=dt.timezone.utc)


@pytest.fixture(scope="module")
def ingested(spark, config, tmp_path_factory):
    root = tmp_path_factory.mktemp("generated")
    generate(out=root / "landing", users=200, days=6, seed=11,
             start_date=dt.date(2026, 3, 1), dirty_rate=0.05)
    cfg = config.model_copy(deep=True)
    cfg.paths.landing = str(root / "landing")
    store = DeltaRsStore(spark, str(root / "wh"))
    dates = landing.landing_dates(cfg.paths.landing)
    result = run_ingest_dates(spark, cfg, dates, store=store, now=NOW)
    truth = json.loads((root / "landing" / "_truth" / "dirty.json").read_text())
    return result, truth, store


def test_quarantine_reasons_equal_what_the_generator_injected(ingested):
    result, truth, _ = ingested
    for source in SOURCES:
        injected = {r: n for r, n in truth["totals"][source].items()
                    if r in REASON_CODES and n}
        assert result.details[source]["quarantine_reasons"] == injected, source


def test_duplicates_equal_injected_duplicates_and_counts_balance(ingested):
    result, truth, _ = ingested
    for source in SOURCES:
        counts = result.details[source]
        dupes = counts["duplicates_in_batch"] + counts["duplicates_existing"]
        assert dupes == truth["totals"][source][DUPLICATE], source
        assert counts["balanced"]
        assert counts["read"] == counts["written"] + counts["quarantined"] + dupes


def test_bronze_has_one_row_per_natural_key(ingested, spark):
    _, _, store = ingested
    events = store.read(BRONZE_EVENTS)
    assert events.count() == events.select("event_id").distinct().count()
    follows = store.read(BRONZE_FOLLOWS)
    assert follows.count() == follows.select("follower_id", "followee_id").distinct().count()
