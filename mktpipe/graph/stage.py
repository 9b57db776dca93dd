"""The graph stage: influence (PageRank), communities (Louvain, and label propagation as a
baseline) and connected components for a snapshot.

Graph, from data strictly before the snapshot:

- follow edges ``follower -> followee`` (weight 1) from ``bronze.follows``;
- interaction edges ``user -> creator`` from likes, comments and shares in the
  ``graph.interaction_window_days`` before the snapshot, weight = count x
  ``graph.interaction_weight`` (so ~5 interactions weigh as much as a follow by default);
- every user signed up before the snapshot is a vertex (isolated users: own community,
  teleport-only PageRank).

PageRank runs on the directed weighted graph; Louvain, label propagation (LPA) and connected
components on its undirected version. Outputs, partitioned by snapshot_date and overwritten per
snapshot (a re-run is idempotent):

- ``silver.graph_metrics``: user_id, snapshot_date, pagerank, influence_percentile (0-100,
  share of users with a lower PageRank), community_id, community_size, in_degree, out_degree,
  component_id (the smallest user id of the user's connected component), lpa_community (the
  smallest user id of the user's LPA community), eigenvector_centrality (of the undirected
  weighted graph, unit L2 norm; ``mktpipe.graph.eigenvector``), betweenness_centrality and
  closeness_centrality (of the directed unweighted graph, networkx's normalisation, from
  ``graph.path_sources`` seeded sources: exact when that covers every vertex; null with
  ``graph.path_centralities: false``; ``mktpipe.graph.paths``)
- ``silver.communities`` (Louvain's): snapshot_date, community_id, size, internal_edges,
  internal_density, top_creators (by PageRank), dominant_category, modularity, and for
  comparison lpa_modularity and lpa_communities (the LPA partition's modularity and count)

The stage result's details hold modularity, communities, lpa_modularity, lpa_communities,
components and largest_component_share (share of the vertices in the largest component).
"""

from __future__ import annotations

import datetime as dt
import logging

from pyspark.ml.feature import Bucketizer
from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from mktpipe import schemas as S
from mktpipe.catalog import (
    BRONZE_EVENTS,
    BRONZE_FOLLOWS,
    BRONZE_USERS,
    BRONZE_VIDEOS,
    COMMUNITIES,
    GRAPH_METRICS,
)
from mktpipe.config import GraphConfig
from mktpipe.graph import (
    connected_components,
    eigenvector_centrality,
    label_propagation,
    louvain,
    modularity,
    pagerank,
    path_centralities,
)
from mktpipe.graph.metrics import nmi_from_counts
from mktpipe.graph.suite import DriverScores, score_on_driver
from mktpipe.quality.manifest import StageResult
from mktpipe.stage import StageContext, stage
from mktpipe.storage import files

log = logging.getLogger(__name__)

SRC, DST, WEIGHT = "src", "dst", "weight"
INTERACTIONS = ("like", "comment", "share")
PERCENTILE_STEPS = 1000


def _snapshot_ts(snapshot: dt.date):
    return F.lit(dt.datetime.combine(snapshot, dt.time(), tzinfo=dt.timezone.utc))


def follow_edges(follows: DataFrame, snapshot: dt.date) -> DataFrame:
    """``[src, dst, weight]`` follower -> followee for follows before the snapshot."""
    return follows.filter(F.col("followed_at") < _snapshot_ts(snapshot)).select(
        F.col(S.FOLLOWER_ID).alias(SRC), F.col(S.FOLLOWEE_ID).alias(DST), F.lit(1.0).alias(WEIGHT)
    )


def interaction_edges(
    events: DataFrame, snapshot: dt.date, window_days: int, weight: float
) -> DataFrame:
    """``[src, dst, weight]`` user -> creator, weight = likes+comments+shares x ``weight``."""
    start = snapshot - dt.timedelta(days=window_days)
    in_window = (
        (F.col("event_date") >= F.lit(start))
        & (F.col("event_date") < F.lit(snapshot))
        & (F.col(S.TS) < _snapshot_ts(snapshot))
    )
    is_interaction = F.col(S.EVENT_TYPE).isin(*INTERACTIONS) & F.col(S.CREATOR_ID).isNotNull()
    return (
        events.filter(in_window & is_interaction & (F.col(S.USER_ID) != F.col(S.CREATOR_ID)))
        .groupBy(F.col(S.USER_ID).alias(SRC), F.col(S.CREATOR_ID).alias(DST))
        .agg((F.count(F.lit(1)) * F.lit(weight)).alias(WEIGHT))
    )


def vertex_declarations(users: DataFrame, snapshot: dt.date) -> DataFrame:
    """One ``[src, null, null]`` row per user signed up before the snapshot."""
    return users.filter(F.col("signup_date") < F.lit(snapshot)).select(
        F.col(S.USER_ID).alias(SRC),
        F.lit(None).cast("string").alias(DST),
        F.lit(None).cast("double").alias(WEIGHT),
    )


