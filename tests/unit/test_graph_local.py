"""The driver-local path of the igraph engines: a dense vertex index built in Spark, numeric
arrays only on the driver, and ``auto`` choosing it by edges, vertices and driver memory."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest
from pyspark.sql import functions as F

from mktpipe.graph import _local, label_propagation, louvain, pagerank, path_centralities
from mktpipe.session import temporary_conf


def test_dense_index_numbers_every_vertex_once_across_uneven_partitions(spark):
    # string ids over 5 partitions of different sizes (one empty after the filter)
    vertices = (spark.range(0, 1000, numPartitions=5)
                .where((F.col("id") % 7 != 0) & ((F.col("id") < 200) | (F.col("id") >= 400)))
                .select(F.concat(F.lit("u"), F.col("id").cast("string")).alias("id")))
    want = {r["id"] for r in vertices.collect()}
    index, n = _local.dense_index(vertices)
    first = {r["id"]: r["_vid"] for r in index.collect()}
    assert n == len(want) == len(first)
    assert set(first) == want
    assert sorted(first.values()) == list(range(n))
    # read again (a new job): the checkpoint keeps every id on its index
    assert {r["id"]: r["_vid"] for r in index.collect()} == first
    assert index.schema["id"].nullable is False


@pytest.fixture
def partitioning(spark):
    """``with partitioning(n):`` runs the block's queries with ``n`` shuffle partitions and AQE
    off (so that they are not coalesced into one); the session's settings come back after."""
    return lambda n: temporary_conf(spark, {"spark.sql.shuffle.partitions": str(n),
                                            "spark.sql.adaptive.enabled": "false"})


def test_dense_index_is_the_id_order_whatever_the_partitioning(spark, partitioning):
    vertices = spark.createDataFrame([(f"u{i:03d}",) for i in (5, 999, 17, 3, 250, 40, 8)],
                                     "id string").repartition(3)
    for n in (1, 2, 5):
        with partitioning(n):
            index, count = _local.dense_index(vertices)
            got = {r["id"]: r["_vid"] for r in index.collect()}
        assert got == {v: i for i, v in enumerate(sorted(got))} and count == 7, n


def test_edge_order_sorts_by_source_target_then_weight():
    src, dst = np.array([2, 0, 1, 0, 0]), np.array([1, 2, 0, 2, 1])
    weight = np.array([1.0, 3.0, 1.0, 2.0, 5.0])
    order = _local.edge_order(src, dst, weight, 3)
    assert list(zip(src[order], dst[order], weight[order])) == [
        (0, 1, 5.0), (0, 2, 2.0), (0, 2, 3.0), (1, 0, 1.0), (2, 1, 1.0)]
    distinct = _local.edge_order(src[:3], dst[:3], weight[:3], 3)  # no pair twice
    assert list(src[:3][distinct]) == [0, 1, 2]


def test_seeded_communities_do_not_depend_on_the_partitioning(spark, partitioning, tmp_path):
    """igraph's Louvain and label propagation follow vertex and edge order; the same graph and
    seed must give the same communities with any number of shuffle partitions (a local run
    and a cluster's). Before the index and the edge list had fixed orders, 2, 3 and 8
    partitions gave three different Louvain partitions of this graph (and its index test
    above failed too)."""
    graph = nx.LFR_benchmark_graph(1000, 3, 1.5, 0.4, average_degree=20, max_degree=50,
                                   min_community=20, max_community=100, seed=42)
    graph.remove_edges_from(list(nx.selfloop_edges(graph)))
    path = str(tmp_path / "edges.parquet")
    spark.createDataFrame([(u, v, 1.0) for u, v in graph.edges()],
                          "src long, dst long, weight double").write.parquet(path)
    edges = spark.read.parquet(path)  # from files, as the stage reads its tables
    results = []
    for n in (2, 8):
        with partitioning(n):
            louvain_ = {r["id"]: r["community"] for r in
                        louvain(edges, weight="weight", engine="igraph", seed=1).collect()}
            lpa = {r["id"]: r["community"] for r in
                   label_propagation(edges, weight="weight", engine="igraph", seed=1).collect()}
        results.append((louvain_, lpa))
    assert len(results[0][0]) == 1000 and len(set(results[0][0].values())) > 5
    assert results[1] == results[0]


