"""mktpipe: scheduled PySpark analytics for TikTok engagement data."""

__version__ = "0.1.0"
