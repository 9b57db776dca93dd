"""Table maintenance: compact small files (OPTIMIZE) and delete unreferenced ones (VACUUM).

Both backends do both: delta-spark through ``DeltaTable.optimize()/vacuum()``, delta-rs through
``optimize.compact`` and ``vacuum`` of the ``deltalake`` package. Each table is maintained on
its own; a failure on one is reported and the others still run.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from mktpipe.errors import InputError
from mktpipe.storage.base import DEFAULT_VACUUM_HOURS, MaintenanceStats, TableStore

log = logging.getLogger(__name__)


def maintain_tables(
    store: TableStore,
    tables: Sequence[str] | None = None,
    vacuum_hours: float = DEFAULT_VACUUM_HOURS,
    full_vacuum: bool = False,
) -> list[MaintenanceStats]:
    """OPTIMIZE then VACUUM ``tables`` (default: every table of the warehouse).

    ``vacuum_hours`` below Delta's default of 168 is allowed (a demo warehouse, a test) but
    logged as a warning: readers of versions older than that lose their files.
    """
    if vacuum_hours < 0:
        raise ValueError(f"vacuum hours must be >= 0, got {vacuum_hours}")
    if vacuum_hours < DEFAULT_VACUUM_HOURS:
        log.warning(
            "vacuum retention %.1f h is below Delta's default of %d h: time travel to older "
            "versions, and a reader still on one, lose their files", vacuum_hours,
            DEFAULT_VACUUM_HOURS,
        )
    known = store.tables()
    wanted = list(tables) if tables else known
    missing = [t for t in wanted if t not in known]
    if missing:
        raise InputError(
            f"no such table(s) {missing} in {store.warehouse}; tables there: {known or 'none'}"
        )
    results = []
    for table in wanted:
        stats = store.maintain(table, vacuum_hours, full_vacuum)
        log.info("%s: files %d -> %d (%d compacted, %d vacuumed), v%d", table,
                 stats.files_before, stats.files_after, stats.files_compacted,
                 stats.files_vacuumed, stats.version)
        results.append(stats)
    return results
