"""Label propagation (LPA, Raghavan, Albert & Kumara 2007): a cheap community baseline.

Every vertex starts with its own label and repeatedly adopts the label that weighs most among
its neighbours; densely connected groups settle on one label. It optimises nothing (unlike
Louvain, which maximises modularity), so it serves as a cheap baseline beside Louvain: each
round is one join and two aggregations, with no modularity bookkeeping, and ``modularity`` of
both results says how much Louvain's extra work buys. Its weaknesses: it can settle on one giant
community or many small ones, results depend on update order and tie-breaking, and the
synchronous version can oscillate (two vertices, or a creator and its followers, swapping labels
forever), hence ``max_iter``.

Conventions (those of ``louvain``): undirected graph (``u->v`` and ``v->u`` rows and duplicates
are one edge whose weight is their sum); a null ``dst`` declares an isolated vertex; self-loops
and zero-weight edges cast no vote; a vertex without votes keeps its label (an isolated vertex is
its own community). ``community`` is the **smallest member id** of the community, same type as
``id``.

Engines:

- ``spark``: synchronous LPA on DataFrames. In a round every vertex sums, per label, the edge
  weights of its neighbours holding it, and proposes the label with the highest sum; ties go to
  the smallest label (sums are rounded to 1e-9 first, so float noise cannot break a tie
  differently between runs). All proposals apply at once, except one that returns a vertex to
  the label it had before the last round: that is a swap (on a star, the creator takes the
  followers' label while they take the creator's, every round), and it applies on a coin flip
  (a hash of vertex, ``seed`` and round), which ends the swap within a few rounds. Measured on
  follow-like graphs (followers around a few creators per community), plain synchronous
  LPA still had hundreds of labels flipping after 20 rounds; with the coin it converged in
  10-15. Stops when no vertex proposes a change, or after ``max_iter`` rounds; each round is
  one checkpointed job. Deterministic for a given ``seed`` (None means 0).
- ``igraph``: the edges come to the driver and igraph's ``community_label_propagation`` runs
  (asynchronous: random update order and tie-breaking; runs to consensus and ignores
  ``max_iter``); ``seed`` makes it reproducible (None: a fresh random one).
- ``auto``: igraph when the graph has at most ``igraph_max_edges`` undirected edges, else spark.
"""

from __future__ import annotations

import logging
import random

import igraph as ig
from pyspark.sql import DataFrame, Observation
from pyspark.sql import functions as F

from mktpipe.graph import _local
from mktpipe.graph._edges import (
    COMMUNITY,
    DST,
    ID,
    SRC,
    WEIGHT,
    checkpoint_now,
    id_type,
    materialise,
    name_by_smallest_member,
    prepare_undirected,
)

log = logging.getLogger(__name__)

ENGINES = ("auto", "spark", "igraph")
TIE_DIGITS = 9  # vote sums are compared after rounding to this many decimals


def label_propagation(
    edges: DataFrame,
    src: str = SRC,
    dst: str = DST,
    weight: str | None = None,
    max_iter: int = 20,
    engine: str = "auto",
    seed: int | None = None,
    checkpoint_dir: str | None = None,
    igraph_max_edges: int = _local.DEFAULT_MAX_EDGES,
) -> DataFrame:
    """Label-propagation communities of the undirected, optionally weighted graph.

    Input: ``edges[src, dst, weight?]`` (ids int or string, same type; weights numeric >= 0,
    not null; null ``dst`` = isolated vertex). Output: ``DataFrame[id, community]``, one row per
    vertex; ``community`` is the smallest id in the community. ``max_iter``: rounds of the spark
    engine (synchronous LPA can oscillate; reaching the limit logs a warning and returns the
    last labels). ``seed``: the spark engine's coin for swapping vertices (None: 0, so the
    engine is deterministic) and igraph's random order (None: a fresh one).
    ``checkpoint_dir``: reliable checkpoints for the spark engine instead of local ones.
    ``igraph_max_edges``: ``auto``'s limit for bringing the edges to the driver.
    ``modularity(edges, result, ...)`` scores the result, e.g. against ``louvain``'s.
    """
    if engine not in ENGINES:
        raise ValueError(f"label_propagation engine must be one of {ENGINES}, got {engine!r}")
    if max_iter < 1:
        raise ValueError(f"label_propagation max_iter must be >= 1, got {max_iter}")
    undirected, vertices = prepare_undirected(edges, src, dst, weight)
    # self-loops and zero weights cast no vote; what is left is the graph LPA sees
    voting = undirected.where((F.col(SRC) != F.col(DST)) & (F.col(WEIGHT) > 0))
    chosen = _local.choose(voting, vertices, engine, igraph_max_edges)
    log.info("label_propagation engine=%s (asked %s)", chosen, engine)
    if chosen == "igraph":
        return _lpa_igraph(voting, vertices, seed)
    spark_seed = 0 if seed is None else seed  # deterministic by default
    labels = _lpa_spark(voting, vertices, max_iter, spark_seed, checkpoint_dir)
    return name_by_smallest_member(labels.select(ID, F.col("label").alias("node")))


