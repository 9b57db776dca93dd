"""The DataFrame transformations of the ``spark`` Louvain engine (``_louvain_spark`` drives them).

A level's graph is two DataFrames:

- ``adj[u, v, w]``: every undirected edge ``u != v`` in both directions;
- ``nodes[node, k, loop]``: weighted degree ``k`` (a self-loop adds twice its weight) and the
  self-loop weight ``loop`` (at level > 0, the weight inside the community the node stands for).

A partition is ``[node, k, loop, community, moved]``; labels are vertex ids of the input.
"""

from __future__ import annotations

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from mktpipe.graph._edges import (
    COMMUNITY,
    DST,
    ID,
    SRC,
    WEIGHT,
    checkpoint_by,
    checkpoint_now,
)

MIN_DELTA_Q = 1e-12  # modularity changes below this are rounding noise


def level0_graph(
    undirected: DataFrame, vertices: DataFrame, checkpoint_dir: str | None
) -> tuple[DataFrame, DataFrame]:
    """The first level's ``(adj, nodes)`` from ``undirected[src, dst, weight]`` (one row per
    pair, ``src <= dst``) and ``vertices[id]``; zero-weight edges are dropped (they change no
    gain), vertices without edges get ``k = 0``.

    One pass over the input: each pair in both directions and each self-loop once (as a row
    ``u = v``) are checkpointed together, partitioned by ``u``; the degrees and loop weights
    are then summed per ``u`` inside those partitions, without reading the input again.
    """
    pairs = undirected.where((F.col(SRC) != F.col(DST)) & (F.col(WEIGHT) > 0))
    loops = undirected.where(F.col(SRC) == F.col(DST))
    rows = checkpoint_by(
        pairs.select(F.col(SRC).alias("u"), F.col(DST).alias("v"), F.col(WEIGHT).alias("w"))
        .unionByName(pairs.select(F.col(DST).alias("u"), F.col(SRC).alias("v"),
                                  F.col(WEIGHT).alias("w")))
        .unionByName(loops.select(F.col(SRC).alias("u"), F.col(DST).alias("v"),
                                  F.col(WEIGHT).alias("w"))),
        "u", checkpoint_dir,
    )
    is_loop = F.col("u") == F.col("v")
    per_node = rows.groupBy(F.col("u").alias("node")).agg(
        F.sum(F.when(~is_loop, F.col("w"))).alias("k_adj"),
        F.sum(F.when(is_loop, F.col("w"))).alias("loop"),
    )
    loop = F.coalesce(F.col("loop"), F.lit(0.0))
    nodes = vertices.select(F.col(ID).alias("node")).join(per_node, on="node", how="left").select(
        "node", (F.coalesce(F.col("k_adj"), F.lit(0.0)) + 2 * loop).alias("k"),
        loop.alias("loop"),
    )
    # adj is read by every round (partitioned by u, so best_moves sums and picks per u without
    # moving the edges; the filter keeps that), nodes twice. Their size estimates come from the
    # input, once: no compounding, so no need for materialise's fresh estimate
    return rows.where(~is_loop), checkpoint_now(nodes, checkpoint_dir)


def _maybe_broadcast(df: DataFrame, broadcast: bool) -> DataFrame:
    return F.broadcast(df) if broadcast else df


