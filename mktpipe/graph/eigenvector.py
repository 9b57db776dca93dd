"""Eigenvector centrality of the undirected graph, with two engines that agree with
``networkx.eigenvector_centrality``.

Semantics (networkx's): the graph is undirected (``u->v`` and ``v->u`` are one edge whose
weights add up, as Louvain sees it); the start vector is uniform; each step multiplies by
A + I (the identity shift keeps the iteration from oscillating on bipartite graphs) and
rescales to unit Euclidean norm; stop at the first step whose L1 change is below ``N * tol``.
A vertex matters when its neighbours matter: on a follow graph a user followed by (or
interacting with) well-connected users scores high even with few edges of their own. Values
are >= 0 with unit L2 norm over all vertices; on a disconnected graph the mass concentrates on
the component with the largest eigenvalue (as in networkx).

Engines:

- ``spark``: DataFrame power iteration, distributed; each step is one checkpointed job (the
  step, observing its squared norm) and one narrow aggregate (its L1 change).
- ``local``: the edges come to the driver and scipy's ARPACK (``eigsh``) solves the
  eigenproblem (exact, deterministic); for graphs up to ``igraph_max_edges`` edges (the limit
  the igraph engines of the other functions share). igraph's own eigenvector centrality is not
  used: its ARPACK start vector is random, so a re-run would write different last digits.
- ``auto``: local when the graph has at most ``igraph_max_edges`` edges and fits the driver's
  memory, else spark.

The two engines differ only by the power iteration's stopping error (``tol``) and on graphs
whose top eigenvalue is shared by several components (there the eigenvector is not unique).
"""

from __future__ import annotations

import logging
import math

import numpy as np
from pyspark.sql import DataFrame, Observation
from pyspark.sql import functions as F
from scipy import sparse
from scipy.sparse.linalg import eigsh

from mktpipe.graph import _local
from mktpipe.graph._edges import (
    DST,
    ID,
    SRC,
    WEIGHT,
    checkpoint_now,
    prepare_undirected,
)

log = logging.getLogger(__name__)

ENGINES = ("auto", "spark", "local")
EIGENVECTOR = "eigenvector_centrality"


def eigenvector_centrality(
    edges: DataFrame,
    src: str = SRC,
    dst: str = DST,
    weight: str | None = None,
    tol: float = 1e-6,
    max_iter: int = 100,
    engine: str = "auto",
    checkpoint_dir: str | None = None,
    igraph_max_edges: int = _local.DEFAULT_MAX_EDGES,
) -> DataFrame:
    """Eigenvector centrality of every vertex of an edge list, taken as undirected.

    Input: as :func:`mktpipe.graph.pagerank` (``src``, ``dst`` of one type, optional
    ``weight`` >= 0, a null ``dst`` declares an isolated vertex). Output:
    ``DataFrame[id, eigenvector_centrality: double]``, one row per vertex.

    ``tol``/``max_iter`` drive the spark engine as networkx's; reaching ``max_iter`` first logs
    a warning and returns the last iterate (networkx raises). local solves exactly and
    ignores both.
    """
    if engine not in ENGINES:
        raise ValueError(f"eigenvector_centrality engine must be one of {ENGINES}, got "
                         f"{engine!r}")
    if max_iter < 1 or tol <= 0:
        raise ValueError(f"eigenvector_centrality needs max_iter >= 1 and tol > 0, got "
                         f"{max_iter}, {tol}")
    undirected, vertices = prepare_undirected(edges, src, dst, weight)
    chosen = engine
    if engine == "auto":  # the driver-side size check the igraph engines use
        fits = _local.choose(undirected, vertices, "auto", igraph_max_edges) == "igraph"
        chosen = "local" if fits else "spark"
    log.info("eigenvector centrality engine=%s (asked %s)", chosen, engine)
    if chosen == "local":
        return _eigenvector_local(undirected, vertices)
    return _eigenvector_spark(undirected, vertices, tol, max_iter, checkpoint_dir)


