"""Connected components of an undirected edge list.

Conventions (those of ``louvain``): the graph is undirected, so ``u->v`` and ``v->u`` are one
edge; a row with a null ``dst`` declares an isolated vertex, and so does every id of the
optional ``vertices`` frame; a self-loop joins nothing. ``component`` is the **smallest vertex
id** of the component, of the same type as ``id`` (for strings, Spark's and Python's ordering
agree): stable across engines and runs, and no global numbering job is needed.

Engines:

- ``spark``: the large-star / small-star algorithm of Kiveris et al., "Connected Components in
  MapReduce and Beyond" (SoCC 2014), on DataFrames. It rewires the edges, each pointing from a
  larger id to a smaller one, until every component is a star around its smallest id; it needs
  O(log^2 n) rounds in theory and a handful in practice, where min-label propagation needs as
  many rounds as the graph's diameter (a long chain of users would take thousands). Each round
  is checkpointed; only a few numbers per round reach the driver.
- ``igraph``: the edges come to the driver and igraph's ``connected_components`` solves it.
- ``auto``: igraph when the graph has at most ``igraph_max_edges`` undirected edges, else spark.
"""

from __future__ import annotations

import logging

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from mktpipe.graph import _local
from mktpipe.graph._edges import (
    COMPONENT,
    DST,
    ID,
    SRC,
    checkpoint_now,
    prepare_undirected,
    require_columns,
)

log = logging.getLogger(__name__)

ENGINES = ("auto", "spark", "igraph")
BIG, SMALL = "big", "small"  # an edge of the spark engine points from the larger id to the smaller


def connected_components(
    edges: DataFrame,
    src: str = SRC,
    dst: str = DST,
    engine: str = "auto",
    vertices: DataFrame | None = None,
    checkpoint_dir: str | None = None,
    igraph_max_edges: int = _local.DEFAULT_MAX_EDGES,
    max_rounds: int = 100,
) -> DataFrame:
    """The connected component of every vertex of the undirected graph of ``edges``.

    Input: ``edges[src, dst]`` (ids int or string, same type; a null ``dst`` declares an
    isolated vertex; any other column, weights included, is ignored) and optionally
    ``vertices[id]`` (same type), more vertices, each its own component unless an edge joins
    it. Output: ``DataFrame[id, component]``, one row per vertex; ``component`` is the smallest
    id of the component (type of ``id``). ``checkpoint_dir``: reliable checkpoints for the
    spark engine instead of local ones; ``max_rounds``: its safety limit (a RuntimeError if it
    is reached, never a wrong answer). ``igraph_max_edges``: ``auto``'s limit for bringing the
    edges to the driver.
    """
    if engine not in ENGINES:
        raise ValueError(f"connected_components engine must be one of {ENGINES}, got {engine!r}")
    if max_rounds < 1:
        raise ValueError(f"connected_components max_rounds must be >= 1, got {max_rounds}")
    declared, name = _with_vertices(edges, src, dst, vertices)
    undirected, all_vertices = prepare_undirected(declared, src, dst, name=name)
    undirected = undirected.where(F.col(SRC) != F.col(DST))
    chosen = _local.choose(undirected, all_vertices, engine, igraph_max_edges)
    log.info("connected_components engine=%s (asked %s)", chosen, engine)
    if chosen == "igraph":
        return _components_igraph(undirected, all_vertices)
    return _components_spark(undirected, all_vertices, checkpoint_dir, max_rounds)


def _with_vertices(
    edges: DataFrame, src: str, dst: str, vertices: DataFrame | None
) -> tuple[DataFrame, str]:
    """``edges[src, dst]`` plus one ``[id, null]`` declaration row per extra vertex."""
    require_columns(edges, [src, dst], "edges")
    if vertices is None:
        return edges.select(src, dst), "edges"
    require_columns(vertices, [ID], "vertices")
    ids_type, src_type = vertices.schema[ID].dataType, edges.schema[src].dataType
    if ids_type != src_type:
        raise ValueError(
            f"connected_components: vertices column {ID!r} is {ids_type.simpleString()} but "
            f"edges column {src!r} is {src_type.simpleString()}; cast one of them"
        )
    declarations = vertices.select(
        F.col(ID).alias(src), F.lit(None).cast(edges.schema[dst].dataType).alias(dst)
    )
    return edges.select(src, dst).unionByName(declarations), "edges and vertices"


