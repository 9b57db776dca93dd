"""Shortest-path centralities on Spark DataFrames: betweenness (Brandes) and closeness, exact
when every vertex is a source, estimated from a seeded sample of ``k`` sources otherwise.

Both come from one multi-source breadth-first search over the directed, unweighted graph
(edge weights are interaction strengths, not distances; self-loops and parallel edges do not
change shortest paths). The state is one row per (source, vertex) reached, so a level costs a
join of the frontier with the edges, an aggregate and an anti-join with what was reached
before; each level is checkpointed, and nothing per vertex or per edge reaches the driver.

* **Forward** (level by level): ``sigma(s, v)``, the number of shortest paths from ``s`` to
  ``v``, and ``d(s, v)``.
* **Backward** (Brandes' dependency accumulation, deepest level first):
  ``delta(s, v) = sigma(s, v) * sum over edges v->w with d(s, w) = d(s, v) + 1 of
  (1 + delta(s, w)) / sigma(s, w)``; betweenness(v) = sum over sources s != v of delta(s, v).
* **Closeness** of ``u`` uses the distances *to* ``u`` (networkx's convention for directed
  graphs) with the Wasserman-Faust correction for unreachable vertices:
  ``(r / (n - 1)) * (r / sum of d(s, u))`` over the r sources reaching ``u``.

Normalisation and scaling follow networkx (``normalized=True``): betweenness is divided by
``(n - 1)(n - 2)``; with a sample of ``k < n`` sources it is multiplied by ``n / k`` (as
``networkx.betweenness_centrality(G, k=k)`` does), and closeness estimates ``r`` and the mean
distance from the sampled sources (Eppstein-Wang): ``(r_k / m) * (r_k / sum_k d)`` where
``m`` is the number of sampled sources other than ``u``. With ``k >= n`` both equal networkx's
exact values (tests compare them).

Engines (``engine``), with equal results to float rounding:

* ``spark``: the DataFrame search above, distributed.
* ``igraph``: the graph comes to the driver as three arrays (``_local.to_local``); igraph's
  Brandes (``Graph.betweenness(sources=...)``) gives the dependencies from the same sampled
  sources and one breadth-first search per source the distances. Only the ``k`` sampled ids
  (and their vertex indices) are collected besides the arrays.
* ``auto``: igraph when the graph fits the driver (``_local.choose``: at most
  ``igraph_max_edges`` edges and within the driver's memory share), else spark.
"""

from __future__ import annotations

import logging

import igraph as ig
import numpy as np
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from mktpipe.graph import _local
from mktpipe.graph._edges import DST, ID, SRC, checkpoint_now, prepare_edges

log = logging.getLogger(__name__)

BETWEENNESS = "betweenness_centrality"
CLOSENESS = "closeness_centrality"
ENGINES = ("auto", "spark", "igraph")
_S, _V = "_source", "_vertex"


def sample_sources(vertices: DataFrame, k: int, seed: int = 42) -> DataFrame:
    """``k`` vertices (all when ``k`` >= their number) ordered by a seeded hash: a
    deterministic sample that stays a DataFrame (nothing collected)."""
    return (vertices.select(F.col(ID).alias(_S))
            .orderBy(F.xxhash64(F.col(_S), F.lit(seed)), F.col(_S)).limit(k))


def path_centralities(edges: DataFrame, src: str = SRC, dst: str = DST, k: int | None = None,
                      seed: int = 42, max_depth: int = 64,
                      checkpoint_dir: str | None = None, engine: str = "auto",
                      igraph_max_edges: int = _local.DEFAULT_MAX_EDGES) -> DataFrame:
    """``DataFrame[id, betweenness_centrality, closeness_centrality]`` for every vertex of
    ``edges`` (rows with a null ``dst`` declare isolated vertices), from ``k`` seeded sources
    (None: every vertex, exact). ``max_depth`` bounds the search (a longer shortest path raises
    ValueError rather than silently truncating). ``engine``: see the module docstring."""
    if k is not None and k < 1:
        raise ValueError(f"path centralities: k must be >= 1 or None, got {k}")
    if engine not in ENGINES:
        raise ValueError(f"path centralities engine must be one of {ENGINES}, got {engine!r}")
    directed, vertex_ids = prepare_edges(edges, src, dst, None, "path centralities")
    vertices = vertex_ids.cache()
    try:
        chosen = _local.choose(directed, vertices, engine, igraph_max_edges)
        log.info("path centralities engine=%s (asked %s)", chosen, engine)
        if chosen == "igraph":
            local = _local.to_local(directed, vertices)
            return path_frame(local, k, seed, max_depth)
        return _path_centralities_spark(directed, vertices, k, seed, max_depth, checkpoint_dir)
    finally:
        vertices.unpersist()