def influence_percentile(ranks: DataFrame, steps: int = PERCENTILE_STEPS) -> DataFrame:
    """Add ``influence_percentile``: the (approximate) share of vertices with a lower PageRank.

    Distributed: quantiles of pagerank come to the driver (``steps`` numbers), a Bucketizer
    places each vertex; no single-partition sort.
    """
    probs = [i / steps for i in range(steps + 1)]
    quantiles = ranks.approxQuantile("pagerank", probs, 1.0 / (10 * steps))
    splits, pct = [-float("inf")], []
    for p, q in zip(probs, quantiles):
        if q > splits[-1]:
            splits.append(q)
            pct.append(100.0 * p)
    splits.append(float("inf"))
    # bucket i >= 1 is [splits[i], splits[i+1]): the share below it is pct[i-1]
    pct = [0.0] + pct
    bucketed = Bucketizer(splits=splits, inputCol="pagerank", outputCol="_bucket").transform(ranks)
    lookup = ranks.sparkSession.createDataFrame(
        [(float(i), float(v)) for i, v in enumerate(pct)], "_bucket double, pct double"
    )
    return bucketed.join(F.broadcast(lookup), on="_bucket", how="left").select(
        *ranks.columns, F.round("pct", 2).alias("influence_percentile")
    )


def community_summary(
    assignment: DataFrame, undirected: DataFrame, ranks: DataFrame, users: DataFrame,
    category_views: DataFrame, top_k: int,
) -> DataFrame:
    """One row per community: size, internal edges and density, top creators, category."""
    sizes = assignment.groupBy("community").agg(F.count(F.lit(1)).alias("size"))
    a = assignment.select(F.col("id").alias("_a"), F.col("community").alias("_ca"))
    b = assignment.select(F.col("id").alias("_b"), F.col("community").alias("_cb"))
    internal = (
        undirected.filter(F.col(SRC) != F.col(DST))
        .join(a, F.col(SRC) == F.col("_a"), "inner")
        .join(b, F.col(DST) == F.col("_b"), "inner")
        .filter(F.col("_ca") == F.col("_cb"))
        .groupBy(F.col("_ca").alias("community"))
        .agg(F.count(F.lit(1)).alias("internal_edges"))
    )
    creators = (
        ranks.join(users.filter(F.col("is_creator")).select(F.col(S.USER_ID).alias("id")),
                   on="id", how="inner")
        .join(assignment, on="id", how="inner")
        .withColumn("_r", F.row_number().over(
            Window.partitionBy("community").orderBy(F.desc("pagerank"), "id")))
        .filter(F.col("_r") <= top_k)
        .groupBy("community")
        .agg(F.sort_array(F.collect_list(F.struct("_r", "id"))).alias("_top"))
        .select("community", F.col("_top.id").alias("top_creators"))
    )
    category = (
        category_views.join(assignment.withColumnRenamed("id", S.USER_ID), on=S.USER_ID)
        .groupBy("community", "category").agg(F.sum("views").alias("_views"))
        .withColumn("_r", F.row_number().over(
            Window.partitionBy("community").orderBy(F.desc("_views"), "category")))
        .filter(F.col("_r") == 1)
        .select("community", F.col("category").alias("dominant_category"))
    )
    pairs = F.col("size") * (F.col("size") - 1) / 2
    return (
        sizes.join(internal, "community", "left")
        .join(creators, "community", "left")
        .join(category, "community", "left")
        .select(
            F.col("community").alias("community_id"),
            "size",
            F.coalesce("internal_edges", F.lit(0)).cast("long").alias("internal_edges"),
            F.when(F.col("size") > 1, F.coalesce("internal_edges", F.lit(0)) / pairs)
            .alias("internal_density"),
            F.coalesce("top_creators", F.array().cast("array<string>")).alias("top_creators"),
            "dominant_category",
        )
    )


def category_views(events: DataFrame, videos: DataFrame, snapshot: dt.date,
                   window_days: int) -> DataFrame:
    """``[user_id, category, views]`` in the interaction window before the snapshot."""
    start = snapshot - dt.timedelta(days=window_days)
    return (
        events.filter((F.col("event_date") >= F.lit(start))
                      & (F.col("event_date") < F.lit(snapshot))
                      & (F.col(S.EVENT_TYPE) == "view"))
        .join(videos.select(S.VIDEO_ID, "category"), on=S.VIDEO_ID, how="inner")
        .groupBy(S.USER_ID, "category").agg(F.count(F.lit(1)).alias("views"))
    )


