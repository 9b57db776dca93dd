"""Ingest a generated dirty landing zone: every injected defect is caught, with its reason.

The landing zone and its ingest are the session's shared backfill's (tests/conftest.py:
300 users x 30 days, 2 % of the rows dirty, ingested in one batch); the generator's truth
(_truth/dirty.json) says how many defects of each kind it planted."""

from __future__ import annotations

import json

import pytest

from mktpipe.catalog import BRONZE_EVENTS, BRONZE_FOLLOWS
from mktpipe.schemas import DUPLICATE, REASON_CODES, SOURCES
from mktpipe.storage.delta_rs import DeltaRsStore

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def ingested(spark, pipeline_backfill, pipeline_cfg, pipeline_landing):
    result = next(s for s in pipeline_backfill["manifest"].stages if s.stage == "ingest")
    truth = json.loads((pipeline_landing / "_truth" / "dirty.json").read_text())
    store = DeltaRsStore(spark, str(pipeline_cfg.resolve_path("warehouse")))
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
