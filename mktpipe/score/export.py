"""The activation export: scored segments with pseudonymised user ids, as CSV and Parquet.

User ids are replaced by ``user_key`` = HMAC-SHA256(key, user_id) in lower-case hex, computed
in Spark with built-in functions (no Python UDF): with K the key padded to 64 bytes,

    HMAC(K, m) = SHA256((K xor opad) || SHA256((K xor ipad) || m))      (RFC 2104)

``community_id`` (Louvain names a community after one of its members, so it is a user id too)
becomes ``community_key`` the same way. The key comes from the environment variable named by
``export.key_env`` (default ``MKTPIPE_EXPORT_KEY``); a missing or short key is a configuration
error, never a plain id.
The same key gives the same user_key on every run, so an activation tool can match runs; a
different key gives unlinkable keys. Rotate the key to break linkage.

Layout (each format written to a temporary folder, then renamed into place, so a crash leaves
the previous export whole):

    <paths.exports>/customer_segments/snapshot_date=YYYY-MM-DD/csv/part-*.csv
    <paths.exports>/customer_segments/snapshot_date=YYYY-MM-DD/parquet/part-*.parquet
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import uuid

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from mktpipe.config import Config, ConfigError, secret
from mktpipe.storage import files

log = logging.getLogger(__name__)

USER_KEY = "user_key"
MIN_KEY_LENGTH = 16
EXPORT_COLUMNS = (
    USER_KEY, "snapshot_date", "churn_probability", "churn_tier", "clv_90d", "clv_tier",
    "intent_probability", "intent_tier", "segment", "rfm_segment", "community_key",
    "influence_percentile", "is_anomalous",
)
ROWS_PER_FILE = 1_000_000
_BLOCK = 64  # SHA-256 block size in bytes


def export_key(config: Config) -> bytes:
    """The pseudonymisation key from the environment (ConfigError when missing or short)."""
    value = secret(config.export.key_env, "pseudonymising user ids in the activation export")
    if len(value) < MIN_KEY_LENGTH:
        raise ConfigError(f"environment variable {config.export.key_env} is shorter than "
                          f"{MIN_KEY_LENGTH} characters; use a random key, e.g. "
                          "`openssl rand -hex 32`")
    return value.encode("utf-8")


def hmac_sha256(col: Column, key: bytes) -> Column:
    """HMAC-SHA256 of the UTF-8 string ``col`` under ``key``, as 64 lower-case hex chars."""
    if len(key) > _BLOCK:
        key = hashlib.sha256(key).digest()
    key = key.ljust(_BLOCK, b"\0")
    ipad = bytearray(b ^ 0x36 for b in key)
    opad = bytearray(b ^ 0x5C for b in key)
    inner = F.unhex(F.sha2(F.concat(F.lit(ipad), F.encode(col, "UTF-8")), 256))
    return F.sha2(F.concat(F.lit(opad), inner), 256)


def pseudonymise(df: DataFrame, key: bytes, id_col: str = "user_id") -> DataFrame:
    """Replace ``id_col`` by ``user_key`` (HMAC-SHA256), and ``community_id`` (when present:
    Louvain labels a community by a member's user id) by ``community_key``; the plain ids
    are dropped."""
    out = df.withColumn(USER_KEY, hmac_sha256(F.col(id_col), key)).drop(id_col)
    if "community_id" in df.columns:
        out = out.withColumn("community_key", hmac_sha256(
            F.col("community_id").cast("string"), key)).drop("community_id")
    return out


def export_root(config: Config, snapshot_date: dt.date) -> str:
    return files.join(config.uri("exports"), "customer_segments",
                      f"snapshot_date={snapshot_date.isoformat()}")


def _replace_dir(tmp: str, final: str) -> None:
    """Move ``tmp`` to ``final`` (a previous ``final`` is removed first)."""
    files.delete(final)
    files.move(tmp, final)


def write_export(segments: DataFrame, config: Config, snapshot_date: dt.date, rows: int,
                 key: bytes | None = None) -> dict:
    """Write the pseudonymised export of one snapshot's segments; returns its paths and rows.
    ``rows``: the number of rows (known to the caller) sizes the output files."""
    key = key if key is not None else export_key(config)
    out = pseudonymise(segments, key).select(*EXPORT_COLUMNS)
    out = out.coalesce(max(1, -(-rows // ROWS_PER_FILE)))
    root = export_root(config, snapshot_date)
    paths = {}
    for fmt in config.export.formats:
        final = files.join(root, fmt)
        tmp = files.join(root, f"_tmp-{fmt}-{uuid.uuid4().hex[:8]}")
        writer = out.write.mode("overwrite")
        if fmt == "csv":
            writer.option("header", True).csv(tmp)
        else:
            writer.parquet(tmp)
        _replace_dir(tmp, final)
        paths[fmt] = final
    log.info("activation export %s: %d rows, %s", snapshot_date, rows, paths)
    return {"paths": paths, "rows": rows, "id_column": USER_KEY,
            "pseudonymisation": "HMAC-SHA256 with the key in $" + config.export.key_env}