def planted_nmi(spark: SparkSession, assignment: DataFrame, truth_dir: str) -> float | None:
    """NMI of the communities vs the generator's planted ones (demo data only; else None).

    Distributed: only the contingency table (communities x planted) comes to the driver.
    """
    truth_file = files.join(truth_dir, "users.parquet")
    if not files.exists(truth_file):
        return None
    truth = spark.read.parquet(truth_file).select(
        F.col(S.USER_ID).alias("id"), F.col("community").cast("string").alias("planted"))
    table = (assignment.join(truth, on="id", how="inner")
             .groupBy("community", "planted").count().toPandas())
    if table.empty:
        return None
    counts = table.pivot_table(index="community", columns="planted", values="count",
                               fill_value=0).to_numpy(dtype=float)
    return nmi_from_counts(counts)


def components_and_lpa(
    edges: DataFrame, g: GraphConfig, checkpoint_dir: str,
    scored: DriverScores | None = None,
) -> tuple[DataFrame, DataFrame, dict]:
    """Connected components and LPA communities of the undirected graph of ``edges``.

    Input: the stage's ``edges[src, dst, weight]`` (a null ``dst`` declares a user), and the
    driver-side scores when the stage has them (``scored``). Output: ``[id, component_id]``
    and ``[id, lpa_community]`` (strings, persisted: the caller unpersists) and the numbers for
    the stage result: ``lpa_modularity``, ``lpa_communities``, ``components``,
    ``largest_component_share`` (of all vertices, 0-1).
    """
    components = scored.components if scored else connected_components(
        edges, engine=g.components_engine, checkpoint_dir=checkpoint_dir,
        igraph_max_edges=g.igraph_max_edges)
    components = components.select(
        "id", F.col("component").cast("string").alias("component_id")).persist()
    lpa = scored.lpa if scored else label_propagation(
        edges, weight=WEIGHT, max_iter=g.lpa_max_iter, engine=g.lpa_engine, seed=g.seed,
        checkpoint_dir=checkpoint_dir, igraph_max_edges=g.igraph_max_edges)
    lpa = lpa.select("id", F.col("community").cast("string").alias("lpa_community")).persist()
    real = edges.filter(F.col(DST).isNotNull())
    sizes = (
        components.groupBy("component_id").agg(F.count(F.lit(1)).alias("size"))
        .agg(F.count(F.lit(1)).alias("components"), F.max("size").alias("largest"),
             F.sum("size").alias("vertices"))
        .first()
    )
    stats = {
        "lpa_modularity": scored.lpa_modularity if scored else modularity(
            real, lpa, weight=WEIGHT, community_col="lpa_community"),
        "lpa_communities": lpa.agg(F.countDistinct("lpa_community")).first()[0],
        "components": sizes["components"],
        "largest_component_share": sizes["largest"] / sizes["vertices"],
    }
    return components, lpa, stats


@stage("graph")
def run_graph(ctx: StageContext, snapshot_date: dt.date) -> StageResult:
    """Build the graph for ``snapshot_date``, score it, write both silver tables."""
    store, g = ctx.store, ctx.config.graph
    result = ctx.begin(snapshot_date)
    result.tables_read = ctx.versions((BRONZE_FOLLOWS, BRONZE_EVENTS, BRONZE_USERS,
                                       BRONZE_VIDEOS))
    users = store.read(BRONZE_USERS)
    events = store.read(BRONZE_EVENTS)
    edges = (
        follow_edges(store.read(BRONZE_FOLLOWS), snapshot_date)
        .unionByName(interaction_edges(events, snapshot_date, g.interaction_window_days,
                                       g.interaction_weight))
        .groupBy(SRC, DST).agg(F.sum(WEIGHT).alias(WEIGHT))
        .unionByName(vertex_declarations(users, snapshot_date))
        .persist()  # read by pagerank, louvain, degrees and modularity
    )
    try:
        _score(ctx, snapshot_date, edges, users, events, result)
    finally:
        edges.unpersist()
    d = result.details
    return ctx.finish(
        result, "%d vertices, %d edges, %d communities, modularity %.4f, NMI %s; LPA %d "
        "communities, modularity %.4f; %d components, largest %.1f%%", result.rows_out,
        d["edges"], d["communities"], d["modularity"], d["planted_nmi"], d["lpa_communities"],
        d["lpa_modularity"], d["components"], 100 * d["largest_component_share"])


