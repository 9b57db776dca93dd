"""The readers' language: message catalogs and locale formats for the report, the alerts and the
dashboard (``report.language``: ``en`` or ``es``).

Messages are gettext catalogs: English is the source language (the strings in the code), and
``mktpipe/locale/<lang>/LC_MESSAGES/mktpipe.po`` holds each translation. ``make i18n``
re-extracts every ``_()`` / ``N_()`` / ``ngettext()`` / ``pgettext()`` string of the package and
of its templates (Babel) and updates the catalogs; a test fails when the code has a message
the Spanish catalog lacks, or a catalog entry is empty or fuzzy. The .po is compiled in memory
the first time a language is used (no build step, no .mo files in the repository).

The active language is a context variable: ``with i18n.use("es"): ...`` makes ``_()`` and the
formatters of :mod:`mktpipe.report.formatting` speak Spanish inside the block. Every stage
runs under the configured ``report.language`` (:func:`mktpipe.stage.stage`), so what stages
write for readers (the alert messages) is in the readers' language;
codes (rule names, reason codes, tier and segment keys, table names) are never translated.
Logs, errors and the CLI stay in English: they are for operators and their search engines.

Numbers and dates: English keeps the house style (``12,345``, ``$1.2M``, ``12.3 %``, ISO
dates); other languages follow CLDR through Babel (Spanish: ``12.345``, ``1,2 M US$``,
``12,3 %``, ``1 mar 2026``).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import gettext
import io
import math
import numbers
from collections.abc import Iterator
from contextvars import ContextVar
from importlib import resources
from typing import Any

import numpy as np

# language code -> CLDR locale of its numbers and dates
LANGUAGES: dict[str, str] = {"en": "en_US", "es": "es_ES"}
DEFAULT = "en"
DOMAIN = "mktpipe"
MISSING = "—"
NBSP = "\u00a0"  # CLDR's space inside '12,3 %' and '1,2 M US$': never a line break

_active: ContextVar[str] = ContextVar("mktpipe_language", default=DEFAULT)


def check_language(code: str) -> str:
    """``code`` when it is a supported language; ValueError naming the choices otherwise."""
    if code not in LANGUAGES:
        raise ValueError(f"language {code!r} is not supported; use one of "
                         f"{', '.join(sorted(LANGUAGES))}")
    return code


def catalog_path(code: str):
    """The package resource of ``code``'s .po catalog."""
    return resources.files("mktpipe").joinpath("locale", code, "LC_MESSAGES", f"{DOMAIN}.po")


@functools.cache
def _translations(code: str) -> gettext.NullTranslations:
    if code == DEFAULT:
        return gettext.NullTranslations()
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po
    from babel.support import Translations

    catalog = read_po(io.BytesIO(catalog_path(code).read_bytes()), locale=LANGUAGES[code],
                      domain=DOMAIN)
    mo = io.BytesIO()
    write_mo(mo, catalog)  # fuzzy entries are left out: they fall back to English
    mo.seek(0)
    return Translations(mo, domain=DOMAIN)


def _absent(value: Any) -> bool:
    """None or NaN: a cell with nothing to show."""
    return value is None or (isinstance(value, float) and value != value)


def is_number(x: Any) -> bool:
    """A finite real number (Python or numpy scalar; not a bool, None or NaN)."""
    return (isinstance(x, numbers.Real) and not isinstance(x, bool | np.bool_)
            and math.isfinite(x))


def _iso_day(text: str) -> dt.date | str:
    """The day of an ISO day or timestamp; the text itself when it is neither."""
    try:
        return dt.date.fromisoformat(text[:10])
    except ValueError:
        return text


