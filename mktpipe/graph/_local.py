"""Graphs small enough for the driver, for the igraph engines, without vertex ids on the driver.

Vertices get a dense index ``0..n-1`` in Spark: their rank in id order, computed as each
row's position inside its partition of a global sort by id (``monotonically_increasing_id``
less the partition's smallest) plus the number of rows in the partitions before it (one small
row per partition comes to the driver). The index is checkpointed, so it cannot change between
the jobs that read it. Edges are joined to it in Spark, and only three numeric arrays (source
index, target index, weight) come to the driver, through Arrow: 24 bytes an edge whatever the
type and length of the ids; there they are sorted by (source, target, weight).

Both orders matter: igraph's seeded algorithms (Louvain, label propagation) visit vertices and
adjacency lists in index and edge order, so a numbering or an edge list that followed Spark's
partitioning gave other communities for the same graph and seed when the partitioning changed
(another ``spark.sql.shuffle.partitions``, AQE coalescing or not, a cluster's parallelism).

Results go back as arrays by index, are joined to the ids in Spark, and each group is named by
its smallest member id there.

``choose`` is what the engines' ``auto`` means: this local path when the graph has at most
``max_edges`` edges and its arrays (with igraph's own copies) take at most ``DRIVER_SHARE`` of
the driver JVM's heap, a proxy for the memory the user gave the driver; the distributed engine
otherwise. Vertices count too: a graph of few edges but tens of millions of users stays in
Spark.
"""

from __future__ import annotations

import logging
from typing import NamedTuple

import igraph as ig
import numpy as np
import pandas as pd
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import DoubleType, LongType, StructField, StructType

from mktpipe.graph._edges import DST, ID, SRC, WEIGHT, checkpoint_now, name_by_smallest_member
from mktpipe.session import from_pandas

log = logging.getLogger(__name__)

VID = "_vid"
DEFAULT_MAX_EDGES = 2_000_000  # the engines' igraph_max_edges (graph.igraph_max_edges)
# driver bytes per edge and per vertex on the local path: Arrow batches, numpy arrays, igraph's
# edge list and weights. Measured: Louvain then PageRank on 1M edges over 100k string ids
# raised the driver's Python RSS by 230 MB
BYTES_PER_EDGE = 256
BYTES_PER_VERTEX = 64
DRIVER_SHARE = 0.25


class LocalGraph(NamedTuple):
    """``n`` vertices; edge ``i`` goes from ``src[i]`` to ``dst[i]`` with weight ``weight[i]``;
    ``index[id, _vid]`` (in Spark) says which id each vertex index stands for."""

    n: int
    src: np.ndarray
    dst: np.ndarray
    weight: np.ndarray
    index: DataFrame

    def igraph(self, directed: bool) -> ig.Graph:
        return ig.Graph(n=self.n, edges=np.column_stack([self.src, self.dst]),
                        directed=directed)

    def weights(self) -> list[float] | None:
        """The weights as igraph takes them (None for a graph without edges)."""
        return self.weight.tolist() if len(self.weight) else None

    def subset(self, keep: np.ndarray) -> LocalGraph:
        """The edges where ``keep`` is true (same vertices)."""
        return self._replace(src=self.src[keep], dst=self.dst[keep], weight=self.weight[keep])

    def positive(self) -> LocalGraph:
        """Without zero-weight edges."""
        return self.subset(self.weight > 0)

    def without_loops(self) -> LocalGraph:
        return self.subset(self.src != self.dst)

    def undirected(self) -> LocalGraph:
        """``u->v`` and ``v->u`` as one edge whose weight is their sum (what
        ``_edges.undirected_edges`` does in Spark), ordered by (lower, higher) vertex index."""
        pairs = pd.DataFrame({"s": np.minimum(self.src, self.dst),
                              "t": np.maximum(self.src, self.dst), "w": self.weight})
        summed = pairs.groupby(["s", "t"], sort=True, as_index=False)["w"].sum()
        return self._replace(src=summed["s"].to_numpy(np.int64),
                             dst=summed["t"].to_numpy(np.int64),
                             weight=summed["w"].to_numpy(np.float64))

    def _by_index(self, column: str, values, dtype) -> DataFrame:
        """``[_vid, column]``: one value per vertex index, as a Spark frame."""
        kind = LongType() if dtype is np.int64 else DoubleType()
        return from_pandas(
            self.index.sparkSession,
            pd.DataFrame({VID: np.arange(self.n, dtype=np.int64),
                          column: np.asarray(values, dtype=dtype)}),
            schema=StructType([StructField(VID, LongType(), False),
                               StructField(column, kind, False)]))

    def values(self, values, column: str) -> DataFrame:
        """``[id, column]`` from one float per vertex index."""
        return self.index.join(self._by_index(column, values, np.float64), on=VID,
                               how="inner").select(ID, column)

    def partition(self, membership, column: str) -> DataFrame:
        """``[id, column]`` from one group label per vertex index; each group is named by its
        smallest member id (of the ids' type)."""
        labelled = self.index.join(self._by_index("node", membership, np.int64), on=VID,
                                   how="inner")
        return name_by_smallest_member(labelled.select(ID, "node"), column)


