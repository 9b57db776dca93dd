"""Eigenvector centrality: both engines equal networkx's ``eigenvector_centrality``."""

from __future__ import annotations

import networkx as nx
import pytest
from pyspark.sql.types import StringType

from mktpipe.graph import eigenvector_centrality


def _as_dict(df) -> dict:
    return {r["id"]: r["eigenvector_centrality"] for r in df.collect()}  # tiny graphs


@pytest.fixture(scope="module")
def karate(spark):
    g = nx.karate_club_graph()  # weighted (interaction counts), connected, 34 members
    rows = [(u, v, float(d["weight"])) for u, v, d in g.edges(data=True)]
    return g, spark.createDataFrame(rows, "src long, dst long, w double")


def test_spark_engine_equals_networkx_on_the_weighted_karate_club(karate):
    g, edges = karate
    expected = nx.eigenvector_centrality(g, weight="weight")  # tol 1e-6
    got = _as_dict(eigenvector_centrality(edges, weight="w", engine="spark"))
    assert got.keys() == expected.keys()
    for v in expected:  # the same iteration: equal up to floating-point summation order
        assert got[v] == pytest.approx(expected[v], abs=1e-10), v
    assert sum(x * x for x in got.values()) == pytest.approx(1.0)
    top = max(got, key=got.get)
    assert top == max(expected, key=expected.get) == 33  # the club's administrator


def test_local_engine_equals_networkx_at_convergence(karate):
    g, edges = karate
    expected = nx.eigenvector_centrality(g, weight="weight", tol=1e-12, max_iter=5000)
    got = _as_dict(eigenvector_centrality(edges, weight="w", engine="local"))
    for v in expected:
        assert got[v] == pytest.approx(expected[v], abs=1e-7), v


def test_string_ids_reciprocal_edges_sum_and_isolated_vertices(spark, config):
    rows = [("a", "b"), ("b", "a"), ("b", "c"), ("c", "d"), ("d", "b"), ("e", "d"),
            ("f", None)]  # a<->b is one edge of weight 2; f is isolated
    edges = spark.createDataFrame(rows, "from_user string, to_user string")
    g = nx.Graph()
    g.add_node("f")
    for s, d in rows:
        if d is not None:
            w = g[s][d]["weight"] + 1.0 if g.has_edge(s, d) else 1.0
            g.add_edge(s, d, weight=w)
    expected = nx.eigenvector_centrality(g, weight="weight", max_iter=1000)
    result = eigenvector_centrality(edges, src="from_user", dst="to_user", max_iter=1000,
                                    engine="spark",
                                    checkpoint_dir=str(config.paths.checkpoints))
    assert result.schema["id"].dataType == StringType()
    got = _as_dict(result)
    for v in expected:
        assert got[v] == pytest.approx(expected[v], abs=1e-10), v
    assert got["b"] == max(got.values())  # the hub
    assert got["f"] < 1e-3  # isolated: its start share shrinks every step


def test_bad_arguments_are_refused(karate):
    _, edges = karate
    with pytest.raises(ValueError, match="engine must be one of"):
        eigenvector_centrality(edges, engine="igraph")
    with pytest.raises(ValueError, match="max_iter >= 1 and tol > 0"):
        eigenvector_centrality(edges, tol=0.0)


def test_engines_agree_on_a_self_loop_and_a_second_component(spark):
    rows = [(1, 2, 1.0), (2, 3, 2.0), (3, 1, 1.0), (3, 3, 1.5), (4, 5, 0.5)]
    edges = spark.createDataFrame(rows, "src long, dst long, w double")
    g = nx.Graph()
    g.add_weighted_edges_from(rows)
    same_steps = nx.eigenvector_centrality(g, weight="weight")
    got = _as_dict(eigenvector_centrality(edges, weight="w", engine="spark"))
    for v in same_steps:
        assert got[v] == pytest.approx(same_steps[v], abs=1e-10), v
    converged = nx.eigenvector_centrality(g, weight="weight", tol=1e-12, max_iter=5000)
    got = _as_dict(eigenvector_centrality(edges, weight="w", engine="local"))
    for v in converged:
        assert got[v] == pytest.approx(converged[v], abs=1e-6), v