class Language:
    """One language: its messages (gettext) and its number and date formats."""

    def __init__(self, code: str) -> None:
        from babel import Locale

        self.code = check_language(code)
        self.locale = Locale.parse(LANGUAGES[code])
        self.translations = _translations(code)

    @property
    def tag(self) -> str:
        """The BCP 47 tag for HTML ``lang`` and the browser's Intl (``es-ES``)."""
        return LANGUAGES[self.code].replace("_", "-")

    # --- messages ----------------------------------------------------------------------------
    def gettext(self, message: str) -> str:
        # gettext("") is the catalog's header: an empty text stays empty
        return self.translations.gettext(message) if message else message

    def ngettext(self, singular: str, plural: str, n: int) -> str:
        return self.translations.ngettext(singular, plural, n)

    def pgettext(self, context: str, message: str) -> str:
        return self.translations.pgettext(context, message)

    # --- numbers -----------------------------------------------------------------------------
    def _babel(self, x: float, digits: int) -> str:
        from babel.numbers import format_decimal

        pattern = "#,##0" + ("." + "0" * digits if digits > 0 else "")
        return format_decimal(x, format=pattern, locale=self.locale)

    def number(self, x: Any, digits: int = 3) -> str:
        """``x`` with ``digits`` decimals and the locale's separators; '—' when not a number."""
        if not is_number(x):
            return MISSING
        if self.code == DEFAULT:
            return f"{x:,.{digits}f}"
        return self._babel(x, digits)

    def integer(self, x: Any) -> str:
        return self.number(round(x), 0) if is_number(x) else MISSING

    def percent(self, share: Any, digits: int = 1) -> str:
        """A share in [0, 1] as a percentage with a space before the sign: '12.3 %', '12,3 %'
        (a no-break space outside English, as CLDR writes it)."""
        if not is_number(share):
            return MISSING
        if self.code == DEFAULT:
            return f"{100 * share:.{digits}f} %"
        return self._babel(100 * share, digits) + NBSP + "%"

    def compact(self, x: Any) -> str:
        """Large numbers shortened: 123456 -> '123.5k' / '123,5 mil'; 12345678 -> '12.3M' /
        '12,3 M'; smaller ones in full."""
        if not is_number(x):
            return MISSING
        if abs(x) >= 1e5:
            if self.code == DEFAULT:
                for bound, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
                    if abs(x) >= bound:
                        return f"{x / bound:,.1f}{suffix}"
            from babel.numbers import format_compact_decimal

            return format_compact_decimal(x, fraction_digits=1, locale=self.locale)
        return self.integer(x) if float(x).is_integer() or abs(x) >= 100 else self.number(x, 2)

    def usd(self, x: Any, compact: bool = True) -> str:
        """USD amounts: '$12,345' / '12.345 US$' ('$1.2M' / '1,2 M US$' when compact and
        large); two decimals below 100."""
        if not is_number(x):
            return MISSING
        sign, x = ("-" if x < 0 else ""), abs(x)
        if self.code == DEFAULT:
            if compact and x >= 1e5:
                return sign + "$" + self.compact(x)
            return sign + (f"${x:,.2f}" if x < 100 else f"${x:,.0f}")
        amount = self.compact(x) if compact and x >= 1e5 else self.number(x, 2 if x < 100 else 0)
        return f"{sign}{amount}{NBSP}US$"

    def change(self, change: float) -> str:
        """A relative change as '+12.3 %' / '−12,3 %'."""
        return ("+" if change >= 0 else "−") + self.percent(abs(change))

    # --- dates -------------------------------------------------------------------------------
    def date(self, day: Any) -> str:
        """A day for prose and tables: ISO in English ('2026-03-01'), the locale's medium
        form otherwise ('1 mar 2026'). Text is read as an ISO day, a timestamp (its day) or a
        manifest's run-date span 'a..b' ('1 mar 2026 – 9 mar 2026'); other text as it is."""
        if isinstance(day, str):
            parts = [_iso_day(part) for part in day.split("..")]
            return " – ".join(p if isinstance(p, str) else self.date(p) for p in parts)
        if isinstance(day, dt.datetime):
            day = day.date()
        if not isinstance(day, dt.date):
            return MISSING if day is None else str(day)
        if self.code == DEFAULT:
            return day.isoformat()
        from babel.dates import format_date

        return format_date(day, "medium", locale=self.locale)

    def day_month(self, day: dt.date) -> str:
        """A short axis label: 'Mar 1' / '1 mar'."""
        from babel.dates import format_skeleton

        return format_skeleton("MMMd", day, locale=self.locale)

    def weekdays(self) -> list[str]:
        """Abbreviated weekday names, Monday first."""
        from babel.dates import get_day_names

        names = get_day_names("abbreviated", locale=self.locale)
        return [str(names[i]) for i in range(7)]

    def plotly_locale(self) -> dict:
        """A plotly.js locale module (month and day names, separators) for the dashboard."""
        from babel.dates import get_day_names, get_month_names

        def names(kind: str, width: str) -> list[str]:
            source = get_month_names if kind == "months" else get_day_names
            got = source(width, locale=self.locale)
            # Babel: months 1-12, days 0 = Monday; plotly wants Sunday first
            keys = range(1, 13) if kind == "months" else (6, 0, 1, 2, 3, 4, 5)
            return [str(got[k]) for k in keys]

        symbols = self.locale.number_symbols["latn"]
        return {"moduleType": "locale", "name": self.code, "dictionary": {},
                "format": {"days": names("days", "wide"),
                           "shortDays": names("days", "abbreviated"),
                           "months": names("months", "wide"),
                           "shortMonths": names("months", "abbreviated"),
                           "date": "%Y-%m-%d" if self.code == DEFAULT else "%d/%m/%Y",
                           "decimal": symbols["decimal"], "thousands": symbols["group"]}}


def jinja_environment():
    """A Jinja environment (autoescaping, strict) with the i18n extension: ``{{ _("...") }}``
    in a template is the active language's text (newstyle: ``_("%(n)s rows", n=3)``); ``make
    i18n`` extracts those strings too."""
    from jinja2 import Environment, StrictUndefined

    env = Environment(autoescape=True, undefined=StrictUndefined,
                      extensions=["jinja2.ext.i18n"])
    env.install_gettext_callables(gettext=_, ngettext=ngettext, pgettext=pgettext,
                                  newstyle=True)
    return env


@functools.cache
def language(code: str) -> Language:
    return Language(code)


def current() -> Language:
    """The active language (``use``), English by default."""
    return language(_active.get())


