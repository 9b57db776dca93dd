"""Errors a user acts on, each with the CLI exit code that reports it (see README)."""

from __future__ import annotations

EXIT_OK = 0
EXIT_INTERNAL = 1
EXIT_CONFIG = 2
EXIT_INPUT = 3
EXIT_QUALITY = 4


class MktpipeError(Exception):
    """Base for errors whose message tells the user what to do."""

    exit_code = EXIT_INTERNAL


class InputError(MktpipeError):
    """Input that cannot be processed: missing landing folder, unreadable file, bad header."""

    exit_code = EXIT_INPUT


class QualityCheckError(MktpipeError):
    """A hard data-quality check failed; the message names the check and sample keys."""

    exit_code = EXIT_QUALITY


class CountMismatchError(MktpipeError):
    """Rows read != written + quarantined + deduplicated: something was lost (a bug)."""

    exit_code = EXIT_INTERNAL
