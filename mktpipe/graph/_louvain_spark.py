"""Distributed Louvain on DataFrames (the ``spark`` engine of ``louvain``).

Each level works on a weighted graph held as two DataFrames (see ``_louvain_frames``):

- ``adj[u, v, w]``: every undirected edge ``u != v`` in both directions;
- ``nodes[node, k, loop]``: weighted degree ``k`` (a self-loop adds twice its weight) and the
  self-loop weight ``loop`` (at level > 0, the weight inside the community the node stands for).

Local moving is synchronous: in a round every node computes, with joins and aggregations, the
modularity gain of joining each neighbouring community and proposes the best. Moving all at once
can undo itself (two singletons swap) or overshoot, so three guards apply:

1. the minimum-label rule of Lu, Halappanavar & Kalyanaraman (2015): a singleton only joins
   another singleton community whose label is smaller, so a pair never swaps;
2. only a seeded random fraction ``p`` of the proposing nodes moves (hash of node, seed,
   level, round), as in Que et al. (2015); ``p`` starts at 1, and is at least one expected
   mover;
3. the round is kept only if the exact modularity went up; otherwise it is undone and ``p``
   halves. Modularity therefore never decreases. A level ends when no node proposes, or ``p``
   falls below ``P_MIN``, or a round adds (or its proposers promise) less than
   ``ROUND_MIN_GAIN``, or after ``max_rounds``.

The first level (where most moves happen) runs differently by default: sequential Louvain in
blocks of vertices, one job for the level (``_louvain_blocks``); the rounds above then serve
the levels above it that are too large for the driver, and the final refinement pass.

A round is one Spark job (cache, then checkpoint from the cache to cut the lineage): it scores
the candidate partition and, through an ``Observation``, returns its exact modularity and how
many nodes moved and propose to move next. When a level stops improving, communities become the
nodes of the next level's graph (internal weight as self-loops) and the process repeats. Nothing
but those few numbers reaches the driver. Labels are vertex ids throughout, so ids keep their
type; the caller names each final community by its smallest member id.
"""

from __future__ import annotations

import logging
import random

import igraph as ig
from pyspark.sql import Column, DataFrame, Observation
from pyspark.sql import functions as F

from mktpipe.graph import _local
from mktpipe.graph._edges import (
    BROADCAST_MAX_NODES,
    COMMUNITY,
    DST,
    ID,
    SRC,
    WEIGHT,
    materialise,
)
from mktpipe.graph._louvain_blocks import BLOCK_NODES, block_count, block_level
from mktpipe.graph._louvain_frames import (
    MIN_DELTA_Q,
    aggregate,
    best_moves,
    level0_graph,
    relabel,
)

log = logging.getLogger(__name__)

P_MIN = 1.0 / 64  # below this moving fraction a level is considered converged
# A round that adds less modularity than this ends its level (after being kept): the tail of
# a level's rounds moves a few hundred nodes each for gains of 1e-5..1e-3, at the cost of a
# whole round over the edges; the next level (or igraph on the graph of communities) and the
# final refinement pass move those nodes at a fraction of the cost. The "threshold" heuristic
# of Lu, Halappanavar & Kalyanaraman (2015), who end early phases at a coarser gain. Nor is a
# round run when the proposers' single-move gains (which the scoring job observes) add up to
# less: it would most likely be such a last round (a refinement pass that finds a handful of
# nodes to move then costs one job, not two).
ROUND_MIN_GAIN = 1e-3


