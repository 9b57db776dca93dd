"""Louvain (and Leiden) community detection on an undirected weighted edge list.

Conventions shared by every engine and by ``modularity``:

- the graph is undirected: rows ``u->v`` and ``v->u`` (and duplicate rows) are one edge whose
  weight is their sum, i.e. ``networkx.Graph`` built by adding each row's weight;
- a self-loop ``u->u`` is an edge of weight ``w`` that adds ``2w`` to ``u``'s degree;
- a row with a null ``dst`` declares an isolated vertex; isolated vertices (and vertices with
  only a self-loop) end up in a community of their own;
- ``community`` is the **smallest member id** of the community, of the same type as ``id``: stable
  across engines and runs, readable, and no global numbering job is needed.

Engines: ``spark`` (distributed Louvain on DataFrames, see ``_louvain_spark``), ``igraph``
(the edges come to the driver: ``community_multilevel``, or ``community_leiden`` with
``method="leiden"``, which guarantees connected communities), ``auto`` (igraph when the graph
has at most ``igraph_max_edges`` undirected edges, else spark).
"""

from __future__ import annotations

import logging
import random

import igraph as ig
import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import StructField, StructType

from mktpipe.graph._edges import (
    COMMUNITY,
    DST,
    ID,
    SRC,
    WEIGHT,
    collect_local,
    id_type,
    prepare_edges,
    undirected_edges,
)
from mktpipe.graph._louvain_spark import louvain_spark

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
    igraph_max_edges: int = 200_000,
) -> DataFrame:
    """Communities maximising modularity (with ``resolution``) of the undirected graph.

    Input: ``edges[src, dst, weight?]`` (ids int or string, same type; weights numeric >= 0,
    not null; null ``dst`` = isolated vertex). Output: ``DataFrame[id, community]``, one row per
    vertex; ``community`` is the smallest id in the community. ``seed`` makes a run
    reproducible (None: a fresh random seed). ``method="leiden"`` needs the igraph engine.
    Spark engine knobs: ``max_levels``, ``max_rounds`` (per level), ``min_gain`` (stop when a
    level adds less modularity), ``checkpoint_dir`` (reliable checkpoints instead of local);
    after the last level it runs one refinement pass of vertex moves on the original graph.
    ``igraph_max_edges``: ``auto``'s limit for bringing the edges to the driver.
    ``modularity(edges, result, ...)`` measures the result on the same graph.
    """
    if engine not in ENGINES:
        raise ValueError(f"louvain engine must be one of {ENGINES}, got {engine!r}")
    if method not in METHODS:
        raise ValueError(f"louvain method must be one of {METHODS}, got {method!r}")
    if resolution <= 0:
        raise ValueError(f"louvain resolution must be > 0, got {resolution}")
    if max_levels < 1 or max_rounds < 1:
        raise ValueError(
            f"louvain max_levels and max_rounds must be >= 1, got {max_levels}, {max_rounds}"
        )
    directed, vertices = prepare_edges(edges, src, dst, weight)
    undirected = undirected_edges(directed)
    chosen = _choose_engine(undirected, engine, method, igraph_max_edges)
    log.info("louvain engine=%s method=%s (asked %s)", chosen, method, engine)
    if chosen == "igraph":
        return _louvain_igraph(undirected, vertices, resolution, seed, method)
    membership = louvain_spark(
        undirected, vertices, resolution, seed, max_levels, max_rounds, min_gain, checkpoint_dir
    )
    return name_by_smallest_member(membership)


def _choose_engine(undirected: DataFrame, engine: str, method: str, max_edges: int) -> str:
    if method == "leiden" and engine == "spark":
        raise ValueError("method='leiden' is only available with engine='igraph' (or 'auto')")
    if engine != "auto":
        return engine
    if undirected.count() <= max_edges:
        return "igraph"
    if method == "leiden":
        raise ValueError(
            f"method='leiden' runs on the driver with igraph, and the graph has more than "
            f"igraph_max_edges={max_edges} edges; raise that limit or use method='louvain'"
        )
    return "spark"


def name_by_smallest_member(membership: DataFrame) -> DataFrame:
    """``[id, node]`` (any community label in ``node``) -> ``[id, community]`` where
    ``community`` is the smallest ``id`` sharing the label."""
    names = membership.groupBy("node").agg(F.min(ID).alias(COMMUNITY))
    return membership.join(names, on="node", how="inner").select(ID, COMMUNITY)


def _louvain_igraph(
    undirected: DataFrame,
    vertices: DataFrame,
    resolution: float,
    seed: int | None,
    method: str,
) -> DataFrame:
    """igraph's multilevel (Louvain) or Leiden on the driver; small graphs only."""
    # zero-weight edges change no modularity; without them a weightless graph is edgeless
    ids, local = collect_local(undirected.where(F.col(WEIGHT) > 0), vertices)
    graph = ig.Graph(n=len(ids), edges=list(zip(local["s"], local["t"])), directed=False)
    weights = local["w"].tolist() if len(local) else None
    if seed is not None:
        # python-igraph draws from Python's `random` module by default; use a private one
        ig.set_random_number_generator(random.Random(seed))
    try:
        if not len(local):
            clustering = ig.VertexClustering(graph, list(range(len(ids))))
        elif method == "leiden":
            clustering = graph.community_leiden(
                objective_function="modularity", weights=weights, resolution=resolution,
                n_iterations=-1,
            )
        else:
            clustering = graph.community_multilevel(weights=weights, resolution=resolution)
    finally:
        if seed is not None:
            ig.set_random_number_generator(random)
    local_result = pd.DataFrame({ID: ids, "label": clustering.membership})
    local_result[COMMUNITY] = local_result.groupby("label")[ID].transform("min")
    ids_type = id_type(vertices)
    schema = StructType(
        [StructField(ID, ids_type, False), StructField(COMMUNITY, ids_type, False)]
    )
    return undirected.sparkSession.createDataFrame(local_result[[ID, COMMUNITY]], schema=schema)
