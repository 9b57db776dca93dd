"""Language of short comments, offline: py3langid (its model ships in the wheel).

The classifier is restricted to the candidate languages (default English and Spanish, the two
the sentiment scorer has models for). Restricting matters on short social text: over all 97
languages py3langid got 0.92 (en) / 0.86 (es) right on tests/data/sentiment_eval.csv, restricted
to (en, es) 0.99 / 1.00 ("yes queen slay", "kinda sus ngl" went to es); adding "pt" costs
Spanish five points (0.95). langdetect did worse (0.86 / 0.68) and is ~100x slower; lingua
restricted to en/es matched py3langid but its wheel is 96 MB. A text with no letters
(empty, null, emoji or numbers only) is ``und``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence

import pandas as pd
from pyspark.sql import Column
from pyspark.sql import functions as F
from pyspark.sql.types import StringType

log = logging.getLogger(__name__)

DEFAULT_LANGUAGES: tuple[str, ...] = ("en", "es")
UNDETERMINED = "und"

# one identifier per worker process and candidate set; loading the model takes ~0.3 s
_IDENTIFIERS: dict[tuple[str, ...] | None, object] = {}


def _identifier(languages: Sequence[str] | None):
    key = tuple(sorted(languages)) if languages else None
    ident = _IDENTIFIERS.get(key)
    if ident is None:
        try:
            from py3langid.langid import MODEL_FILE, LanguageIdentifier
        except ImportError as exc:  # a dependency the package pins
            raise ImportError(
                "mktpipe.nlp.language needs py3langid (pip install py3langid==0.4.0)"
            ) from exc
        ident = LanguageIdentifier.from_model_file(MODEL_FILE)
        if key:
            try:
                ident.set_languages(list(key))
            except ValueError as exc:
                raise ValueError(
                    f"languages={list(languages)}: {exc}; use ISO 639-1 codes such as 'en', 'es'"
                ) from exc
        _IDENTIFIERS[key] = ident
    return ident


def check_languages(languages: Sequence[str] | None) -> None:
    """Raise ValueError now (on the driver) for a code py3langid does not know."""
    _identifier(languages)


def has_letters(text: str | None) -> bool:
    """Whether ``text`` has any letter (emoji, digits and punctuation alone have none)."""
    return bool(text) and any(ch.isalpha() for ch in text)


def detect_language(text: str | None, languages: Sequence[str] | None = DEFAULT_LANGUAGES) -> str:
    """ISO 639-1 code of ``text`` among ``languages`` (None: all 97), or ``und``."""
    if not has_letters(text):
        return UNDETERMINED
    return _identifier(languages).classify(text)[0]


def detect_languages(
    texts: Iterable[str | None] | pd.Series,
    languages: Sequence[str] | None = DEFAULT_LANGUAGES,
) -> pd.Series:
    """``detect_language`` over a batch (a pandas Series in, a Series of codes out)."""
    series = texts if isinstance(texts, pd.Series) else pd.Series(list(texts), dtype=object)
    ident = _identifier(languages)
    out = [ident.classify(t)[0] if has_letters(t) else UNDETERMINED for t in series]
    return pd.Series(out, index=series.index, dtype=object)


def language_column(text: Column | str, languages: Sequence[str] | None = DEFAULT_LANGUAGES
                    ) -> Column:
    """A Column of ``detect_language`` codes (a vectorised pandas UDF)."""
    candidates = tuple(languages) if languages else None

    @F.pandas_udf(StringType())
    def detect(texts: pd.Series) -> pd.Series:
        return detect_languages(texts, candidates)

    return detect(F.col(text) if isinstance(text, str) else text)