@contextlib.contextmanager
def use(code: str | None) -> Iterator[Language]:
    """Make ``code`` the active language inside the block (None: keep the current one)."""
    if code is None:
        yield current()
        return
    token = _active.set(check_language(code))
    try:
        yield language(code)
    finally:
        _active.reset(token)


def _(message: str) -> str:  # noqa: N802 (gettext's name)
    """``message`` in the active language (itself in English or when not translated)."""
    return current().gettext(message)


def N_(message: str) -> str:  # noqa: N802 (gettext's name)
    """Mark ``message`` for the catalog without translating it now (module-level tables whose
    entries are translated where they are shown, with ``_()``)."""
    return message


def ngettext(singular: str, plural: str, n: int) -> str:
    return current().ngettext(singular, plural, n)


def pgettext(context: str, message: str) -> str:
    """``message`` in the catalog's ``context`` (a word whose translation depends on use)."""
    return current().pgettext(context, message)


def value_label(kind: str, value: Any) -> str:
    """A stored key shown to readers (a tier, an RFM segment, an action, a severity): its
    translation in the catalog's ``kind`` context when there is one, else the key with
    underscores as spaces (a name the user configured is shown as they wrote it)."""
    if _absent(value):
        return MISSING
    text = str(value)
    translated = pgettext(kind, text)
    return translated if translated != text else text.replace("_", " ")


def NP_(context: str, message: str) -> str:  # noqa: N802 (gettext's name)
    """Mark ``message`` in ``context`` for the catalog without translating it now."""
    return message


# the words behaviour features are named with (mktpipe.features.columns), for segment names;
# a feature is shown as its base words and window: views_30d -> "views (30 d)"
FEATURE_WORDS = (
    NP_("feature", "views"), NP_("feature", "watch seconds"), NP_("feature", "engagement rate"),
    NP_("feature", "active days"), NP_("feature", "product clicks"),
    NP_("feature", "order count"), NP_("feature", "orders"), NP_("feature", "monetary total"),
    NP_("feature", "followers"), NP_("feature", "likes"), NP_("feature", "comments"),
    NP_("feature", "shares"), NP_("feature", "sessions"), NP_("feature", "events"),
    NP_("feature", "completion rate"), NP_("feature", "spend"), NP_("feature", "recency days"),
    NP_("feature", "days since last active"), NP_("feature", "pagerank"),
    NP_("feature", "sentiment"), NP_("feature", "add to cart"), NP_("feature", "purchases"),
)


def feature_label(words: str) -> str:
    """A feature's readable words in the active language: 'views 30d' -> 'views (30 d)' /
    'visualizaciones (30 d)'; unknown words are kept."""
    words = words.replace("_", " ").strip()
    base, _sep, window = words.rpartition(" ")
    if not (_sep and window.endswith("d") and window[:-1].isdigit()):
        base, window = words, ""
    label = pgettext("feature", base)
    return f"{label} ({window[:-1]} d)" if window else label


def segment_label(name: Any) -> str:
    """A behavioural segment's stored name (mktpipe.models.segmentation.segment_names:
    'high views 30d, low order count', 'average', a name then ' #3') in the active language."""
    if _absent(name):
        return MISSING
    text, suffix = str(name), ""
    if " #" in text:
        text, _sep, rest = text.rpartition(" #")
        suffix = f" #{rest}"
    if text == "average":
        return _("average") + suffix
    parts = []
    for part in text.split(", "):
        level, _sep, feature = part.partition(" ")
        if level == "high" and feature:
            parts.append(_("high {feature}").format(feature=feature_label(feature)))
        elif level == "low" and feature:
            parts.append(_("low {feature}").format(feature=feature_label(feature)))
        else:
            parts.append(part)  # a name the user gave: shown as written
    return ", ".join(parts) + suffix


# the columns of gold.customer_segments a segment series or a dashboard filter is cut by
DIMENSIONS = {"segment": N_("segment"), "churn_tier": N_("churn tier"),
              "intent_tier": N_("intent tier"), "clv_tier": N_("CLV tier"),
              "rfm_segment": N_("RFM segment"), "community": N_("community"),
              "language": N_("language")}
# the catalog context of each dimension's values
VALUE_KINDS = {"churn_tier": "tier", "intent_tier": "tier", "clv_tier": "tier",
               "rfm_segment": "rfm"}


def dimension_value(column: str, value: Any) -> str:
    """A value of a segment column in the active language (a segment name, a tier key)."""
    if column == "segment":
        return segment_label(value)
    return value_label(VALUE_KINDS.get(column, column), value)


def segment_cut(label: Any) -> str:
    """A series' segment label ``<column>=<value>`` (mktpipe.trends.series) for readers:
    'churn tier: immediate intervention' / 'nivel de riesgo de abandono: intervención
    inmediata'."""
    if _absent(label):
        return MISSING
    column, sep, value = str(label).partition("=")
    if not sep:
        return str(label)
    name = DIMENSIONS.get(column)
    return f"{_(name) if name else column}: {dimension_value(column, value)}"