def test_spark_louvain_blocks_do_not_depend_on_the_partitioning(spark, partitioning):
    """The spark Louvain's first level in blocks: rows reach each block's task in the
    shuffle's order, which follows the partitioning; the block numbers its vertices in id
    order and sorts its edges before igraph sees them, so the same seed gives the same
    communities (numbered in arrival order, 2 and 8 partitions gave different ones here)."""
    graph = nx.karate_club_graph()
    edges = spark.createDataFrame([(u, v, 1.0) for u, v in graph.edges()],
                                  "src long, dst long, weight double")
    results = []
    for n in (2, 8):
        with partitioning(n):
            results.append({r["id"]: r["community"] for r in louvain(
                edges, weight="weight", engine="spark", seed=4, block_nodes=12).collect()})
    assert len(results[0]) == 34 and results[1] == results[0]


def test_local_graph_round_trip_maps_results_back_to_ids(spark):
    edges = spark.createDataFrame(
        [("a", "b", 1.0), ("b", "c", 2.0), ("x", "y", 0.5)],
        "src string, dst string, weight double")
    vertices = spark.createDataFrame([("a",), ("b",), ("c",), ("x",), ("y",), ("z",)], "id string")
    local = _local.to_local(edges, vertices)
    assert local.n == 6 and len(local.src) == 3
    membership = local.igraph(directed=False).connected_components(mode="weak").membership
    got = {r["id"]: r["component"] for r in local.partition(membership, "component").collect()}
    assert got == {"a": "a", "b": "a", "c": "a", "x": "x", "y": "x", "z": "z"}
    degree = local.igraph(directed=False).strength(weights=local.weights())
    got = {r["id"]: r["strength"] for r in local.values(degree, "strength").collect()}
    assert got == {"a": 1.0, "b": 3.0, "c": 2.0, "x": 0.5, "y": 0.5, "z": 0.0}


def test_fits_counts_edges_and_vertices_against_the_heap():
    heap = 1 << 30  # 1 GiB: a quarter is 268 MB
    assert _local.fits(500_000, 100_000, heap)  # ~134 MB
    assert not _local.fits(1_500_000, 100_000, heap)  # edges alone ~384 MB
    assert not _local.fits(0, 5_000_000, heap)  # 5 M isolated users: 320 MB


def test_auto_keeps_a_graph_that_does_not_fit_the_driver_in_spark(spark, monkeypatch):
    rows = [(i, (i * 7 + 3) % 40, 1.0) for i in range(40)]
    edges = spark.createDataFrame(rows, "src long, dst long, w double")
    want = nx.pagerank(nx.DiGraph([(s, d, {"weight": w}) for s, d, w in rows]), tol=1e-12)
    chosen = []
    real_choose = _local.choose

    def spy(*args, **kwargs):
        chosen.append(real_choose(*args, **kwargs))
        return chosen[-1]

    monkeypatch.setattr(_local, "choose", spy)
    monkeypatch.setattr(_local, "driver_heap_bytes", lambda spark: 10_000)  # ~ 40 edges' worth
    ranks = {r["id"]: r["pagerank"] for r in pagerank(edges, weight="w").collect()}
    assert chosen == ["spark"]
    assert max(abs(ranks[v] - want[v]) for v in want) < 1e-6
    monkeypatch.setattr(_local, "driver_heap_bytes", lambda spark: 1 << 30)
    louvain(edges, weight="w", seed=1).count()
    assert chosen[-1] == "igraph"


def test_leiden_that_cannot_run_on_the_driver_says_what_to_change(spark, monkeypatch):
    edges = spark.createDataFrame([(1, 2, 1.0), (2, 3, 1.0)], "src long, dst long, w double")
    monkeypatch.setattr(_local, "driver_heap_bytes", lambda spark: 100)
    with pytest.raises(ValueError, match="spark.driver_memory"):
        louvain(edges, weight="w", method="leiden")