def _score(ctx: StageContext, snapshot_date: dt.date, edges: DataFrame, users: DataFrame,
           events: DataFrame, result: StageResult) -> None:
    spark, config, store, run_id = ctx.spark, ctx.config, ctx.store, ctx.run_id
    g = config.graph
    checkpoints = config.uri("checkpoints")
    real = edges.filter(F.col(DST).isNotNull())
    # one trip to the driver for all five when the graph is small (see graph/suite.py)
    engines = {"pagerank": g.pagerank_engine, "louvain": g.louvain_engine,
               "components": g.components_engine, "lpa": g.lpa_engine,
               "eigenvector": g.eigenvector_engine}
    if g.path_centralities:
        engines["paths"] = g.path_engine
    scored = score_on_driver(edges, WEIGHT, g.damping, g.resolution, g.seed,
                             g.igraph_max_edges, engines, path_sources=g.path_sources)
    result.details["engine"] = "driver (igraph, scipy)" if scored else "per algorithm"
    ranks = (scored.pagerank if scored else pagerank(
        edges, weight=WEIGHT, damping=g.damping, tol=g.tol, max_iter=g.max_iter,
        engine=g.pagerank_engine, checkpoint_dir=checkpoints,
        igraph_max_edges=g.igraph_max_edges)).persist()
    assignment = (scored.louvain if scored else louvain(
        edges, weight=WEIGHT, resolution=g.resolution, engine=g.louvain_engine, seed=g.seed,
        checkpoint_dir=checkpoints, igraph_max_edges=g.igraph_max_edges,
        block_nodes=g.louvain_block_nodes)).persist()
    q = scored.louvain_modularity if scored else modularity(
        real, assignment, weight=WEIGHT, resolution=g.resolution)
    eigen = (scored.eigenvector if scored else eigenvector_centrality(
        edges, weight=WEIGHT, max_iter=g.max_iter, engine=g.eigenvector_engine,
        checkpoint_dir=checkpoints, igraph_max_edges=g.igraph_max_edges)).persist()
    if scored and scored.paths is not None:
        paths = scored.paths
    elif g.path_centralities:  # betweenness and closeness from g.path_sources sampled sources
        paths = path_centralities(edges, k=g.path_sources, seed=g.seed,
                                  checkpoint_dir=checkpoints, engine=g.path_engine,
                                  igraph_max_edges=g.igraph_max_edges)
    else:
        paths = edges.sparkSession.createDataFrame(
            [], f"id {eigen.schema['id'].dataType.simpleString()}, "
                "betweenness_centrality double, closeness_centrality double")
    components, lpa, structure = components_and_lpa(edges, g, checkpoints, scored)
    undirected = real.select(F.least(SRC, DST).alias(SRC), F.greatest(SRC, DST).alias(DST)
                             ).distinct()
    sizes = assignment.groupBy("community").agg(F.count(F.lit(1)).alias("community_size"))
    out_deg = real.groupBy(F.col(SRC).alias("id")).agg(F.count(F.lit(1)).alias("out_degree"))
    in_deg = real.groupBy(F.col(DST).alias("id")).agg(F.count(F.lit(1)).alias("in_degree"))
    metrics = (
        influence_percentile(ranks)
        .join(assignment, "id", "left").join(sizes, "community", "left")
        .join(in_deg, "id", "left").join(out_deg, "id", "left")
        .join(components, "id", "left").join(lpa, "id", "left").join(eigen, "id", "left")
        .join(paths, "id", "left")
        .select(
            F.col("id").alias(S.USER_ID), F.lit(snapshot_date).alias(S.SNAPSHOT_DATE),
            "pagerank", "influence_percentile", F.col("community").alias("community_id"),
            "community_size",
            F.coalesce("in_degree", F.lit(0)).cast("long").alias("in_degree"),
            F.coalesce("out_degree", F.lit(0)).cast("long").alias("out_degree"),
            "component_id", "lpa_community", "eigenvector_centrality",
            "betweenness_centrality", "closeness_centrality",
            F.lit(run_id).alias(S.RUN_ID),
        )
    )
    videos = store.read(BRONZE_VIDEOS)
    summary = community_summary(
        assignment, undirected, ranks, users,
        category_views(events, videos, snapshot_date, g.interaction_window_days), g.top_creators,
    ).select(F.lit(snapshot_date).alias(S.SNAPSHOT_DATE), "*", F.lit(q).alias("modularity"),
             F.lit(structure["lpa_modularity"]).alias("lpa_modularity"),
             F.lit(structure["lpa_communities"]).cast("long").alias("lpa_communities"),
             F.lit(run_id).alias(S.RUN_ID))
    ctx.overwrite(result, metrics, GRAPH_METRICS, {S.SNAPSHOT_DATE: snapshot_date})
    vertices = result.rows_out
    ctx.overwrite(result, summary, COMMUNITIES, {S.SNAPSHOT_DATE: snapshot_date},
                  count_rows=False)
    result.details.update(
        modularity=q, communities=store.last_write.rows, vertices=vertices,
        edges=real.count(), planted_nmi=planted_nmi(spark, assignment, config.uri("truth")),
        **structure,
    )
    for frame in (ranks, assignment, components, lpa, eigen, paths,
                  *([scored.base] if scored else [])):
        frame.unpersist()