def _eigenvector_local(undirected: DataFrame, vertices: DataFrame) -> DataFrame:
    """The top eigenvector of the symmetric weighted adjacency matrix on the driver (scipy's
    ARPACK, ``eigsh``, from the uniform start vector: deterministic, so a re-run writes the same
    numbers, and on a disconnected graph whose top eigenvalue several components share it gives
    the uniform start's projection, as networkx's power iteration does). A self-loop sits once
    on the diagonal, as in networkx's adjacency."""
    local = _local.to_local(undirected, vertices)
    return local.values(eigenvector_values(local), EIGENVECTOR)


def eigenvector_values(local: _local.LocalGraph) -> np.ndarray:
    """The unit-norm top eigenvector of a driver-side undirected graph (see
    :func:`_eigenvector_local`), by vertex index."""
    n = local.n
    off = local.src != local.dst
    rows = np.concatenate([local.src, local.dst[off]])
    cols = np.concatenate([local.dst, local.src[off]])
    matrix = sparse.csr_matrix((np.concatenate([local.weight, local.weight[off]]),
                                (rows, cols)), shape=(n, n))
    start = np.ones(n) / math.sqrt(max(n, 1))
    if matrix.nnz == 0:  # no edge: A + I = I keeps the uniform start
        values = start
    elif n <= 3:  # ARPACK needs k < n - 1 for eigsh
        vals, vecs = np.linalg.eigh(matrix.toarray())
        values = vecs[:, int(np.argmax(vals))]
    else:
        _, vecs = eigsh(matrix, k=1, which="LA", v0=start)
        values = vecs[:, 0]
    values = values if values.sum() >= 0 else -values
    values = np.clip(values, 0.0, None)
    norm = float(np.linalg.norm(values)) or 1.0
    return values / norm


def _eigenvector_spark(undirected: DataFrame, vertices: DataFrame, tol: float, max_iter: int,
                       checkpoint_dir: str | None) -> DataFrame:
    """Power iteration of A + I: rows ``[src, dst, w, is_self]`` hold each undirected edge in
    both directions (a self-loop once, as networkx's adjacency has it) and one identity row per
    vertex, which also carries the vertex's previous value through the step's join."""
    parts = int(undirected.sparkSession.conf.get("spark.sql.shuffle.partitions"))
    both = undirected.unionByName(
        undirected.where(F.col(SRC) != F.col(DST))
        .select(F.col(DST).alias(SRC), F.col(SRC).alias(DST), WEIGHT))
    rows = (both.select(SRC, DST, F.col(WEIGHT).alias("w"), F.lit(False).alias("is_self"))
            .unionByName(vertices.select(F.col(ID).alias(SRC), F.col(ID).alias(DST),
                                         F.lit(1.0).alias("w"), F.lit(True).alias("is_self")))
            .repartition(parts, SRC).cache())
    n = vertices.count()
    x = vertices.select(ID, F.lit(1.0 / n).alias("x"))
    err = math.inf
    for iteration in range(1, max_iter + 1):
        observed = Observation()
        step = (rows.join(x.select(F.col(ID).alias(SRC), "x"), on=SRC, how="inner")
                .groupBy(F.col(DST).alias(ID))
                .agg(F.sum(F.col("w") * F.col("x")).alias("y"),
                     F.sum(F.when(F.col("is_self"), F.col("x"))).alias("old"))
                .observe(observed, F.sum(F.col("y") * F.col("y")).alias("ss")))
        step = checkpoint_now(step, checkpoint_dir)
        norm = math.sqrt(observed.get["ss"]) or 1.0
        scaled = step.select(ID, (F.col("y") / F.lit(norm)).alias("x"), "old")
        err = scaled.agg(F.sum(F.abs(F.col("x") - F.col("old")))).first()[0]
        x = scaled.select(ID, "x")
        if err < n * tol:
            log.info("eigenvector centrality spark converged after %d iterations "
                     "(L1 change %.3g)", iteration, err)
            break
    else:
        log.warning("eigenvector centrality spark did not converge in %d iterations (L1 "
                    "change %.3g >= %.3g)", max_iter, err, n * tol)
    rows.unpersist()
    return x.select(ID, F.col("x").alias(EIGENVECTOR))
