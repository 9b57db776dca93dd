"""Edge-list validation and normalisation shared by the graph engines.

Every engine starts from the same normalised form, so they agree on what a graph is:

- rows whose ``dst`` is null declare an isolated vertex ``src`` (no edge);
- ``weight=None`` means every edge weighs 1.0; a null, NaN or negative weight is a ValueError
  (a null weight is more likely a broken join upstream than a meaning of 1.0);
- duplicate rows are one edge whose weight is the sum of theirs (a multigraph collapsed);
- vertices are every non-null id in ``src`` or ``dst``; ids keep their input type (int or
  string), and ``src`` and ``dst`` must have the same type.

Internal column names are the constants below; the public functions rename on the way out.
"""

from __future__ import annotations

import logging

from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import (
    AtomicType,
    DataType,
    DoubleType,
    NumericType,
)

from mktpipe.session import temporary_conf

log = logging.getLogger(__name__)

ID = "id"
SRC = "src"
DST = "dst"
WEIGHT = "weight"
PAGERANK = "pagerank"
COMMUNITY = "community"
COMPONENT = "component"

# Up to this many vertices the spark engines broadcast per-vertex tables (ranks, community
# totals: a few tens of bytes a vertex, ~100 MB at the limit) to the edges each round, so the
# edges never leave their partition; above it the edges are shuffled each round instead.
BROADCAST_MAX_NODES = 2_000_000


def require_columns(df: DataFrame, columns: list[str], name: str) -> None:
    """Raise a ValueError naming the columns of ``df`` that are missing and those present."""
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValueError(
            f"{name} DataFrame is missing column(s) {missing}; present columns: {df.columns}"
        )


def _check_types(edges: DataFrame, src: str, dst: str, weight: str | None, name: str) -> None:
    src_type = edges.schema[src].dataType
    dst_type = edges.schema[dst].dataType
    if src_type != dst_type:
        raise ValueError(
            f"{name}: columns {src!r} ({src_type.simpleString()}) and {dst!r} "
            f"({dst_type.simpleString()}) must have the same type; cast one of them"
        )
    if not isinstance(src_type, AtomicType):
        raise ValueError(
            f"{name}: vertex ids must be integers or strings, got {src_type.simpleString()} "
            f"in {src!r}"
        )
    if weight is not None and not isinstance(edges.schema[weight].dataType, NumericType):
        raise ValueError(
            f"{name}: weight column {weight!r} must be numeric, got "
            f"{edges.schema[weight].dataType.simpleString()}"
        )


def _validate_rows(raw: DataFrame, name: str) -> None:
    """One aggregation job: emptiness, null ids and bad weights, each with a clear error."""
    is_edge = F.col(DST).isNotNull()
    bad_weight = is_edge & (F.col(WEIGHT).isNull() | F.isnan(F.col(WEIGHT)))
    stats = raw.agg(
        F.count(F.lit(1)).alias("rows"),
        F.sum(F.col(SRC).isNull().cast("long")).alias("null_src"),
        F.sum(bad_weight.cast("long")).alias("null_weight"),
        F.sum((is_edge & (F.col(WEIGHT) < 0)).cast("long")).alias("negative"),
    ).first()
    if stats["rows"] == 0:
        raise ValueError(
            f"{name} DataFrame is empty: no rows to build a graph from; pass at least one edge "
            f"(or a row with a null dst to declare an isolated vertex)"
        )
    if stats["null_src"]:
        raise ValueError(
            f"{name}: {stats['null_src']} row(s) have a null source id; drop them or fill them"
        )
    if stats["null_weight"]:
        raise ValueError(
            f"{name}: {stats['null_weight']} edge(s) have a null or NaN weight; fill them "
            f"(e.g. with 1.0) or drop them before calling"
        )
    if stats["negative"]:
        raise ValueError(
            f"{name}: {stats['negative']} edge(s) have a negative weight; PageRank and "
            f"modularity need weights >= 0"
        )


def prepare_edges(
    edges: DataFrame,
    src: str = SRC,
    dst: str = DST,
    weight: str | None = None,
    name: str = "edges",
) -> tuple[DataFrame, DataFrame]:
    """Validate an edge list and return ``(directed_edges, vertices)``.

    Input: ``edges`` with columns ``src``, ``dst`` and optionally ``weight`` (numeric).
    Output: ``directed_edges[src, dst, weight: double]`` with duplicates summed and the
    vertex-declaration rows (null ``dst``) removed, and ``vertices[id]`` (distinct, every id in
    ``src`` or ``dst``). Runs one small aggregation job to validate; raises ValueError for an
    empty input, missing columns, null source ids, null/NaN or negative weights.
    """
    return collapse(edge_rows(edges, src, dst, weight, name))


def edge_rows(
    edges: DataFrame,
    src: str = SRC,
    dst: str = DST,
    weight: str | None = None,
    name: str = "edges",
) -> DataFrame:
    """The validated input rows as ``[src, dst, weight: double]``, duplicates and
    vertex-declaration rows (null ``dst``) still there: for an engine that sums per edge anyway
    and need not pay for collapsing duplicates first. Same checks and errors as
    ``prepare_edges`` (one small aggregation job)."""
    require_columns(edges, [src, dst] + ([weight] if weight else []), name)
    _check_types(edges, src, dst, weight, name)
    weight_col = F.col(weight).cast(DoubleType()) if weight else F.lit(1.0)
    raw = edges.select(
        F.col(src).alias(SRC), F.col(dst).alias(DST), weight_col.alias(WEIGHT)
    )
    _validate_rows(raw, name)
    return raw