def path_frame(local: _local.LocalGraph, k: int | None, seed: int,
               max_depth: int = 64) -> DataFrame:
    """:func:`path_centralities` of a driver-side graph (the igraph engine): the same sampled
    sources as the spark engine (:func:`sample_sources` over ``local.index``), their vertex
    indices collected (at most ``k`` rows), the values joined back to the ids in Spark."""
    if k is None or k >= local.n:
        sources = None
    else:
        chosen = sample_sources(local.index.select(ID), k, seed)
        sources = np.array(sorted(r[0] for r in local.index.join(
            chosen.select(F.col(_S).alias(ID)), ID).select(_local.VID).collect()),
            dtype=np.int64)  # k rows
    betweenness, closeness = path_values(local, sources, max_depth)
    return (local.values(betweenness, BETWEENNESS)
            .join(local.values(closeness, CLOSENESS), ID)
            .select(ID, BETWEENNESS, CLOSENESS))


def path_values(local: _local.LocalGraph, sources: np.ndarray | None,
                max_depth: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """(betweenness, closeness) by vertex index from the ``sources`` vertex indices (None:
    every vertex), scaled as the spark engine scales them (module docstring). Edge weights,
    self-loops and parallel edges do not change shortest paths, so the search graph is the
    simple directed graph of ``local``'s edges."""
    n = local.n
    keep = local.src != local.dst
    arcs = np.unique(np.column_stack([local.src[keep], local.dst[keep]]), axis=0)
    graph = ig.Graph(n=n, edges=arcs, directed=True)
    order = np.arange(n, dtype=np.int64) if sources is None else sources
    k = len(order)
    dependency = np.asarray(graph.betweenness(
        directed=True, sources=None if sources is None else order.tolist()), dtype=np.float64)
    reach = np.zeros(n, dtype=np.float64)
    total = np.zeros(n, dtype=np.float64)
    for s in order.tolist():  # one BFS per source: the distances from it
        visited, starts, _ = graph.bfs(s, mode="out")
        depth = np.repeat(np.arange(len(starts) - 1), np.diff(starts))
        if len(starts) - 2 > max_depth:
            raise ValueError(f"path centralities: a shortest path is longer than max_depth "
                             f"{max_depth}; raise it")
        reached = np.asarray(visited[1:], dtype=np.int64)  # the source itself is depth 0
        reach[reached] += 1.0
        total[reached] += depth[1:]
    is_source = np.zeros(n, dtype=np.float64)
    is_source[order] = 1.0
    others = k - is_source
    with np.errstate(divide="ignore", invalid="ignore"):
        closeness = np.where((reach > 0) & (others > 0),
                             (reach / others) * (reach / np.where(total > 0, total, 1.0)), 0.0)
    scale = (n / k) / ((n - 1) * (n - 2)) if n > 2 else 0.0
    log.info("path centralities on the driver: %d vertices, %d arcs, %d sources (%s)", n,
             len(arcs), k, "exact" if k >= n else "sampled")
    return dependency * scale, closeness


def _path_centralities_spark(directed: DataFrame, vertices: DataFrame, k: int | None,
                             seed: int, max_depth: int,
                             checkpoint_dir: str | None) -> DataFrame:
    """The spark engine (module docstring)."""
    n = vertices.count()
    arcs = directed.where(F.col(SRC) != F.col(DST)).select(SRC, DST).cache()  # distinct
    n_sources = n if k is None else min(k, n)
    sources = sample_sources(vertices, n_sources, seed).cache()  # read by forward and combine
    try:
        levels = _forward(arcs, sources, max_depth, checkpoint_dir)
        deltas = _backward(arcs, levels, checkpoint_dir)
        result = _combine(vertices, sources, deltas, n, n_sources)
        result = checkpoint_now(result, checkpoint_dir)
    finally:
        for frame in (arcs, sources):
            frame.unpersist()
    log.info("path centralities: %d vertices, %d sources (%s), %d BFS levels", n, n_sources,
             "exact" if n_sources >= n else "sampled", len(levels) - 1)
    return result


def _forward(arcs: DataFrame, sources: DataFrame, max_depth: int,
             checkpoint_dir: str | None) -> list[DataFrame]:
    """[level 0, level 1, ...]: rows (source, vertex, sigma) first reached at that depth."""
    frontier = sources.select(_S, F.col(_S).alias(_V), F.lit(1.0).alias("sigma"))
    frontier = checkpoint_now(frontier, checkpoint_dir)
    levels, reached = [frontier], frontier.select(_S, _V)
    for depth in range(1, max_depth + 2):
        step = (frontier.join(arcs, frontier[_V] == arcs[SRC])
                .groupBy(_S, F.col(DST).alias(_V)).agg(F.sum("sigma").alias("sigma"))
                .join(reached, [_S, _V], "left_anti"))
        step = checkpoint_now(step, checkpoint_dir)
        if step.isEmpty():
            return levels
        if depth > max_depth:
            raise ValueError(f"path centralities: a shortest path is longer than max_depth "
                             f"{max_depth}; raise it")
        levels.append(step)
        reached = checkpoint_now(reached.unionByName(step.select(_S, _V)), checkpoint_dir)
        frontier = step
    return levels


def _backward(arcs: DataFrame, levels: list[DataFrame],
              checkpoint_dir: str | None) -> list[DataFrame]:
    """Per level >= 1: rows (source, vertex, delta), Brandes' dependencies."""
    deltas: list[DataFrame | None] = [None] * len(levels)
    below = levels[-1].select(_S, _V, "sigma", F.lit(0.0).alias("delta"))
    deltas[-1] = below
    for depth in range(len(levels) - 1, 1, -1):
        coef = (below.join(arcs, below[_V] == arcs[DST])
                .select(_S, F.col(SRC).alias(_V),
                        ((1.0 + F.col("delta")) / F.col("sigma")).alias("c"))
                .groupBy(_S, _V).agg(F.sum("c").alias("c")))
        upper = (levels[depth - 1].join(coef, [_S, _V], "left")  # only predecessors match
                 .select(_S, _V, "sigma",
                         (F.col("sigma") * F.coalesce(F.col("c"), F.lit(0.0))).alias("delta")))
        below = checkpoint_now(upper, checkpoint_dir)
        deltas[depth - 1] = below
    return [d for d in deltas[1:]]


def _combine(vertices: DataFrame, sources: DataFrame, deltas: list[DataFrame], n: int,
             n_sources: int) -> DataFrame:
    """Per vertex u: betweenness from the dependencies, closeness from the sources reaching u
    (delta rows cover every (source, vertex) at depth >= 1, one list item per depth)."""
    reached = None
    for depth, delta in enumerate(deltas, start=1):
        part = delta.select(_V, "delta", F.lit(depth).alias("d"))
        reached = part if reached is None else reached.unionByName(part)
    scale_b = (n / n_sources) / ((n - 1) * (n - 2)) if n > 2 else 0.0
    is_source = sources.select(F.col(_S).alias(ID), F.lit(1).alias("is_source"))
    base = vertices.select(ID).join(is_source, ID, "left")
    if reached is None:
        return base.select(ID, F.lit(0.0).alias(BETWEENNESS), F.lit(0.0).alias(CLOSENESS))
    sums = reached.groupBy(F.col(_V).alias(ID)).agg(
        F.sum("delta").alias("dep"), F.count(F.lit(1)).alias("r"), F.sum("d").alias("dist"))
    others = F.lit(n_sources) - F.coalesce(F.col("is_source"), F.lit(0))  # sources other than u
    closeness = F.when((F.col("r") > 0) & (others > 0),
                       (F.col("r") / others) * (F.col("r") / F.col("dist"))).otherwise(0.0)
    return (base.join(sums, ID, "left")
            .select(ID, (F.coalesce(F.col("dep"), F.lit(0.0)) * F.lit(scale_b))
                    .alias(BETWEENNESS),
                    F.coalesce(closeness, F.lit(0.0)).cast("double").alias(CLOSENESS)))
