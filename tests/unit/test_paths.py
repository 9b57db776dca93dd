"""Betweenness and closeness, both engines (DataFrames, igraph on the driver) against
networkx: exact with every vertex a source, and networkx's own sampling scale with k
sources."""

from __future__ import annotations

import networkx as nx
import pytest

from mktpipe.graph.paths import BETWEENNESS, CLOSENESS, path_centralities, sample_sources


def _graph() -> nx.DiGraph:
    """Two dense groups joined by a bridge, a directed chain, a pendant, a parallel edge's
    duplicate and an isolated vertex: several shortest paths of equal length and unreachable
    pairs."""
    g = nx.gnp_random_graph(14, 0.25, seed=3, directed=True)
    g.add_edges_from((u + 20, v + 20) for u, v in nx.gnp_random_graph(10, 0.3, seed=4,
                                                                     directed=True).edges)
    g.add_edges_from([(2, 20), (20, 2), (25, 40), (40, 41), (41, 42), (7, 50)])
    g.add_node(99)
    return g


def _frame(spark, g: nx.DiGraph):
    rows = [(int(u), int(v)) for u, v in g.edges] + [(int(u), int(v)) for u, v in
                                                      list(g.edges)[:3]]  # duplicates
    rows += [(int(u), None) for u in g.nodes if g.degree(u) == 0]  # isolated: declared
    return spark.createDataFrame(rows, "src long, dst long")


ENGINES = pytest.mark.parametrize("engine", ["spark", "igraph"])


@ENGINES
def test_exact_betweenness_and_closeness_equal_networkx(spark, engine):
    g = _graph()
    got = {r["id"]: r for r in path_centralities(_frame(spark, g), engine=engine).collect()}
    assert set(got) == set(g.nodes)
    betweenness = nx.betweenness_centrality(g, normalized=True)
    closeness = nx.closeness_centrality(g)
    for v in g.nodes:
        assert got[v][BETWEENNESS] == pytest.approx(betweenness[v], abs=1e-12), v
        assert got[v][CLOSENESS] == pytest.approx(closeness[v], abs=1e-12), v
    assert max(betweenness.values()) > 0.05  # the bridges carry real traffic


@ENGINES
def test_sampled_sources_scale_like_networkx(spark, engine):
    """With k sources the estimate is networkx's betweenness_centrality(G, k) formula for the
    same sources: dependencies from those sources only, times n / k."""
    g = _graph()
    k = 12
    frame = _frame(spark, g)
    vertices = spark.createDataFrame([(int(v),) for v in g.nodes], "id long")
    chosen = [r[0] for r in sample_sources(vertices, k, seed=9).collect()]
    assert len(chosen) == k == len(set(chosen))
    got = {r["id"]: r for r in path_centralities(frame, k=k, seed=9, engine=engine).collect()}
    n = g.number_of_nodes()
    expected = dict.fromkeys(g.nodes, 0.0)
    for s in chosen:  # Brandes from each chosen source, by networkx's own helpers
        stack, pred, sigma, _ = nx.algorithms.centrality.betweenness._single_source_shortest_path_basic(g, s)  # noqa: E501
        delta = dict.fromkeys(stack, 0.0)
        while stack:
            w = stack.pop()
            for v in pred[w]:
                delta[v] += sigma[v] / sigma[w] * (1 + delta[w])
            if w != s:
                expected[w] += delta[w]
    for v in g.nodes:
        want = expected[v] * (n / k) / ((n - 1) * (n - 2))
        assert got[v][BETWEENNESS] == pytest.approx(want, abs=1e-12), v
    # closeness from the sampled sources: r/m * r/sum(d) over the sampled sources reaching v
    for v in g.nodes:
        dist = [nx.shortest_path_length(g, s, v) for s in chosen
                if s != v and nx.has_path(g, s, v)]
        m = k - (v in chosen)
        want = (len(dist) / m) * (len(dist) / sum(dist)) if dist else 0.0
        assert got[v][CLOSENESS] == pytest.approx(want, abs=1e-12), v


@ENGINES
def test_bad_arguments(spark, engine):
    frame = spark.createDataFrame([(1, 2)], "src long, dst long")
    with pytest.raises(ValueError, match="k must be"):
        path_centralities(frame, k=0, engine=engine)
    with pytest.raises(ValueError, match="engine must be one of"):
        path_centralities(frame, engine="networkx")
    chain = spark.createDataFrame([(i, i + 1) for i in range(6)], "src long, dst long")
    with pytest.raises(ValueError, match="longer than max_depth 3"):
        path_centralities(chain, max_depth=3, engine=engine)
    assert path_centralities(chain, max_depth=6, engine=engine).count() == 7