def test_one_trip_to_the_driver_scores_like_each_engine_and_networkx(spark):
    """score_on_driver (the graph stage's small-graph path) against the per-algorithm igraph /
    local engines and networkx, on a weighted graph with reciprocal and duplicate rows, a
    self-loop, a zero-weight edge, a second component and an isolated vertex."""
    from mktpipe.graph import connected_components, eigenvector_centrality, modularity
    from mktpipe.graph.suite import score_on_driver

    g = nx.planted_partition_graph(3, 8, 0.7, 0.05, seed=3)
    rows = [(f"v{u}", f"v{v}", 1.0 + (u + v) % 3) for u, v in g.edges()]
    rows += [("v1", "v0", 2.0), ("v1", "v0", 0.5), ("v5", "v5", 1.5), ("v9", "v10", 0.0),
             ("p", "q", 1.0), ("lonely", None, None)]
    edges = spark.createDataFrame(rows, "src string, dst string, weight double")
    engines = dict.fromkeys(("pagerank", "louvain", "components", "lpa", "eigenvector",
                             "paths"), "auto")
    got = score_on_driver(edges, "weight", 0.85, 1.0, 7, 1000, engines, path_sources=9)
    assert got is not None
    try:
        def as_dict(df, column):
            return {r["id"]: r[column] for r in df.collect()}

        ranks = as_dict(got.pagerank, "pagerank")
        want = as_dict(pagerank(edges, weight="weight", engine="igraph"), "pagerank")
        assert ranks.keys() == want.keys() and "lonely" in ranks
        for v in want:
            assert ranks[v] == pytest.approx(want[v], abs=1e-12)
        eig = as_dict(got.eigenvector, "eigenvector_centrality")
        want = as_dict(eigenvector_centrality(edges, weight="weight", engine="local"),
                       "eigenvector_centrality")
        for v in want:
            assert eig[v] == pytest.approx(want[v], abs=1e-9)
        assert as_dict(got.components, "component") == as_dict(
            connected_components(edges, engine="igraph"), "component")
        # betweenness and closeness from the same 9 seeded sources as path_centralities (its
        # igraph engine: test_paths.py checks both engines against networkx's formula with
        # the same sources, so the DataFrame search is not repeated here)
        paths = {r["id"]: r for r in got.paths.collect()}
        want = {r["id"]: r for r in
                path_centralities(edges, k=9, seed=7, engine="igraph").collect()}
        assert paths.keys() == want.keys()
        for v in want:
            for column in ("betweenness_centrality", "closeness_centrality"):
                assert paths[v][column] == pytest.approx(want[v][column], abs=1e-12), v
        assert max(r["betweenness_centrality"] for r in want.values()) > 0
        # the heuristics: partitions whose modularity (driver-side) equals Spark's exact one
        # and networkx's, as good as the per-algorithm engines' partitions
        oracle = nx.Graph()
        for s, d, w in rows:
            if d is None:
                oracle.add_node(s)
            elif oracle.has_edge(s, d):
                oracle[s][d]["weight"] += w
            else:
                oracle.add_edge(s, d, weight=w)
        for frame, q in ((got.louvain, got.louvain_modularity), (got.lpa, got.lpa_modularity)):
            parts = {}
            for v, c in as_dict(frame, "community").items():
                parts.setdefault(c, set()).add(v)
            assert q == pytest.approx(
                nx.community.modularity(oracle, parts.values(), weight="weight"), abs=1e-12)
            assert all(c == min(members) for c, members in parts.items())
        assert got.louvain_modularity == pytest.approx(
            modularity(edges, got.louvain, weight="weight"), abs=1e-12)  # Spark's exact one
        alone = louvain(edges, weight="weight", engine="igraph", seed=7)
        assert got.louvain_modularity >= modularity(edges, alone, weight="weight") - 0.02
    finally:
        got.base.unpersist()
    engines["paths"] = "spark"  # the others still on the driver; paths left to the caller
    spared = score_on_driver(edges, "weight", 0.85, 1.0, 7, 1000, engines, path_sources=9)
    assert spared is not None and spared.paths is None
    spared.base.unpersist()
    engines["louvain"] = "spark"
    assert score_on_driver(edges, "weight", 0.85, 1.0, 7, 1000, engines) is None
    engines["louvain"] = "auto"
    assert score_on_driver(edges, "weight", 0.85, 1.0, 7, 10, engines) is None  # too many edges
