"""Exact modularity of a partition, computed in Spark with aggregations (nothing collected but
three numbers).

The graph is undirected: ``u->v`` and ``v->u`` rows are one edge whose weight is their sum
(see ``_edges.undirected_edges``), which is ``networkx.Graph`` built by adding each row's
weight to the edge. With ``m`` the total edge weight, ``L_c`` the weight of edges inside
community ``c`` (a self-loop counted once) and ``K_c`` the total degree of its vertices (a
self-loop adds twice its weight)::

    Q = sum_c  L_c / m  -  resolution * (K_c / 2m)^2

which is ``networkx.community.modularity(G, parts, weight="weight", resolution=resolution)``.
"""

from __future__ import annotations

import numpy as np
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from mktpipe.graph._edges import (
    COMMUNITY,
    DST,
    ID,
    SRC,
    WEIGHT,
    prepare_undirected,
    require_columns,
)


def modularity(
    edges: DataFrame,
    communities: DataFrame,
    src: str = SRC,
    dst: str = DST,
    weight: str | None = None,
    resolution: float = 1.0,
    id_col: str = ID,
    community_col: str = COMMUNITY,
) -> float:
    """Modularity of ``communities`` on the undirected graph of ``edges``.

    Inputs: ``edges[src, dst, weight?]`` (as for ``louvain``: null ``dst`` declares an isolated
    vertex, duplicates and both directions summed, weights >= 0) and
    ``communities[id_col, community_col]`` assigning every vertex exactly one community (ids
    absent from the graph are ignored). Output: the modularity, a float. Raises ValueError when
    a vertex has no community or several, or when the total edge weight is 0.
    """
    undirected, vertices = prepare_undirected(edges, src, dst, weight)
    require_columns(communities, [id_col, community_col], "communities")
    partition = communities.select(
        F.col(id_col).alias(ID), F.col(community_col).alias(COMMUNITY)
    )
    check_partition(vertices, partition)
    return modularity_of(undirected, partition, resolution)


def check_partition(vertices: DataFrame, partition: DataFrame) -> None:
    """Raise a ValueError unless every vertex has exactly one community (one job)."""
    per_id = partition.groupBy(ID).agg(
        F.countDistinct(COMMUNITY).alias("n_comm"), F.count(F.lit(1)).alias("n_rows")
    )
    missing, ambiguous = (
        vertices.join(per_id, on=ID, how="left")
        .agg(
            F.sum((F.col("n_rows").isNull() | (F.col("n_comm") == 0)).cast("long")),
            F.sum((F.col("n_comm") > 1).cast("long")),
        )
        .first()
    )
    if missing:
        raise ValueError(
            f"communities: {missing} vertex/vertices of the edges have no community (or a null "
            f"one); every vertex needs exactly one"
        )
    if ambiguous:
        raise ValueError(f"communities: {ambiguous} vertex/vertices are in several communities")


def modularity_of(undirected: DataFrame, partition: DataFrame, resolution: float = 1.0) -> float:
    """Modularity from an undirected edge list ``[src, dst, weight]`` (one row per pair,
    self-loops once) and a partition ``[id, community]`` covering its vertices."""
    comm_of = partition.select(F.col(ID), F.col(COMMUNITY))
    labelled = (
        undirected.join(comm_of.select(F.col(ID).alias(SRC), F.col(COMMUNITY).alias("c_src")),
                        on=SRC, how="inner")
        .join(comm_of.select(F.col(ID).alias(DST), F.col(COMMUNITY).alias("c_dst")),
              on=DST, how="inner")
    )
    inside = F.when(F.col("c_src") == F.col("c_dst"), F.col(WEIGHT)).otherwise(F.lit(0.0))
    totals = labelled.agg(F.sum(WEIGHT).alias("m"), F.sum(inside).alias("internal"))
    degree_sq = (
        labelled.select(F.col("c_src").alias(COMMUNITY), WEIGHT)
        .unionByName(labelled.select(F.col("c_dst").alias(COMMUNITY), WEIGHT))
        .groupBy(COMMUNITY)
        .agg(F.sum(WEIGHT).alias("k"))
        .agg(F.sum(F.col("k") * F.col("k")).alias("k_sq"))
    )
    m, internal, k_sq = totals.crossJoin(degree_sq).select("m", "internal", "k_sq").first()
    if not m:
        raise ValueError("modularity is undefined: the graph's total edge weight is 0")
    return internal / m - resolution * k_sq / (4.0 * m * m)


def modularity_local(src: np.ndarray, dst: np.ndarray, weight: np.ndarray, membership,
                     resolution: float = 1.0) -> float:
    """:func:`modularity_of` on the driver: an undirected edge list as index arrays (one entry
    per pair, self-loops once) and one community label per vertex index."""
    labels = np.asarray(membership, dtype=np.int64)
    m = float(weight.sum())
    if not m:
        raise ValueError("modularity is undefined: the graph's total edge weight is 0")
    inside = labels[src] == labels[dst]
    internal = float(weight[inside].sum())
    k = (np.bincount(labels[src], weights=weight, minlength=labels.size + 1)
         + np.bincount(labels[dst], weights=weight, minlength=labels.size + 1))
    return internal / m - resolution * float((k * k).sum()) / (4.0 * m * m)