def louvain_spark(
    undirected: DataFrame,
    vertices: DataFrame,
    resolution: float = 1.0,
    seed: int | None = None,
    max_levels: int = 20,
    max_rounds: int = 50,
    min_gain: float = 1e-7,
    checkpoint_dir: str | None = None,
    local_max_edges: int = 0,
    block_nodes: int = BLOCK_NODES,
) -> DataFrame:
    """Louvain communities of an undirected graph ``undirected[src, dst, weight]`` (one row per
    pair) over ``vertices[id]``. Output ``[id, node]``: each vertex and the label of its final
    community (a member's id). Stops when a level gains less than ``min_gain`` modularity, then
    refines: one more local-moving pass over the original vertices, starting from the final
    partition, lets vertices that an early merge put on the wrong side move.

    ``block_nodes`` > 0: the first level runs in blocks of at most that many vertices
    (``_louvain_blocks``); 0: in synchronous rounds like the others."""
    seed = random.randrange(2**31) if seed is None else seed
    adj, nodes = level0_graph(undirected, vertices, checkpoint_dir)
    total = nodes.agg(F.sum("k"), F.count(F.lit(1)), F.sum(F.col("k") * F.col("k")),
                      F.sum("loop")).first()
    two_m, broadcast = total[0] or 0.0, total[1] <= BROADCAST_MAX_NODES
    # from the checkpointed nodes (every vertex), not the input: the refinement pass reads it
    membership = nodes.select(F.col("node").alias(ID), "node")
    if two_m <= 0:
        return membership
    level_graph, first = (adj, nodes), 0
    if block_nodes > 0:
        singletons_q = _singletons_quality(total[3], total[2], two_m, resolution)
        blocked = _block_first_level(adj, nodes, total[1], two_m, resolution, seed,
                                     block_nodes, checkpoint_dir, broadcast, singletons_q)
        if blocked:
            state, level_graph = blocked
            membership, first = relabel(membership, state), 1
    level = first
    for level in range(first, max_levels):
        coarse = _coarse_graph(level_graph) if level and local_max_edges > 0 else None
        if coarse and _local.choose(*coarse, "auto", local_max_edges) == "igraph":
            # the graph of communities is small: its remaining levels on the driver
            membership = relabel(membership, _coarse_levels_igraph(*coarse, resolution, seed))
            log.info("louvain spark levels %d+: on igraph (the graph of communities is small)",
                     level)
            break
        state, start_q, end_q = _local_moving(
            level_graph[0], _singletons(level_graph[1]), two_m, resolution, (seed, level),
            max_rounds, checkpoint_dir, broadcast,
        )
        log.info("louvain spark level %d: modularity %.6f -> %.6f", level, start_q, end_q)
        if end_q <= start_q + MIN_DELTA_Q:
            break
        # lazy: one join per level, and each state is already a checkpoint
        membership = relabel(membership, state)
        if end_q - start_q < min_gain:
            break
        # the previous level's frames are checkpoints, freed when no longer referenced
        level_graph = aggregate(level_graph[0], state, checkpoint_dir, broadcast)
    if level > 0:
        final = membership.select(F.col(ID).alias("node"), F.col("node").alias(COMMUNITY))
        start = nodes.join(final, on="node", how="inner").select(
            "node", "k", "loop", COMMUNITY, F.lit(False).alias("moved")
        )
        state, start_q, end_q = _local_moving(
            adj, start, two_m, resolution, (seed, -1), max_rounds, checkpoint_dir, broadcast
        )
        log.info("louvain spark refinement: modularity %.6f -> %.6f", start_q, end_q)
        membership = state.select(F.col("node").alias(ID), F.col(COMMUNITY).alias("node"))
    return membership


def _singletons_quality(loops: float, k_squared: float, two_m: float,
                        resolution: float) -> float:
    """Modularity of a level's graph with every node alone: its self-loops only."""
    return 2.0 * (loops or 0.0) / two_m - resolution * (k_squared or 0.0) / two_m**2


