"""PageRank with three engines that agree with ``networkx.pagerank``.

Semantics (networkx's, so results agree to ~1e-9 at a tight ``tol``): directed graph; each
vertex's out-edges are normalised by its total out-weight; a vertex with no out-weight
(dangling) spreads its mass uniformly over all vertices; teleport is uniform; start vector
uniform; stop at the first iteration whose L1 change is below ``N * tol``. Values sum to 1.

Engines:

- ``spark``: DataFrame power iteration, distributed; each step is one checkpointed job that
  also observes the convergence metrics (L1 change, dangling mass); up to
  ``BROADCAST_MAX_NODES`` vertices the ranks are broadcast and a step is one stage.
- ``igraph``: the edges come to the driver and igraph's PRPACK solves it (exact, fast); for
  graphs up to ``igraph_max_edges`` edges.
- ``graphframes``: GraphFrames' ``pageRank`` when its jar is on the session; unweighted only.
  GraphX handles dangling vertices differently (their mass is dropped, then the result is
  rescaled), so it matches networkx only on graphs without dangling vertices.
- ``auto``: graphframes when its jar is present and the graph is unweighted, else igraph when
  the graph has at most ``igraph_max_edges`` edges, else spark.
"""

from __future__ import annotations

import logging

from pyspark.sql import DataFrame, Observation
from pyspark.sql import functions as F
from pyspark.sql.types import DoubleType, StructField, StructType

from mktpipe.graph import _local
from mktpipe.graph._edges import (
    BROADCAST_MAX_NODES,
    DST,
    ID,
    PAGERANK,
    SRC,
    WEIGHT,
    checkpoint_now,
    collapse,
    edge_rows,
    id_type,
)
from mktpipe.session import capabilities

log = logging.getLogger(__name__)

ENGINES = ("auto", "spark", "igraph", "graphframes")


def pagerank(
    edges: DataFrame,
    src: str = SRC,
    dst: str = DST,
    weight: str | None = None,
    damping: float = 0.85,
    tol: float = 1e-9,
    max_iter: int = 100,
    engine: str = "auto",
    checkpoint_dir: str | None = None,
    igraph_max_edges: int = _local.DEFAULT_MAX_EDGES,
) -> DataFrame:
    """PageRank of every vertex of a directed, optionally weighted edge list.

    Input: ``edges`` with columns ``src``, ``dst`` (same type, int or string) and optionally a
    numeric ``weight`` (>= 0, not null; duplicates summed; a null ``dst`` declares an isolated
    vertex). Output: ``DataFrame[id, pagerank: double]``, one row per vertex (``id`` of the
    input's type), values sum to 1.

    ``tol``/``max_iter`` drive the spark engine as in networkx (stop when the L1 change
    < N * tol); reaching ``max_iter`` first logs a warning and returns the last iterate
    (networkx raises instead). igraph solves exactly (PRPACK) and ignores both; graphframes
    passes ``tol`` to GraphX (a per-vertex change). ``checkpoint_dir``: reliable checkpoints
    for the spark engine instead of local ones. ``igraph_max_edges``: ``auto``'s limit for
    bringing the edges to the driver.
    """
    if engine not in ENGINES:
        raise ValueError(f"pagerank engine must be one of {ENGINES}, got {engine!r}")
    if not 0.0 <= damping < 1.0:
        raise ValueError(f"pagerank damping must be in [0, 1), got {damping}")
    if max_iter < 1 or tol <= 0:
        raise ValueError(f"pagerank needs max_iter >= 1 and tol > 0, got {max_iter}, {tol}")
    raw = edge_rows(edges, src, dst, weight)
    directed, vertices = collapse(raw)
    chosen = _choose_engine(edges, directed, vertices, engine, weight, igraph_max_edges)
    log.info("pagerank engine=%s (asked %s)", chosen, engine)
    if chosen == "igraph":
        return _pagerank_igraph(directed, vertices, damping)
    if chosen == "graphframes":
        return _pagerank_graphframes(directed, vertices, damping, tol, max_iter)
    return _pagerank_spark(raw, vertices, damping, tol, max_iter, checkpoint_dir)