def dense_index(vertices: DataFrame) -> tuple[DataFrame, int]:
    """``([id, _vid], n)``: ids numbered ``0..n-1`` in id order in Spark, checkpointed (a
    sort and two small jobs)."""
    # a global sort (range partitions in id order, each sorted): the numbers are the ids' ranks
    # whatever the partitioning, so a seeded igraph run gives the same result locally and on a
    # cluster (the module docstring)
    tagged = checkpoint_now(vertices.select(ID).orderBy(ID).select(
        ID, F.spark_partition_id().alias("_p"), F.monotonically_increasing_id().alias("_m")))
    per_partition = sorted(
        (r["_p"], r["rows"], r["first"]) for r in
        tagged.groupBy("_p").agg(F.count(F.lit(1)).alias("rows"), F.min("_m").alias("first"))
        .collect())  # one row per partition
    shift, before = [], 0
    for p, rows, first in per_partition:
        shift += [F.lit(p), F.lit(before - first)]
        before += rows
    if not per_partition:
        return tagged.select(ID, F.lit(0).cast("long").alias(VID)).limit(0), 0
    vid = F.col("_m") + F.element_at(F.create_map(*shift), F.col("_p"))
    # ids are never null here (ints or strings); the coalesce tells Spark so, so the engines'
    # outputs declare id non-nullable as their callers expect
    known = F.coalesce(F.col(ID), F.lit(0).cast(tagged.schema[ID].dataType)).alias(ID)
    return tagged.select(known, vid.alias(VID)), before


def to_local(edges: DataFrame, vertices: DataFrame) -> LocalGraph:
    """``edges[src, dst, weight]`` over ``vertices[id]`` as a ``LocalGraph``."""
    index, n = dense_index(vertices)
    ends = (
        edges.join(index.select(F.col(ID).alias(SRC), F.col(VID).alias("_s")), on=SRC)
        .join(index.select(F.col(ID).alias(DST), F.col(VID).alias("_t")), on=DST)
        .select("_s", "_t", F.col(WEIGHT).cast("double").alias("_w"))
        .toPandas()  # three numbers an edge; the caller checked the size with `choose`
    )
    src, dst, weight = (ends["_s"].to_numpy(np.int64), ends["_t"].to_numpy(np.int64),
                        ends["_w"].to_numpy(np.float64))
    order = edge_order(src, dst, weight, n)  # the join's order follows the partitioning
    return LocalGraph(n, src[order], dst[order], weight[order], index)


def edge_order(src: np.ndarray, dst: np.ndarray, weight: np.ndarray, n: int) -> np.ndarray:
    """The permutation that sorts edges by (source, target, weight): one key sort (0.2 s at a
    million edges), the weights only where a pair repeats."""
    key = src * max(n, 1) + dst  # < n**2: exact in int64 for any graph the driver holds
    order = np.argsort(key, kind="stable")
    ordered = key[order]
    if len(ordered) > 1 and np.any(ordered[1:] == ordered[:-1]):
        order = np.lexsort((weight, key))
    return order


def driver_heap_bytes(spark: SparkSession) -> int:
    """The driver JVM's maximum heap (what ``spark.driver.memory`` gave it)."""
    return int(spark.sparkContext._jvm.java.lang.Runtime.getRuntime().maxMemory())


def fits(edges: int, vertices: int, heap_bytes: int) -> bool:
    """Whether a graph of this size may come to the driver (see the module docstring)."""
    return edges * BYTES_PER_EDGE + vertices * BYTES_PER_VERTEX <= DRIVER_SHARE * heap_bytes


def choose(edges: DataFrame, vertices: DataFrame, engine: str, max_edges: int) -> str:
    """The engine ``auto`` means for this graph: ``igraph`` when it has at most ``max_edges``
    edges and ``fits`` the driver's memory, else ``spark``; any other engine is kept.
    One count job, and a second (vertices) only when the edges are few enough."""
    if engine != "auto":
        return engine
    m = edges.count()
    if m > max_edges:
        return "spark"
    n = vertices.count()
    heap = driver_heap_bytes(edges.sparkSession)
    if not fits(m, n, heap):
        log.info("graph of %d edges and %d vertices needs more than %.0f%% of the driver's "
                 "%.0f MiB heap: spark engine", m, n, 100 * DRIVER_SHARE, heap / 2**20)
        return "spark"
    return "igraph"
