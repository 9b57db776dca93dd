"""Every driver-side score of one graph from one trip to the driver.

The graph stage scores each snapshot with PageRank, Louvain, connected components, label
propagation, eigenvector centrality and (sampled) betweenness and closeness. On a graph small
enough for the driver each of them, called on its own, validates the edges, counts them,
numbers the vertices (a checkpoint), brings the edges over through Arrow and sends its result
back: each time the same fixed cost, which on a snapshot of a few thousand edges is most of
the stage's time.
:func:`score_on_driver` pays it once: one validation, one size check, one
:func:`~mktpipe.graph._local.to_local` of the directed graph, the undirected variants derived
on the driver (as :func:`~mktpipe.graph._edges.undirected_edges` does in Spark), the same
per-algorithm functions the engines use, and one frame back.

Each result equals what the algorithm's own ``igraph`` (``local`` for eigenvector centrality)
engine gives: PageRank and eigenvector centrality to solver precision, components exactly;
Louvain and label propagation are seeded heuristics that see the edges in another order, so
they give a partition of the same quality, not necessarily the same one.
"""

from __future__ import annotations

import logging
from typing import NamedTuple

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import DoubleType, LongType, StructField, StructType

from mktpipe.graph import _local
from mktpipe.graph._edges import (
    COMMUNITY,
    COMPONENT,
    ID,
    PAGERANK,
    name_by_smallest_member,
    prepare_edges,
)
from mktpipe.graph.components import components_membership
from mktpipe.graph.eigenvector import EIGENVECTOR, eigenvector_values
from mktpipe.graph.label_propagation import lpa_membership
from mktpipe.graph.louvain import louvain_membership
from mktpipe.graph.modularity import modularity_local
from mktpipe.graph.pagerank import pagerank_values
from mktpipe.graph.paths import path_frame
from mktpipe.session import from_pandas

log = logging.getLogger(__name__)

_DRIVER_ENGINES = {"auto", "igraph", "local"}
_LOUVAIN, _COMPONENT, _LPA = "_louvain", "_component", "_lpa"


class DriverScores(NamedTuple):
    """``[id, pagerank]``, ``[id, community]`` (Louvain), ``[id, component]``,
    ``[id, community]`` (label propagation) and ``[id, eigenvector_centrality]``, all over one
    persisted frame (``base``; the caller unpersists it), and the modularity of both
    partitions (:func:`~mktpipe.graph.modularity.modularity_local`; Louvain's at its
    ``resolution``, label propagation's at 1)."""

    pagerank: DataFrame
    louvain: DataFrame
    components: DataFrame
    lpa: DataFrame
    eigenvector: DataFrame
    base: DataFrame
    louvain_modularity: float
    lpa_modularity: float
    paths: DataFrame | None = None  # [id, betweenness_centrality, closeness_centrality]


def applies(engines: dict[str, str]) -> bool:
    """Whether every engine asked for may run on the driver (``auto``, ``igraph``, ``local``)."""
    return all(engine in _DRIVER_ENGINES for engine in engines.values())


def score_on_driver(edges: DataFrame, weight: str | None, damping: float, resolution: float,
                    seed: int | None, max_edges: int, engines: dict[str, str],
                    path_sources: int | None = None) -> DriverScores | None:
    """The five scores of ``edges[src, dst, weight]`` (a null ``dst`` declares a vertex) on the
    driver, or None when an engine asks for Spark or, with any ``auto``, the graph does not fit
    the driver (``_local.choose``); the caller then runs each algorithm on its own.

    With a ``"paths"`` engine of ``auto`` or ``igraph`` in ``engines``, ``paths`` holds
    betweenness and closeness from ``path_sources`` seeded sources too
    (:func:`~mktpipe.graph.paths.path_frame`: the same sources and values as
    ``path_centralities``)."""
    path_engine = engines.get("paths")
    engines = {name: engine for name, engine in engines.items() if name != "paths"}
    if not applies(engines):
        return None
    directed, vertices = prepare_edges(edges, weight=weight)
    if "auto" in engines.values() and _local.choose(
            directed, vertices, "auto", max_edges) != "igraph":
        return None
    local = _local.to_local(directed, vertices)
    undirected = local.undirected()
    communities = louvain_membership(undirected.positive(), resolution, seed)
    lpa = lpa_membership(undirected.without_loops().positive(), seed)
    values = pd.DataFrame({
        _local.VID: np.arange(local.n, dtype=np.int64),
        PAGERANK: np.asarray(pagerank_values(local.positive(), damping), dtype=np.float64),
        EIGENVECTOR: np.asarray(eigenvector_values(undirected), dtype=np.float64),
        _LOUVAIN: np.asarray(communities, dtype=np.int64),
        _COMPONENT: np.asarray(components_membership(undirected.without_loops()),
                               dtype=np.int64),
        _LPA: np.asarray(lpa, dtype=np.int64),
    })

    def q(membership, at: float) -> float:
        return modularity_local(undirected.src, undirected.dst, undirected.weight, membership,
                                at)

    schema = StructType([StructField(_local.VID, LongType(), False),
                         StructField(PAGERANK, DoubleType(), False),
                         StructField(EIGENVECTOR, DoubleType(), False),
                         *[StructField(c, LongType(), False)
                           for c in (_LOUVAIN, _COMPONENT, _LPA)]])
    base = (local.index.join(from_pandas(edges.sparkSession, values, schema),
                             on=_local.VID, how="inner")
            .drop(_local.VID).persist())
    log.info("graph scored on the driver: %d vertices, %d edges", local.n, len(local.src))

    def partition(column: str, name: str) -> DataFrame:
        return name_by_smallest_member(base.select(ID, F.col(column).alias("node")), name)

    paths = (path_frame(local, path_sources, 42 if seed is None else seed)
             if path_engine in ("auto", "igraph") else None)
    return DriverScores(
        paths=paths, pagerank=base.select(ID, PAGERANK), louvain=partition(_LOUVAIN, COMMUNITY),
        components=partition(_COMPONENT, COMPONENT), lpa=partition(_LPA, COMMUNITY),
        eigenvector=base.select(ID, EIGENVECTOR), base=base,
        louvain_modularity=q(communities, resolution), lpa_modularity=q(lpa, 1.0))