def best_moves(
    adj: DataFrame, partition: DataFrame, two_m: float, resolution: float,
    broadcast: bool = False,
) -> DataFrame:
    """Each node's best community. Output ``[node, k, loop, community, best, proposes,
    cur_k_in, cur_tot, moved, delta]`` (``delta``: the modularity a proposing node would add
    by moving alone, else 0).

    Gain of moving ``u`` (degree ``k_u``) into community ``c``, relative to ``u`` alone, scaled
    by ``m``: ``k_in(u, c) - resolution * k_u * tot(c without u) / 2m``, where ``k_in`` is the
    weight from ``u`` to the members of ``c``. Ties go to the smaller label; ``proposes`` is true
    when the best other community beats staying and passes the min-label rule.

    ``adj`` is hash-partitioned by ``u`` (``level0_graph`` and ``aggregate`` make it so). With
    ``broadcast`` the per-node fields travel to it as broadcast tables, so summing the weight
    per (node, neighbouring community) and picking the best per node need no shuffle of the
    edges: a round shuffles node-sized data only. Without it (more nodes than a broadcast should
    hold) the edges are shuffled by ``v`` and back by ``u`` each round.
    """
    by_community = Window.partitionBy(COMMUNITY)  # no ordering: the frame is the community
    nodes = partition.select(
        "node", "k", "loop", COMMUNITY, "moved",
        F.sum("k").over(by_community).alias("tot"),
        F.count(F.lit(1)).over(by_community).alias("size"),
    )
    theirs = nodes.select(F.col("node").alias("v"), F.col(COMMUNITY).alias("c"), "tot", "size")
    own = nodes.select(F.col("node").alias("u"), F.col("k").alias("k_u"),
                       F.col(COMMUNITY).alias("cur"))
    links = (
        adj.join(_maybe_broadcast(theirs, broadcast), on="v", how="inner")
        .join(_maybe_broadcast(own, broadcast), on="u", how="inner")
        .groupBy("u", "c")
        .agg(F.sum("w").alias("k_in"),
             *[F.max(c).alias(c) for c in ("tot", "size", "k_u", "cur")])
    )
    is_cur = F.col("c") == F.col("cur")
    # for c other than u's own, tot(c) does not include u
    gain = F.col("k_in") - F.lit(resolution) * F.col("k_u") * F.col("tot") / F.lit(two_m)
    per_node = links.groupBy("u").agg(
        # other communities first (false < true), then the highest gain, then the smallest label
        F.min_by(F.struct("c", "size"), F.struct(is_cur, -gain, F.col("c"))).alias("best"),
        F.max(F.when(~is_cur, gain)).alias("best_gain"),
        F.sum(F.when(is_cur, F.col("k_in"))).alias("k_in_cur"),
    )
    cur_k_in = F.coalesce(F.col("k_in_cur"), F.lit(0.0))
    cur_gain = cur_k_in - F.lit(resolution) * F.col("k") * (F.col("tot") - F.col("k")) / F.lit(
        two_m)
    improves = (F.col("best_gain") - cur_gain) * F.lit(2.0 / two_m) > F.lit(MIN_DELTA_Q)
    singleton_swap = (
        (F.col("size") == 1) & (F.col("best.size") == 1) & (F.col("best.c") > F.col(COMMUNITY))
    )
    # a node without neighbours (no row in per_node) stays, as does one with no better move
    proposes = F.coalesce(improves & (F.col("best.c") != F.col(COMMUNITY)) & ~singleton_swap,
                          F.lit(False))
    # the modularity a proposer would add by moving alone
    delta = F.when(proposes, (F.col("best_gain") - cur_gain) * F.lit(2.0 / two_m)).otherwise(
        F.lit(0.0))
    return nodes.join(per_node, nodes["node"] == per_node["u"], how="left").select(
        "node", "k", "loop", COMMUNITY,
        F.coalesce(F.col("best.c"), F.col(COMMUNITY)).alias("best"),
        proposes.alias("proposes"), cur_k_in.alias("cur_k_in"), F.col("tot").alias("cur_tot"),
        "moved", delta.alias("delta"),
    )


def relabel(membership: DataFrame, state: DataFrame) -> DataFrame:
    """``[id, node]`` -> ``[id, node]`` with each node replaced by its community label."""
    return membership.join(state.select("node", COMMUNITY), on="node", how="inner").select(
        ID, F.col(COMMUNITY).alias("node")
    )


def aggregate(
    adj: DataFrame, state: DataFrame, checkpoint_dir: str | None, broadcast: bool = False
) -> tuple[DataFrame, DataFrame]:
    """The next level's graph: one node per community; edges between communities summed;
    edges inside a community become its self-loop weight. ``broadcast``: as in
    ``best_moves``."""
    comm = state.select("node", COMMUNITY)
    labelled = (
        adj.join(_maybe_broadcast(comm.select(F.col("node").alias("u"),
                                              F.col(COMMUNITY).alias("cu")), broadcast),
                 on="u", how="inner")
        .join(_maybe_broadcast(comm.select(F.col("node").alias("v"),
                                           F.col(COMMUNITY).alias("cv")), broadcast),
              on="v", how="inner")
    )
    # one pass over the edges: each pair of communities summed, a community with itself too;
    # each inside edge appears in both directions in adj, so its sum is halved
    summed = checkpoint_by(
        labelled.groupBy(F.col("cu").alias("u"), F.col("cv").alias("v")).agg(
            F.sum("w").alias("w")),
        "u", checkpoint_dir)
    inside = summed.where(F.col("u") == F.col("v")).select(
        F.col("u").alias("node"), (F.col("w") / 2.0).alias("inside"))
    new_nodes = (
        state.groupBy(F.col(COMMUNITY).alias("node"))
        .agg(F.sum("k").alias("k"), F.sum("loop").alias("loop"))
        .join(inside, on="node", how="left")
        .select("node", "k",
                (F.col("loop") + F.coalesce(F.col("inside"), F.lit(0.0))).alias("loop"))
    )
    # the edges are read by every round of the next level (the filter keeps the partitioning);
    # new_nodes only by its first scoring
    return summed.where(F.col("u") != F.col("v")), new_nodes
