"""A separate writer process for the concurrency tests (not a test module).

    python concurrent_writer.py BACKEND WAREHOUSE OP START ROUNDS

OP: append (10 new ids a round), overwrite (partition 2026-01-01 replaced by ids 9000-9004),
merge (merge_insert of 4 new ids a round, half on 2026-01-01, half on 2026-01-02). Prints one
JSON line per committed round: {"op", "round", "version", "ids"}.
"""

from __future__ import annotations

import datetime as dt
import json
import sys

from pyspark.sql.types import DateType, LongType, StructField, StructType

from mktpipe.config import load_config
from mktpipe.session import get_spark
from mktpipe.storage import open_store

SCHEMA = StructType([StructField("id", LongType()), StructField("day", DateType())])
D1, D2 = dt.date(2026, 1, 1), dt.date(2026, 1, 2)
TABLE = "silver.race"


def main(backend: str, warehouse: str, op: str, start: int, rounds: int) -> None:
    config = load_config("test", {
        "storage": {"backend": backend}, "paths": {"warehouse": warehouse},
        "spark": {"master": "local[1]", "shuffle_partitions": 1},
    })
    spark = get_spark(config)
    store = open_store(spark, config)
    for r in range(rounds):
        if op == "append":
            ids = [(start + 10 * r + i, D2) for i in range(10)]
            version = store.write(spark.createDataFrame(ids, SCHEMA), TABLE)
        elif op == "overwrite":
            ids = [(9000 + i, D1) for i in range(5)]
            version = store.write(spark.createDataFrame(ids, SCHEMA), TABLE, mode="overwrite",
                                  replace_where={"day": D1.isoformat()})
        else:
            ids = [(start + 4 * r + i, D1 if i < 2 else D2) for i in range(4)]
            version = store.merge_insert(spark.createDataFrame(ids, SCHEMA), TABLE, ["id"])
        print(json.dumps({"op": op, "round": r, "version": version,
                          "ids": [[i, d.isoformat()] for i, d in ids]}), flush=True)
    spark.stop()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]))
