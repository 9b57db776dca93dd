"""The ``spark`` Louvain's first level in blocks: sequential Louvain inside each block, in
parallel on the executors.

Synchronous rounds over the whole graph (``_louvain_spark._local_moving``) need a Spark job a
round, and a first level needs 15-25 of them (each round only moves a node towards the
communities its neighbours had at the round's start). Sequential local moving, where each node
sees the moves made before it, gets there in a few sweeps. So the first level is split, as in
Wickramaarachchi, Frincu, Small & Prasanna, *Fast parallel algorithm for unfolding of
communities in large graphs* (IEEE HPEC 2014): the vertices are cut into ``blocks`` by a hash
of their id; each block's graph is every edge with at least one end in the block (its own
vertices with all their edges, and the neighbours outside it as far as those edges reach);
igraph's multilevel runs on it in a pandas UDF (one task a block, C speed), and the block keeps
the communities of its own vertices (a community is named by its smallest own member, so
labels from different blocks never collide). The whole level is one Spark job; a block's
memory is bounded by ``BLOCK_NODES`` vertices and ``BLOCK_EDGES`` edges (an estimate, not
measured: about 150 bytes an edge in the Python worker, for igraph's graph, the weights and
pandas' columns).

Fewer, larger blocks are better. The blocks are a hash of the id, blind to the graph, so with
``b`` blocks only ``1/b`` of a vertex's neighbours share its block: the others are leaves of
its block's graph, and a community that igraph builds around them falls apart into pieces once
it is restricted to the block's own vertices. Measured on bench/graph.py's graph at 3 M edges:
2 blocks gave a first level of modularity 0.39 and the final result igraph's (0.7883, 2.4x its
time); 6 blocks gave 0.03, and the levels above had to do the work in synchronous rounds
(7.5x). So the bounds are memory bounds, set high: a graph that fits one task is one block.

Cutting a community between blocks leaves two pieces of it; the next level (on the graph of
these communities) merges them, as it merges any two communities, and the final refinement
pass of the engine lets single vertices move again. The engine keeps the level only when it
raises the modularity.

Results do not depend on Spark's partitioning: the blocks are a hash of the id, and inside a
block vertices are numbered in id order and edges sorted before igraph sees them (igraph's
seeded Louvain follows vertex and edge order; ``_local`` explains why that matters).
"""

from __future__ import annotations

import math
import random

import igraph as ig
import numpy as np
import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from mktpipe.graph._edges import COMMUNITY
from mktpipe.graph._local import edge_order

BLOCK_NODES = 250_000  # vertices a block owns at most
BLOCK_EDGES = 2_000_000  # undirected edges of a block's graph, about, at most


def block_count(nodes: int, pairs: int, block_nodes: int = BLOCK_NODES,
                block_edges: int = BLOCK_EDGES) -> int:
    """How many blocks a graph of ``nodes`` vertices and ``pairs`` undirected edges is cut
    into: enough that each owns at most ``block_nodes`` vertices and holds about
    ``block_edges`` edges (a block holds its own vertices' edges, so about ``pairs / blocks``
    plus the edges it shares with the others)."""
    return max(1, math.ceil(nodes / max(block_nodes, 1)), math.ceil(pairs / max(block_edges, 1)))


def block_of(column: str, blocks: int):
    """The block of a vertex id: a hash of the id (the same on every machine and partitioning),
    modulo ``blocks``."""
    return F.pmod(F.xxhash64(F.col(column)), F.lit(blocks)).cast("int")


def block_level(adj: DataFrame, resolution: float, seed: int, blocks: int) -> DataFrame:
    """Communities of the first level, ``[node, community]``: one row per vertex that has an
    edge (of weight > 0, to another vertex), its community named by a member id (of the ids'
    type).

    ``adj[u, v, w]``: the level's edges in both directions, no self-loops (``level0_graph``).
    One Spark job: row ``u -> v`` goes to ``u``'s block, which thus gets every edge of its own
    vertices; an edge inside a block arrives twice and is kept once (``u < v``).
    """
    rows = adj.select(block_of("u", blocks).alias("_b"), "u", "v", "w",
                      block_of("v", blocks).alias("_bv"))
    rows = rows.where((F.col("_bv") != F.col("_b")) | (F.col("u") < F.col("v")))
    kind = adj.schema["u"].dataType.simpleString()
    schema = f"node {kind}, {COMMUNITY} {kind}"
    return rows.groupBy("_b").applyInPandas(_block_communities(resolution, seed), schema)


def _block_communities(resolution: float, seed: int):
    """The pandas UDF: igraph's multilevel on one block's edges; its own vertices' communities
    (the first level of igraph's hierarchy: what one pass of local moving found)."""

    def run(block: pd.DataFrame) -> pd.DataFrame:
        number = int(block["_b"].iloc[0])
        ids, codes = np.unique(
            np.concatenate([block["u"].to_numpy(), block["v"].to_numpy()]), return_inverse=True)
        half = len(block)
        src, dst = codes[:half].astype(np.int64), codes[half:].astype(np.int64)
        weight = block["w"].to_numpy(np.float64)
        own = np.zeros(len(ids), dtype=bool)
        own[src] = True
        own[dst[block["_bv"].to_numpy() == number]] = True
        # each edge once, lower index first, in (source, target) order: rows arrive in the
        # shuffle's order, which follows the partitioning
        src, dst = np.minimum(src, dst), np.maximum(src, dst)
        order = edge_order(src, dst, weight, len(ids))
        src, dst, weight = src[order], dst[order], weight[order]
        graph = ig.Graph(n=len(ids), edges=np.column_stack([src, dst]), directed=False)
        ig.set_random_number_generator(random.Random(f"{seed}/{number}"))
        try:
            levels = graph.community_multilevel(
                weights=weight.tolist(), resolution=resolution, return_levels=True)
        finally:
            ig.set_random_number_generator(random)
        # no level when no move improves (igraph returns none for a graph without edges)
        first_level = levels[0].membership if levels else np.arange(len(ids))
        membership = np.asarray(first_level)[own]
        members = ids[own]  # in id order: the first of each community is its smallest
        first = pd.Series(members).groupby(membership, sort=False).transform("first")
        return pd.DataFrame({"node": members, COMMUNITY: first.to_numpy()})

    return run
