"""The readers' language (mktpipe.i18n): the Spanish catalog covers every message the code
has, placeholders survive translation, and numbers and dates follow each locale."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pandas as pd
import pytest

from mktpipe import i18n
from mktpipe.report import formatting as fmt

PACKAGE = Path(i18n.__file__).parent
# the keywords and templates `make i18n` extracts (Makefile, babel.cfg)
KEYWORDS = {"_": None, "N_": None, "NP_": ((1, "c"), 2), "ngettext": (1, 2),
            "pgettext": ((1, "c"), 2)}
METHODS = [("**.py", "python"), ("**.html", "jinja2.ext:babel_extract")]
OPTIONS = {"**.html": {"extensions": "jinja2.ext.i18n"}}


def _key(context, message) -> tuple:
    return (context or "", message if isinstance(message, str) else tuple(message))


def code_messages() -> set[tuple]:
    from babel.messages.extract import extract_from_dir

    return {_key(ctx, msg) for _file, _line, msg, _comments, ctx
            in extract_from_dir(str(PACKAGE), METHODS, OPTIONS, keywords=KEYWORDS)}


def spanish_catalog():
    from babel.messages.pofile import read_po

    with open(i18n.catalog_path("es"), "rb") as f:
        return read_po(f, locale="es")


def _placeholders(text: str) -> set[str]:
    return set(re.findall(r"\{[a-z_]*\}|%\([a-z_]+\)[sd]", text))


def test_the_spanish_catalog_has_every_message_of_the_code_and_nothing_else():
    """`make i18n` was run and every entry translated: a message added to the code without a
    translation, an empty or fuzzy entry, or an entry the code no longer has fails here."""
    catalog = spanish_catalog()
    entries = {_key(m.context, m.id): m for m in catalog if m.id}
    code = code_messages()
    assert len(code) > 300
    assert sorted(code - set(entries)) == [], "run `make i18n` and translate the new entries"
    assert sorted(set(entries) - code) == [], "entries the code no longer has: `make i18n`"
    for key, m in entries.items():
        strings = m.string if isinstance(m.string, tuple) else (m.string,)
        assert all(s.strip() for s in strings) and "fuzzy" not in m.flags, key
        ids = m.id if isinstance(m.id, tuple) else (m.id,)
        for s in strings:  # every placeholder kept, none invented
            assert _placeholders(s) == _placeholders(ids[-1]), (key, s)


def test_messages_formats_and_plurals_follow_the_active_language():
    assert i18n._("Daily trends") == "Daily trends"
    with i18n.use("es") as es:
        assert i18n._("Daily trends") == "Tendencias diarias"
        assert i18n.ngettext("{n} alert", "{n} alerts", 1).format(n=1) == "1 alerta"
        assert i18n.ngettext("{n} alert", "{n} alerts", 3).format(n=3) == "3 alertas"
        assert fmt.fmt_int(1234567) == "1.234.567" and fmt.fmt_num(0.8123) == "0,812"
        nb = "\u00a0"  # CLDR's no-break space
        assert fmt.fmt_pct(0.1234) == f"12,3{nb}%" and fmt.fmt_usd(12.5) == f"12,50{nb}US$"
        assert fmt.fmt_usd(1234.4) == f"1.234{nb}US$"
        assert fmt.fmt_usd(2_500_000) == f"2,5{nb}M{nb}US$"
        assert fmt.fmt_compact(123_456) == f"123,5{nb}mil" and fmt.fmt_int(None) == "—"
        assert fmt.fmt_change(110, 100)[0] == f"+10,0{nb}%"
        assert fmt.fmt_date(dt.date(2026, 3, 1)) == "1 mar 2026"
        assert es.weekdays()[0] == "lun" and es.tag == "es-ES"
        assert es.plotly_locale()["format"]["months"][0] == "enero"
        assert i18n._("") == ""  # never the catalog's header
    assert i18n._("Daily trends") == "Daily trends"  # the block restored English
    assert fmt.fmt_date(dt.date(2026, 3, 1)) == "2026-03-01" and fmt.fmt_int(1234) == "1,234"
    with pytest.raises(ValueError, match="not supported"):
        with i18n.use("fr"):
            pass


def test_stored_keys_and_segment_names_are_shown_in_the_readers_language():
    assert i18n.value_label("tier", "immediate_intervention") == "immediate intervention"
    assert i18n.segment_label("high views 30d, low order count #2") == \
        "high views (30 d), low order count #2"
    with i18n.use("es"):
        assert i18n.value_label("tier", "immediate_intervention") == "intervención inmediata"
        assert i18n.value_label("tier", "my_own_tier") == "my own tier"  # a user's own name
        assert i18n.segment_label("high views 30d, low order count #2") == \
            "alto en visualizaciones (30 d), bajo en número de pedidos #2"
        assert i18n.segment_label("average") == "promedio"
        assert i18n.segment_cut("churn_tier=retention_campaign") == \
            "nivel de riesgo de abandono: campaña de retención"


def test_alert_messages_are_written_in_the_readers_language():
    """The trends stage runs under report.language (mktpipe.stage), so gold.alerts holds the
    readers' sentences; the figures in them use the locale's formats."""
    from mktpipe.trends import alerts as A

    end = dt.date(2026, 3, 9)
    check = pd.DataFrame({"series_id": "views", "kpi": "views", "segment": None,
                          "day": [end - dt.timedelta(days=n) for n in (2, 1, 0)],
                          "mean": 12000.0, "lower": 11000.0, "upper": 13000.0,
                          "actual": [6000.0, 7000.0, 5000.0]})
    english = A.kpi_drops(check, days=3, segments=False)[0].message
    assert english.startswith("Views fell below its forecast interval on 3 of the last 3 days")
    assert "12,000" in english and "2026-03-09" in english
    with i18n.use("es"):
        spanish = A.kpi_drops(check, days=3, segments=False)[0].message
    assert spanish.startswith("Visualizaciones cayó por debajo de su intervalo de previsión "
                              "en 3 de los últimos 3 días")
    assert "12.000" in spanish and "9 mar 2026" in spanish and "58\u00a0%" in spanish


def test_stages_run_in_the_configured_language(spark, config):
    from mktpipe.stage import stage

    seen = []

    @stage("probe")
    def probe(ctx, date):
        seen.append(i18n._("Daily trends"))

    cfg = config.model_copy(deep=True)
    cfg.report.language = "es"
    probe(spark, cfg, "2026-03-10")  # the pre-kernel call: it builds the context
    assert seen == ["Tendencias diarias"] and i18n.current().code == "en"


def test_every_key_the_pipeline_stores_has_a_spanish_label(config):
    """The codes a page can show (sources, stages, tiers, RFM groups, actions, categories,
    rules, severities) each have a catalog entry: a new one without a translation fails here,
    not on a reader's page."""
    from mktpipe import schemas
    from mktpipe.model_settings import CHURN_TIERS, INTENT_TIERS
    from mktpipe.models.segmentation import RFM_RULES, SEGMENT_ACTIONS
    from mktpipe.trends.alerts import SEVERITIES

    keys = {"source": schemas.SOURCES, "stage": config.pipeline.stages,
            "tier": [*CHURN_TIERS, *INTENT_TIERS, *config.models.clv_tiers],
            "rfm": [name for name, _rule, _f in RFM_RULES], "category": schemas.CATEGORIES,
            "action": [action for action, _why, _rule in SEGMENT_ACTIONS],
            "severity": SEVERITIES,
            "rule": ["kpi_drop", "regime_change", "churn_risk_growth", "data_quality"]}
    with i18n.use("es"):
        untranslated = [(kind, key) for kind, values in keys.items() for key in values
                        if i18n.pgettext(kind, key) == key
                        and (kind, key) != ("category", "fitness")]  # Spanish too
    assert untranslated == []