def _components_igraph(undirected: DataFrame, vertices: DataFrame) -> DataFrame:
    """igraph on the driver; small graphs only."""
    local = _local.to_local(undirected, vertices)
    return local.partition(components_membership(local), COMPONENT)


def components_membership(local: _local.LocalGraph) -> list[int]:
    """igraph's connected components of a driver-side undirected graph, by vertex index."""
    return local.igraph(directed=False).connected_components(mode="weak").membership


def _components_spark(
    undirected: DataFrame, vertices: DataFrame, checkpoint_dir: str | None, max_rounds: int
) -> DataFrame:
    """Alternate large-star and small-star until the edges form one star per component.

    Input: ``undirected[src, dst, weight]`` without self-loops (``src < dst``) and
    ``vertices[id]``. At the end every non-smallest vertex has exactly one edge, to its
    component's smallest id; vertices without an edge are their own component.
    """
    pairs = undirected.select(F.col(DST).alias(BIG), F.col(SRC).alias(SMALL))
    pairs, done = _cut(pairs, checkpoint_dir)
    rounds = 0
    while not done:
        if rounds == max_rounds:
            raise RuntimeError(
                f"connected_components (spark) did not converge in {max_rounds} rounds; raise "
                f"max_rounds or use engine='igraph' if the graph fits on the driver"
            )
        rounds += 1
        pairs, done = _cut(_small_star(_large_star(pairs)), checkpoint_dir)
    log.info("connected_components spark converged after %d round(s)", rounds)
    parent = pairs.select(F.col(BIG).alias(ID), F.col(SMALL).alias(COMPONENT))
    return vertices.join(parent, on=ID, how="left").select(
        ID, F.coalesce(F.col(COMPONENT), F.col(ID)).alias(COMPONENT)
    )


def _large_star(pairs: DataFrame) -> DataFrame:
    """Every edge ``(v, u)``, ``v > u``, becomes ``(v, m(u))``: ``u``'s larger neighbours
    attach to the smallest of ``u`` and its neighbours (``m(u)``, which is ``u`` or one of its
    smaller neighbours)."""
    lowest = pairs.groupBy(BIG).agg(F.min(SMALL).alias("m")).select(
        F.col(BIG).alias(SMALL), "m"
    )
    return (
        pairs.join(lowest, on=SMALL, how="left")
        .select(BIG, F.coalesce(F.col("m"), F.col(SMALL)).alias(SMALL))
        .distinct()
    )


def _small_star(pairs: DataFrame) -> DataFrame:
    """For each ``v`` with smaller neighbours ``N`` and ``m = min(N)``: ``v`` and every other
    member of ``N`` get an edge to ``m`` instead of their edge to ``v``."""
    lowest = pairs.groupBy(BIG).agg(F.min(SMALL).alias("m"))
    moved = (
        pairs.join(lowest, on=BIG, how="inner")
        .where(F.col(SMALL) != F.col("m"))
        .select(F.col(SMALL).alias(BIG), F.col("m").alias(SMALL))
    )
    return moved.unionByName(lowest.select(BIG, F.col("m").alias(SMALL))).distinct()


def _cut(pairs: DataFrame, checkpoint_dir: str | None) -> tuple[DataFrame, bool]:
    """Compute ``pairs`` once (cached), test whether it is a star forest, checkpoint it.

    Checkpointed every round: each round reads the previous edges four times, so without a cut
    the plan (and the optimiser's size estimate, see ``_edges.materialise``) would grow
    geometrically. The test is the round's only action besides the checkpoint itself.
    """
    cached = pairs.cache()
    done = _is_star_forest(cached)
    cut = checkpoint_now(cached, checkpoint_dir)
    cached.unpersist()
    return cut, done


def _is_star_forest(pairs: DataFrame) -> bool:
    """True when every vertex has at most one edge to a smaller id, and no vertex with such an
    edge is the target of another (one job). Then each component is a star around its
    smallest id, the fixed point of both operations."""
    parents = pairs.groupBy(BIG).agg(F.count(F.lit(1)).alias("n"))
    several = parents.agg(F.sum((F.col("n") > 1).cast("long")).alias("several"))
    chained = pairs.join(
        parents.select(F.col(BIG).alias(SMALL)), on=SMALL, how="left_semi"
    ).agg(F.count(F.lit(1)).alias("chained"))
    row = several.crossJoin(chained).first()
    return not row["several"] and not row["chained"]