def _choose_engine(
    edges: DataFrame, directed: DataFrame, vertices: DataFrame, engine: str,
    weight: str | None, max_edges: int,
) -> str:
    has_graphframes = capabilities(edges.sparkSession).graphframes
    if engine == "graphframes":
        if not has_graphframes:
            raise RuntimeError(
                "pagerank engine='graphframes' needs the GraphFrames jar on the session "
                "(none was found at start-up; see `mktpipe doctor`); use engine='spark' or "
                "'igraph', or put a graphframes jar in spark.jars_dir"
            )
        if weight is not None:
            raise ValueError(
                "GraphFrames pageRank ignores edge weights; use engine='spark' or 'igraph' "
                f"for the weighted graph (weight={weight!r})"
            )
        return engine
    if engine != "auto":
        return engine
    if has_graphframes and weight is None:
        return "graphframes"
    return _local.choose(directed, vertices, engine, max_edges)


def _output_schema(vertices: DataFrame) -> StructType:
    return StructType(
        [StructField(ID, id_type(vertices), False), StructField(PAGERANK, DoubleType(), False)]
    )


def _pagerank_igraph(directed: DataFrame, vertices: DataFrame, damping: float) -> DataFrame:
    """PRPACK on the driver. Zero-weight edges are dropped so that a vertex whose out-weight
    is 0 is dangling, as in networkx."""
    local = _local.to_local(directed.where(F.col(WEIGHT) > 0), vertices)
    return local.values(pagerank_values(local, damping), PAGERANK)


def pagerank_values(local: _local.LocalGraph, damping: float) -> list[float]:
    """PRPACK's PageRank of a driver-side graph whose edges all weigh more than 0, by vertex
    index."""
    return local.igraph(directed=True).pagerank(
        directed=True, damping=damping, weights=local.weights(), implementation="prpack"
    )


def _pagerank_graphframes(
    directed: DataFrame, vertices: DataFrame, damping: float, tol: float, max_iter: int
) -> DataFrame:
    """GraphFrames' pageRank, rescaled to sum to 1 (GraphX sums to N). Unweighted."""
    from graphframes import GraphFrame

    graph = GraphFrame(vertices, directed.select(SRC, DST))
    # GraphX's tol is a per-vertex change, not networkx's L1 over N; run to convergence
    result = graph.pageRank(resetProbability=1.0 - damping, tol=tol).vertices
    total = result.agg(F.sum(PAGERANK)).first()[0]
    return result.select(ID, (F.col(PAGERANK) / F.lit(total)).alias(PAGERANK))


def _pagerank_spark(
    raw: DataFrame,
    vertices: DataFrame,
    damping: float,
    tol: float,
    max_iter: int,
    checkpoint_dir: str | None,
) -> DataFrame:
    """Power iteration on DataFrames: each step is checkpointed (one job, cutting the lineage),
    and that job also observes the step's L1 change and the next dangling mass.

    ``raw`` is ``edge_rows``' output: duplicates need no collapsing here, since a step sums
    over a vertex's in-edges anyway and the out-weight sums over the rows too.

    The transition rows are cached partitioned by ``dst``. Up to ``BROADCAST_MAX_NODES``
    vertices each step broadcasts the ranks (id, rank and rank per unit of out-weight: 24 bytes
    a vertex) to the rows, so the rows never leave their partition and the sum by ``dst`` needs
    no shuffle: one stage a step. Above it the rows are cached by ``src`` instead and each step
    joins the ranks there, then shuffles the products to their ``dst``.
    """
    rows = _transition_rows(raw, vertices, DST).cache()  # read by every iteration
    n, dangling = rows.agg(
        F.sum(F.col("is_self").cast("long")), F.sum((F.col("out_w") <= 0).cast("long"))
    ).first()
    broadcast = n <= BROADCAST_MAX_NODES
    if not broadcast:
        by_src = rows.repartition(rows.rdd.getNumPartitions(), SRC).cache()
        by_src.count()
        rows.unpersist()
        rows = by_src
    ranks = _with_share(rows.where(F.col("is_self")).select(
        F.col(SRC).alias(ID), F.lit(1.0 / n).alias(PAGERANK), "out_w"
    ))
    dangling_mass = dangling / n
    for iteration in range(1, max_iter + 1):
        observed = Observation()
        step = _power_step(
            rows, F.broadcast(ranks) if broadcast else ranks, damping, dangling_mass, n
        ).observe(
            observed,
            F.sum(F.abs(F.col("delta"))).alias("err"),
            F.coalesce(F.sum(F.when(F.col("out_w") <= 0, F.col(PAGERANK))),
                       F.lit(0.0)).alias("dm"),
        )
        ranks = _with_share(checkpoint_now(step, checkpoint_dir))
        err, dangling_mass = observed.get["err"], observed.get["dm"]
        if err < n * tol:
            log.info("pagerank spark converged after %d iterations (L1 change %.3g)",
                     iteration, err)
            break
    else:
        log.warning(
            "pagerank spark did not converge in %d iterations (L1 change %.3g >= %.3g)",
            max_iter, err, n * tol,
        )
    rows.unpersist()
    return ranks.select(ID, PAGERANK)