def collapse(raw: DataFrame) -> tuple[DataFrame, DataFrame]:
    """``edge_rows`` -> ``prepare_edges``' ``(directed_edges, vertices)``."""
    directed = (
        raw.where(F.col(DST).isNotNull())
        .groupBy(SRC, DST)
        .agg(F.sum(WEIGHT).alias(WEIGHT))
    )
    return directed, _vertex_ids(raw)


def _vertex_ids(raw: DataFrame) -> DataFrame:
    return (
        raw.select(F.col(SRC).alias(ID))
        .union(raw.where(F.col(DST).isNotNull()).select(F.col(DST).alias(ID)))
        .distinct()
    )


def prepare_undirected(
    edges: DataFrame,
    src: str = SRC,
    dst: str = DST,
    weight: str | None = None,
    name: str = "edges",
) -> tuple[DataFrame, DataFrame]:
    """``(undirected_edges(directed), vertices)`` for ``prepare_edges``' ``directed`` and
    ``vertices``, the pairs summed in one aggregation of the input rows rather than two (the
    sum over both directions of the sums per direction is the sum per pair). Same checks and
    errors as ``prepare_edges``."""
    raw = edge_rows(edges, src, dst, weight, name)
    return undirected_edges(raw.where(F.col(DST).isNotNull())), _vertex_ids(raw)


def undirected_edges(directed: DataFrame) -> DataFrame:
    """Collapse a directed edge list to an undirected one.

    Input: ``[src, dst, weight]``. Output: ``[src, dst, weight]`` with ``src <= dst`` and one
    row per unordered pair; ``u->v`` and ``v->u`` are the same undirected edge and their weights
    add up (what an undirected multigraph collapsed to a simple graph holds). Self-loops stay as
    one row ``(u, u, w)``.
    """
    return (
        directed.select(
            F.least(SRC, DST).alias(SRC), F.greatest(SRC, DST).alias(DST), F.col(WEIGHT)
        )
        .groupBy(SRC, DST)
        .agg(F.sum(WEIGHT).alias(WEIGHT))
    )


def id_type(vertices: DataFrame) -> DataType:
    """The Spark type of the vertex ids."""
    return vertices.schema[ID].dataType


def name_by_smallest_member(membership: DataFrame, column: str = COMMUNITY) -> DataFrame:
    """``[id, node]`` (any group label in ``node``) -> ``[id, column]`` where ``column`` is the
    smallest ``id`` sharing the label."""
    names = membership.groupBy("node").agg(F.min(ID).alias(column))
    return membership.join(names, on="node", how="inner").select(ID, column)


def checkpoint_now(df: DataFrame, checkpoint_dir: str | None = None) -> DataFrame:
    """Compute ``df`` now and cut its lineage (one job, which also fills ``observe`` metrics).

    With ``checkpoint_dir`` a reliable checkpoint is written there (it survives executor loss;
    the folder is set on the SparkContext and the files are left for the caller to clean);
    otherwise a local checkpoint (executor storage: cheaper, lost with an executor).

    The checkpoint keeps the optimiser's size estimate of the plan it came from, and a join's
    estimate is the product of its inputs'. Fine when each step reads the previous one once
    (the estimate's digits grow linearly); use ``materialise`` when a step reads it several
    times.
    """
    if checkpoint_dir:
        df.sparkSession.sparkContext.setCheckpointDir(checkpoint_dir)
        return df.checkpoint(eager=True)
    return df.localCheckpoint(eager=True)


def checkpoint_by(df: DataFrame, column: str, checkpoint_dir: str | None = None) -> DataFrame:
    """``checkpoint_now`` of ``df`` hash-partitioned by ``column`` into
    ``spark.sql.shuffle.partitions`` partitions, with that partitioning known to what reads it:
    a later aggregation or join by ``column`` (or by columns that include it) then runs inside
    each partition, without a shuffle.

    Spark records a checkpoint's partitioning only when adaptive execution is off for the job
    that writes it (with it on, the shuffle's partitions may be coalesced, so none is recorded).
    The setting is switched off for this one job and restored; what reads the checkpoint plans
    adaptively as usual.
    """
    spark = df.sparkSession
    partitions = int(spark.conf.get("spark.sql.shuffle.partitions"))
    with temporary_conf(spark, {"spark.sql.adaptive.enabled": "false"}):
        return checkpoint_now(df.repartition(partitions, column), checkpoint_dir)


def materialise(df: DataFrame, checkpoint_dir: str | None = None) -> DataFrame:
    """Like ``checkpoint_now`` but with a fresh size estimate (one more, narrow, job).

    The frame is cached and counted (one job, which fills any ``observe`` metrics), then
    checkpointed from the cache, and the cache dropped: a filled cache reports its real size, so
    the checkpoint does too. Without this, a step that joins the previous result k times
    multiplies the estimate's digits by k per iteration: numbers with millions of digits and
    minutes of planning after a few dozen iterations.
    """
    cached = df.cache()
    cached.count()
    cut = checkpoint_now(cached, checkpoint_dir)
    cached.unpersist()
    return cut
