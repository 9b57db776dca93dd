"""Louvain (and Leiden) community detection on an undirected weighted edge list.

Conventions shared by every engine and by ``modularity``:

- the graph is undirected: rows ``u->v`` and ``v->u`` (and duplicate rows) are one edge whose
  weight is their sum, i.e. ``networkx.Graph`` built by adding each row's weight;
- a self-loop ``u->u`` is an edge of weight ``w`` that adds ``2w`` to ``u``'s degree;
- a row with a null ``dst`` declares an isolated vertex; isolated vertices (and vertices with
  only a self-loop) end up in a community of their own;
- ``community`` is the **smallest member id** of the community, of the same type as ``id``: stable
  across engines and runs, readable, and no global numbering job is needed.

Engines: ``spark`` (distributed Louvain on DataFrames, see ``_louvain_spark``; its first level
runs as sequential Louvain in blocks of vertices on the executors, see ``_louvain_blocks``),
``igraph`` (the edges come to the driver: ``community_multilevel``, or ``community_leiden`` with
``method="leiden"``, which guarantees connected communities), ``auto`` (igraph when the graph
has at most ``igraph_max_edges`` undirected edges and fits a quarter of the driver's heap, see
``_local``; else spark).
"""

from __future__ import annotations

import logging
import random

import igraph as ig
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from mktpipe.graph import _local
from mktpipe.graph._edges import (
    COMMUNITY,
    DST,
    SRC,
    WEIGHT,
    name_by_smallest_member,
    prepare_undirected,
)
from mktpipe.graph._louvain_blocks import BLOCK_NODES
from mktpipe.graph._louvain_spark import louvain_spark

__all__ = ["louvain", "name_by_smallest_member"]

log = logging.getLogger(__name__)

ENGINES = ("auto", "spark", "igraph")
METHODS = ("louvain", "leiden")


def louvain(
    edges: DataFrame,
    src: str = SRC,
    dst: str = DST,
    weight: str | None = None,
    resolution: float = 1.0,
    engine: str = "auto",
    seed: int | None = None,
    method: str = "louvain",
    max_levels: int = 20,
    max_rounds: int = 50,
    min_gain: float = 1e-7,
    checkpoint_dir: str | None = None,
    igraph_max_edges: int = _local.DEFAULT_MAX_EDGES,
    block_nodes: int = BLOCK_NODES,
) -> DataFrame:
    """Communities maximising modularity (with ``resolution``) of the undirected graph.

    Input: ``edges[src, dst, weight?]`` (ids int or string, same type; weights numeric >= 0,
    not null; null ``dst`` = isolated vertex). Output: ``DataFrame[id, community]``, one row per
    vertex; ``community`` is the smallest id in the community. ``seed`` makes a run
    reproducible (None: a fresh random seed). ``method="leiden"`` needs the igraph engine.
    Spark engine knobs: ``max_levels``, ``max_rounds`` (per level), ``min_gain`` (stop when a
    level adds less modularity), ``checkpoint_dir`` (reliable checkpoints instead of local);
    after the last level it runs one refinement pass of vertex moves on the original graph.
    ``igraph_max_edges``: ``auto``'s limit for bringing the edges to the driver; the spark
    engine also runs its levels after the first on igraph once the graph of communities is
    that small (0: never). ``block_nodes``: the spark engine's first level runs as sequential
    Louvain in blocks of at most that many vertices, one task each (0: in synchronous rounds
    over the whole graph, like the levels above it).
    ``modularity(edges, result, ...)`` measures the result on the same graph.
    """
    if engine not in ENGINES:
        raise ValueError(f"louvain engine must be one of {ENGINES}, got {engine!r}")
    if method not in METHODS:
        raise ValueError(f"louvain method must be one of {METHODS}, got {method!r}")
    if resolution <= 0:
        raise ValueError(f"louvain resolution must be > 0, got {resolution}")
    if block_nodes < 0:
        raise ValueError(f"louvain block_nodes must be >= 0, got {block_nodes}")
    if max_levels < 1 or max_rounds < 1:
        raise ValueError(
            f"louvain max_levels and max_rounds must be >= 1, got {max_levels}, {max_rounds}"
        )
    undirected, vertices = prepare_undirected(edges, src, dst, weight)
    chosen = _choose_engine(undirected, vertices, engine, method, igraph_max_edges)
    log.info("louvain engine=%s method=%s (asked %s)", chosen, method, engine)
    if chosen == "igraph":
        return _louvain_igraph(undirected, vertices, resolution, seed, method)
    membership = louvain_spark(
        undirected, vertices, resolution, seed, max_levels, max_rounds, min_gain, checkpoint_dir,
        local_max_edges=igraph_max_edges, block_nodes=block_nodes,
    )
    return name_by_smallest_member(membership)


def _choose_engine(undirected: DataFrame, vertices: DataFrame, engine: str, method: str,
                   max_edges: int) -> str:
    if method == "leiden" and engine == "spark":
        raise ValueError("method='leiden' is only available with engine='igraph' (or 'auto')")
    chosen = _local.choose(undirected, vertices, engine, max_edges)
    if method == "leiden" and chosen == "spark":
        raise ValueError(
            f"method='leiden' runs on the driver with igraph, and the graph has more than "
            f"igraph_max_edges={max_edges} edges (or needs more than a quarter of the "
            f"driver's memory); raise that limit (or spark.driver_memory) or use "
            f"method='louvain'"
        )
    return chosen


def _louvain_igraph(
    undirected: DataFrame,
    vertices: DataFrame,
    resolution: float,
    seed: int | None,
    method: str,
) -> DataFrame:
    """igraph's multilevel (Louvain) or Leiden on the driver; small graphs only."""
    # zero-weight edges change no modularity; without them a weightless graph is edgeless
    local = _local.to_local(undirected.where(F.col(WEIGHT) > 0), vertices)
    membership = louvain_membership(local, resolution, seed, method)
    return local.partition(membership, COMMUNITY)


def louvain_membership(local: _local.LocalGraph, resolution: float, seed: int | None,
                       method: str = "louvain") -> list[int]:
    """igraph's multilevel (or Leiden) communities of a driver-side undirected graph whose
    edges all weigh more than 0, by vertex index."""
    graph = local.igraph(directed=False)
    if seed is not None:
        # python-igraph draws from Python's `random` module by default; use a private one
        ig.set_random_number_generator(random.Random(seed))
    try:
        if not graph.ecount():
            return list(range(local.n))
        if method == "leiden":
            return graph.community_leiden(
                objective_function="modularity", weights=local.weights(),
                resolution=resolution, n_iterations=-1,
            ).membership
        return graph.community_multilevel(
            weights=local.weights(), resolution=resolution).membership
    finally:
        if seed is not None:
            ig.set_random_number_generator(random)