def _with_share(ranks: DataFrame) -> DataFrame:
    """``[id, pagerank, out_w, ...]`` -> ``[id, pagerank, share]``: ``share`` is what each unit
    of the vertex's out-weight carries (0 for a dangling vertex, whose mass is spread apart)."""
    share = F.when(F.col("out_w") > 0, F.col(PAGERANK) / F.col("out_w")).otherwise(F.lit(0.0))
    return ranks.select(ID, PAGERANK, share.alias("share"))


def _transition_rows(raw: DataFrame, vertices: DataFrame, by: str = SRC) -> DataFrame:
    """Rows ``[src, dst, w, is_self, out_w]`` that one join with the ranks turns into a step,
    hash-partitioned by column ``by``.

    One row per input edge row with positive weight ``w`` (duplicates need not be summed: the
    step sums over the in-edges anyway); plus one "self" row per vertex (``src = dst = id``,
    ``w = 0``) that carries the vertex's previous rank and its out-weight ``out_w`` (0 when
    dangling) through the same join, so each step reads the previous ranks once and the plan
    grows linearly, not exponentially. The edges are not joined with the out-weights: the
    ranks carry rank / out-weight (``_with_share``), so the build shuffles the edges once.
    """
    parts = int(raw.sparkSession.conf.get("spark.sql.shuffle.partitions"))
    is_edge = F.col(DST).isNotNull()
    out_weight = raw.where(is_edge).groupBy(F.col(SRC).alias(ID)).agg(
        F.sum(WEIGHT).alias("out_w"))
    edges = raw.where(is_edge & (F.col(WEIGHT) > 0)).select(
        SRC, DST, F.col(WEIGHT).alias("w"), F.lit(False).alias("is_self"),
        F.lit(None).cast(DoubleType()).alias("out_w"),
    )
    selves = vertices.join(out_weight, on=ID, how="left").select(
        F.col(ID).alias(SRC), F.col(ID).alias(DST), F.lit(0.0).alias("w"),
        F.lit(True).alias("is_self"), F.coalesce(F.col("out_w"), F.lit(0.0)).alias("out_w"),
    )
    # partitioned as each step needs them: by dst when the ranks are broadcast (the sum by dst
    # then stays in its partition), by src when they are joined (only the ranks shuffle)
    return edges.unionByName(selves).repartition(parts, by)


def _power_step(
    rows: DataFrame, ranks: DataFrame, damping: float, dangling_mass: float, n: int
) -> DataFrame:
    """One networkx power step: ``x' = d (x P + dangling_mass / N) + (1 - d) / N``.

    Inputs: ``_transition_rows`` and ranks ``[id, pagerank, share]``. Output
    ``[id, out_w, pagerank, delta]``, ``delta`` being the change of each vertex's rank.
    """
    base = damping * dangling_mass / n + (1.0 - damping) / n
    new_rank = F.lit(base) + F.lit(damping) * F.col("inflow")
    return (
        rows.join(ranks.select(F.col(ID).alias(SRC), F.col(PAGERANK).alias("x"), "share"),
                  on=SRC, how="inner")
        .groupBy(F.col(DST).alias(ID))
        .agg(
            F.sum(F.col("w") * F.col("share")).alias("inflow"),
            F.sum(F.when(F.col("is_self"), F.col("x"))).alias("old"),
            F.max("out_w").alias("out_w"),
        )
        .select(ID, "out_w", new_rank.alias(PAGERANK), (new_rank - F.col("old")).alias("delta"))
    )