def _block_first_level(
    adj: DataFrame, nodes: DataFrame, n_nodes: int, two_m: float, resolution: float, seed: int,
    block_nodes: int, checkpoint_dir: str | None, broadcast: bool, start_q: float,
) -> tuple[DataFrame, tuple[DataFrame, DataFrame]] | None:
    """The first level in blocks (``_louvain_blocks``), kept only if it raises the modularity:
    ``(state, next level's graph)`` or None."""
    blocks = block_count(n_nodes, adj.count() // 2, block_nodes)
    log.debug("louvain spark level 0: %d blocks", blocks)
    found = block_level(adj, resolution, seed, blocks)
    state = materialise(
        nodes.join(found, on="node", how="left").select(
            "node", "k", "loop", F.coalesce(F.col(COMMUNITY), F.col("node")).alias(COMMUNITY)),
        checkpoint_dir)
    next_adj, next_nodes = aggregate(adj, state, checkpoint_dir, broadcast)
    next_nodes = materialise(next_nodes, checkpoint_dir)
    sums = next_nodes.agg(F.sum(F.col("k") * F.col("k")), F.sum("loop")).first()
    end_q = _singletons_quality(sums[1], sums[0], two_m, resolution)
    log.info("louvain spark level 0 in %d blocks: modularity %.6f -> %.6f", blocks, start_q,
             end_q)
    if end_q <= start_q + MIN_DELTA_Q:
        return None
    return state, (next_adj, next_nodes)


def _coarse_graph(level_graph: tuple[DataFrame, DataFrame]) -> tuple[DataFrame, DataFrame]:
    """A level's graph ``(adj, nodes)`` as ``(edges[src, dst, weight], vertices[id])``: each
    node a community of the level below, each pair once, the internal weight a self-loop
    (igraph, like this engine, counts a loop twice in the degree)."""
    adj, nodes = level_graph
    edges = adj.where(F.col("u") < F.col("v")).select(
        F.col("u").alias(SRC), F.col("v").alias(DST), F.col("w").alias(WEIGHT)
    ).unionByName(nodes.where(F.col("loop") > 0).select(
        F.col("node").alias(SRC), F.col("node").alias(DST), F.col("loop").alias(WEIGHT)))
    return edges, nodes.select(F.col("node").alias(ID))


def _coarse_levels_igraph(edges: DataFrame, vertices: DataFrame, resolution: float,
                          seed: int) -> DataFrame:
    """igraph's multilevel on a ``_coarse_graph``; returns ``[node, community]``."""
    local = _local.to_local(edges, vertices)
    ig.set_random_number_generator(random.Random(seed))
    try:
        membership = local.igraph(directed=False).community_multilevel(
            weights=local.weights(), resolution=resolution).membership
    finally:
        ig.set_random_number_generator(random)
    return local.partition(membership, COMMUNITY).select(F.col(ID).alias("node"), COMMUNITY)


def _singletons(nodes: DataFrame) -> DataFrame:
    """The partition where each node is alone: ``[node, k, loop, community, moved]``."""
    return nodes.select(
        "node", "k", "loop", F.col("node").alias(COMMUNITY), F.lit(False).alias("moved")
    )


def _local_moving(
    adj: DataFrame,
    partition: DataFrame,
    two_m: float,
    resolution: float,
    seed_level: tuple[int, int],
    max_rounds: int,
    checkpoint_dir: str | None,
    broadcast: bool = False,
) -> tuple[DataFrame, float, float]:
    """Guarded synchronous rounds from ``partition`` ``[node, k, loop, community, moved]``.

    Returns the accepted state ``[node, k, loop, community, best, proposes]`` (materialised),
    the modularity at the start and at the end.
    """
    state, scores = _score(adj, partition, two_m, resolution, checkpoint_dir, broadcast)
    quality, proposing, promise = scores["q"], scores["proposing"], scores["promise"]
    start_quality, fraction = quality, 1.0
    for round_ in range(max_rounds):
        if not proposing or promise < ROUND_MIN_GAIN:
            break
        draw = _uniform(F.col("node"), *seed_level, round_)
        # at least one expected mover, so a small fraction does not waste rounds on nobody
        share = max(fraction, 1.0 / proposing)
        moves = F.col("proposes") & (draw < F.lit(share))
        partition = state.select(
            "node", "k", "loop",
            F.when(moves, F.col("best")).otherwise(F.col(COMMUNITY)).alias(COMMUNITY),
            moves.alias("moved"),
        )
        candidate, scores = _score(adj, partition, two_m, resolution, checkpoint_dir,
                                   broadcast)
        log.debug(
            "louvain spark level %d round %d: fraction %.3f moved %d of %d, q %.6f -> %.6f",
            seed_level[1], round_, share, scores["moved"], proposing, quality, scores["q"],
        )
        if not scores["moved"]:
            continue  # nobody drawn this round: draw again rather than shrink the fraction
        if scores["q"] > quality + MIN_DELTA_Q:
            gain = scores["q"] - quality
            state, quality, proposing = candidate, scores["q"], scores["proposing"]
            promise = scores["promise"]
            if gain < ROUND_MIN_GAIN:
                break
        else:
            fraction /= 2.0
            if fraction < P_MIN:
                break
    return state, start_quality, quality


def _uniform(node: Column, seed: int, level: int, round_: int) -> Column:
    """A reproducible pseudo-random number in [0, 1) per (node, seed, level, round)."""
    hashed = F.xxhash64(node, F.lit(seed), F.lit(level), F.lit(round_))
    return F.pmod(hashed, F.lit(1_000_003)) / F.lit(1_000_003.0)


def _score(
    adj: DataFrame,
    partition: DataFrame,
    two_m: float,
    resolution: float,
    checkpoint_dir: str | None,
    broadcast: bool = False,
) -> tuple[DataFrame, dict]:
    """Score a partition ``[node, k, loop, community, moved]`` in one job.

    Returns the materialised state ``[node, k, loop, community, best, proposes]`` (each node's
    best community and whether it proposes to move there) and, observed while it is computed,
    ``q`` (the partition's exact modularity), ``proposing`` and ``moved`` (node counts).
    """
    best = best_moves(adj, partition, two_m, resolution, broadcast)
    observed = Observation()
    state = materialise(
        best.observe(
            observed,
            F.sum("cur_k_in").alias("internal"),
            F.sum(F.col("k") * F.col("cur_tot")).alias("tot_sq"),
            F.sum("loop").alias("loops"),
            F.sum(F.col("proposes").cast("long")).alias("proposing"),
            F.sum(F.col("moved").cast("long")).alias("moved"),
            F.sum("delta").alias("delta"),
        ).select("node", "k", "loop", COMMUNITY, "best", "proposes"),
        checkpoint_dir,
    )
    m = observed.get
    # internal counts each inside edge from both ends; sum_u k_u * tot(c(u)) = sum_c tot_c^2
    quality = (m["internal"] + 2.0 * m["loops"]) / two_m - resolution * m["tot_sq"] / two_m**2
    return state, {"q": quality, "proposing": m["proposing"], "moved": m["moved"],
                   "promise": m["delta"] or 0.0}