def _lpa_igraph(voting: DataFrame, vertices: DataFrame, seed: int | None) -> DataFrame:
    """igraph's label propagation on the driver; small graphs only."""
    local = _local.to_local(voting, vertices)
    return local.partition(lpa_membership(local, seed), COMMUNITY)


def lpa_membership(local: _local.LocalGraph, seed: int | None) -> list[int]:
    """igraph's label propagation on a driver-side undirected graph without self-loops or
    zero weights, by vertex index."""
    graph = local.igraph(directed=False)
    if not graph.ecount():
        return list(range(local.n))
    if seed is not None:
        # python-igraph draws from Python's `random` module by default; use a private one
        ig.set_random_number_generator(random.Random(seed))
    try:
        return graph.community_label_propagation(weights=local.weights()).membership
    finally:
        if seed is not None:
            ig.set_random_number_generator(random)


def _lpa_spark(
    voting: DataFrame, vertices: DataFrame, max_iter: int, seed: int, checkpoint_dir: str | None
) -> DataFrame:
    """Synchronous rounds from one label per vertex (its id). Output ``[id, label]``.

    Each round is one job (materialised: cached, counted, checkpointed) that also observes how
    many vertices want another label; none ends the loop.
    """
    adj = voting.select(
        F.col(SRC).alias("u"), F.col(DST).alias("v"), F.col(WEIGHT).alias("w")
    ).unionByName(
        voting.select(F.col(DST).alias("u"), F.col(SRC).alias("v"), F.col(WEIGHT).alias("w"))
    )
    # read by every round; its size estimate comes from the input once, so no materialise
    adj = checkpoint_now(adj, checkpoint_dir)
    labels = vertices.select(
        ID, F.col(ID).alias("label"), F.lit(None).cast(id_type(vertices)).alias("prev")
    )
    proposing = None
    for iteration in range(1, max_iter + 1):
        observed = Observation()
        step = _propagate(adj, labels, seed, iteration).observe(
            observed,
            F.sum(F.col("proposes").cast("long")).alias("proposing"),
            F.sum(F.col("held").cast("long")).alias("held"),
        )
        # the labels are read twice per round (votes and the previous label): materialise
        labels = materialise(step, checkpoint_dir).select(ID, "label", "prev")
        proposing, held = observed.get["proposing"] or 0, observed.get["held"] or 0
        log.debug("label_propagation spark round %d: %d vertices proposed a new label, %d "
                  "held back", iteration, proposing, held)
        if not proposing:
            log.info("label_propagation spark converged after %d round(s)", iteration)
            break
    else:
        log.warning(
            "label_propagation spark stopped at max_iter=%d with %d label(s) still changing; "
            "returning the last labels", max_iter, proposing,
        )
    return labels.select(ID, "label")


def _propagate(adj: DataFrame, labels: DataFrame, seed: int, iteration: int) -> DataFrame:
    """One synchronous round: ``[id, label, prev, proposes, held]`` from ``adj[u, v, w]`` (both
    directions) and ``labels[id, label, prev]`` (``prev``: the label before the last round).

    A vertex's proposal is the neighbour label with the highest summed weight (ties: the
    smallest label); a vertex without neighbours keeps its own. Synchronous updates can swap
    forever (a follower takes its creator's label while the creator takes the followers'): a
    proposal that returns to ``prev`` is such a swap, and it is applied only on a seeded coin
    flip per (vertex, round), which breaks the swap within a few rounds.
    """
    neighbour_labels = labels.select(F.col(ID).alias("v"), F.col("label").alias("nl"))
    votes = (
        adj.join(neighbour_labels, on="v", how="inner")
        .groupBy("u", "nl")
        .agg(F.round(F.sum("w"), TIE_DIGITS).alias("score"))
    )
    # the minimum of (-score, label): the highest score, then the smallest label
    best = votes.groupBy(F.col("u").alias(ID)).agg(
        F.min(F.struct((-F.col("score")).alias("neg_score"), F.col("nl").alias("label")))
        .getField("label")
        .alias("best")
    )
    proposes = F.coalesce(F.col("best") != F.col("label"), F.lit(False))
    swapping = proposes & F.coalesce(F.col("best") == F.col("prev"), F.lit(False))
    heads = F.pmod(F.xxhash64(F.col(ID), F.lit(seed), F.lit(iteration)), F.lit(2)) == 0
    held = swapping & heads
    return labels.join(best, on=ID, how="left").select(
        ID,
        F.when(proposes & ~held, F.col("best")).otherwise(F.col("label")).alias("label"),
        F.col("label").alias("prev"),
        proposes.alias("proposes"),
        held.alias("held"),
    )
