"""The DataFrame transformations of the ``spark`` Louvain engine (``_louvain_spark`` drives them).

A level's graph is two DataFrames:

- ``adj[u, v, w]``: every undirected edge ``u != v`` in both directions;
- ``nodes[node, k, loop]``: weighted degree ``k`` (a self-loop adds twice its weight) and the
  self-loop weight ``loop`` (at level > 0, the weight inside the community the node stands for).

A partition is ``[node, k, loop, community, moved]``; labels are vertex ids of the input.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from mktpipe.graph._edges import COMMUNITY, DST, ID, SRC, WEIGHT, checkpoint_now

MIN_DELTA_Q = 1e-12  # modularity changes below this are rounding noise


def level0_graph(
    undirected: DataFrame, vertices: DataFrame, checkpoint_dir: str | None
) -> tuple[DataFrame, DataFrame]:
    """The first level's ``(adj, nodes)`` from ``undirected[src, dst, weight]`` (one row per
    pair, ``src <= dst``) and ``vertices[id]``; zero-weight edges are dropped (they change no
    gain), vertices without edges get ``k = 0``."""
    loops = undirected.where(F.col(SRC) == F.col(DST)).select(
        F.col(SRC).alias("node"), F.col(WEIGHT).alias("loop")
    )
    pairs = undirected.where((F.col(SRC) != F.col(DST)) & (F.col(WEIGHT) > 0))
    adj = pairs.select(
        F.col(SRC).alias("u"), F.col(DST).alias("v"), F.col(WEIGHT).alias("w")
    ).unionByName(
        pairs.select(F.col(DST).alias("u"), F.col(SRC).alias("v"), F.col(WEIGHT).alias("w"))
    )
    degree = adj.groupBy(F.col("u").alias("node")).agg(F.sum("w").alias("k_adj"))
    loop = F.coalesce(F.col("loop"), F.lit(0.0))
    nodes = (
        vertices.select(F.col(ID).alias("node"))
        .join(degree, on="node", how="left")
        .join(loops, on="node", how="left")
        .select(
            "node", (F.coalesce(F.col("k_adj"), F.lit(0.0)) + 2 * loop).alias("k"),
            loop.alias("loop"),
        )
    )
    # checkpointed: adj is read by every round, nodes twice. Their size estimates come from
    # the input, once: no compounding, so no need for materialise's fresh estimate
    return checkpoint_now(adj, checkpoint_dir), checkpoint_now(nodes, checkpoint_dir)


def candidate_pairs(adj: DataFrame, partition: DataFrame) -> DataFrame:
    """Every (node, community it could be in): its own and each neighbour's.

    Output ``[u, c, k_in, tot, size, k_u, loop, cur, moved]``: ``k_in`` the weight from ``u``
    to other members of ``c``, ``tot``/``size`` the total degree and size of ``c`` (``u``
    included when ``c`` is its current community ``cur``), and ``u``'s own fields.
    """
    by_community = Window.partitionBy(COMMUNITY)  # no ordering: the frame is the community
    nodes = partition.select(
        "node", "k", "loop", COMMUNITY, "moved",
        F.sum("k").over(by_community).alias("tot"),
        F.count(F.lit(1)).over(by_community).alias("size"),
    )
    own = [F.col("k").alias("k_u"), "loop", F.col(COMMUNITY).alias("cur"), "moved"]
    # one row per (u, neighbour v) with u's fields and v's community, plus a zero-weight row
    # per node for staying put: staying is always an option
    towards = (
        adj.join(nodes.select(F.col("node").alias("v"), F.col(COMMUNITY).alias("c"), "tot",
                              "size"), on="v", how="inner")
        .join(nodes.select(F.col("node").alias("u"), *own), on="u", how="inner")
        .select("u", "c", "w", "tot", "size", "k_u", "loop", "cur", "moved")
    )
    stay = nodes.select(F.col("node").alias("u"), F.col(COMMUNITY).alias("c"),
                        F.lit(0.0).alias("w"), "tot", "size", *own)
    return (
        towards.unionByName(stay)
        .repartition("u")  # one shuffle serves this aggregation and best_moves' (by u)
        .groupBy("u", "c")
        .agg(F.sum("w").alias("k_in"),
             *[F.max(c).alias(c) for c in ("tot", "size", "k_u", "loop", "cur", "moved")])
    )


def best_moves(
    adj: DataFrame, partition: DataFrame, two_m: float, resolution: float
) -> DataFrame:
    """Each node's best community. Output ``[node, k, loop, community, best, proposes,
    cur_k_in, cur_tot, moved]``.

    Gain of moving ``u`` (degree ``k_u``) into community ``c``, relative to ``u`` alone, scaled
    by ``m``: ``k_in(u, c) - resolution * k_u * tot(c without u) / 2m``. Ties go to the smaller
    label; ``proposes`` is true when the best beats staying and passes the min-label rule.
    """
    is_current = F.col("c") == F.col("cur")
    tot_without_u = F.col("tot") - F.when(is_current, F.col("k_u")).otherwise(F.lit(0.0))
    gain = F.col("k_in") - F.lit(resolution) * F.col("k_u") * tot_without_u / F.lit(two_m)
    scored = candidate_pairs(adj, partition).select(
        "*", is_current.alias("is_cur"), gain.alias("gain")
    )

    def current(col: str) -> Column:
        return F.max(F.when(F.col("is_cur"), F.col(col))).alias(f"cur_{col}")

    best = scored.groupBy("u").agg(
        F.min_by(F.struct("c", "size"), F.struct(-F.col("gain"), F.col("c"))).alias("best"),
        F.max("gain").alias("best_gain"),
        current("gain"), current("size"), current("k_in"), current("tot"),
        F.max("cur").alias(COMMUNITY), F.max("k_u").alias("k"), F.max("loop").alias("loop"),
        F.max("moved").alias("moved"),
    )
    improves = (F.col("best_gain") - F.col("cur_gain")) * F.lit(2.0 / two_m) > F.lit(MIN_DELTA_Q)
    singleton_swap = (
        (F.col("cur_size") == 1) & (F.col("best.size") == 1)
        & (F.col("best.c") > F.col(COMMUNITY))
    )
    proposes = improves & (F.col("best.c") != F.col(COMMUNITY)) & ~singleton_swap
    return best.select(
        F.col("u").alias("node"), "k", "loop", COMMUNITY, F.col("best.c").alias("best"),
        proposes.alias("proposes"), "cur_k_in", "cur_tot", "moved",
    )


def relabel(membership: DataFrame, state: DataFrame) -> DataFrame:
    """``[id, node]`` -> ``[id, node]`` with each node replaced by its community label."""
    return membership.join(state.select("node", COMMUNITY), on="node", how="inner").select(
        ID, F.col(COMMUNITY).alias("node")
    )


def aggregate(
    adj: DataFrame, state: DataFrame, checkpoint_dir: str | None
) -> tuple[DataFrame, DataFrame]:
    """The next level's graph: one node per community; edges between communities summed;
    edges inside a community become its self-loop weight."""
    comm = state.select("node", COMMUNITY)
    labelled = (
        adj.join(comm.select(F.col("node").alias("u"), F.col(COMMUNITY).alias("cu")), on="u",
                 how="inner")
        .join(comm.select(F.col("node").alias("v"), F.col(COMMUNITY).alias("cv")), on="v",
              how="inner")
    )
    new_adj = (
        labelled.where(F.col("cu") != F.col("cv"))
        .groupBy(F.col("cu").alias("u"), F.col("cv").alias("v"))
        .agg(F.sum("w").alias("w"))
    )
    # each inside edge appears in both directions in adj: halve
    inside = (
        labelled.where(F.col("cu") == F.col("cv"))
        .groupBy(F.col("cu").alias("node"))
        .agg((F.sum("w") / 2.0).alias("inside"))
    )
    new_nodes = (
        state.groupBy(F.col(COMMUNITY).alias("node"))
        .agg(F.sum("k").alias("k"), F.sum("loop").alias("loop"))
        .join(inside, on="node", how="left")
        .select("node", "k",
                (F.col("loop") + F.coalesce(F.col("inside"), F.lit(0.0))).alias("loop"))
    )
    # new_adj is read by every round of the next level; new_nodes only by its first scoring
    return checkpoint_now(new_adj, checkpoint_dir), new_nodes
