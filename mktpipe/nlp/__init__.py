"""Natural-language stages: comment sentiment (English and Spanish) and language detection."""

from mktpipe.nlp.sentiment import backend_status, score_sentiment

__all__ = ["backend_status", "score_sentiment"]
