"""Errors a user acts on, each with the CLI exit code that reports it (see README)."""

from __future__ import annotations

EXIT_OK = 0
EXIT_INTERNAL = 1
EXIT_CONFIG = 2
EXIT_INPUT = 3
EXIT_QUALITY = 4
EXIT_RESOURCES = 5
EXIT_ALERT = 6  # the run succeeded, and alerts fired (`--fail-on-alert`)

# what a JVM (or its SparkContext, once the JVM gave up) says when the heap ran out
_OOM_MARKERS = ("java.lang.OutOfMemoryError", "Java heap space", "GC overhead limit exceeded")


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


class OutOfMemory(MktpipeError):
    """Spark ran out of memory; the message says which settings to change."""

    exit_code = EXIT_RESOURCES


def is_out_of_memory(exc: BaseException) -> bool:
    """True when ``exc`` or an exception it was raised from (or during) is a JVM OOM.

    A Spark task that runs out of heap often surfaces as a later, unrelated failure (an
    ``unpersist`` or a job on a stopped SparkContext); the cause chain keeps the real one."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, MemoryError) or any(m in str(exc) for m in _OOM_MARKERS):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def out_of_memory_advice(what: str, driver_memory: str | None = None) -> str:
    setting = f"spark.driver_memory={driver_memory}" if driver_memory else "spark.driver_memory"
    return (
        f"{what} ran out of memory (Java heap space) with {setting}. "
        f"Give Spark more memory (MKTPIPE__SPARK__DRIVER_MEMORY=8g, or --driver-memory under "
        f"spark-submit), or process fewer dates per run (`mktpipe backfill --start ... --end "
        f"...` in parts). Tables are at their last committed version; re-running is safe."
    )
