"""mktpipe.graph.pagerank against networkx.pagerank (the oracle), per engine.

The test graph holds every case the engines must agree on: weights, duplicate rows (weights
summed), self-loops, dangling vertices, a zero-weight edge (its source becomes dangling), a
second component and an isolated vertex declared by a null dst.
"""

from __future__ import annotations

import random
import sys

import networkx as nx
import pytest
from pyspark.sql.types import DoubleType, LongType, StringType, StructField, StructType

from mktpipe.graph import pagerank
from mktpipe.session import capabilities

ENGINE_TOL = 1e-6

EDGE_SCHEMA = StructType(
    [
        StructField("src", LongType(), True),
        StructField("dst", LongType(), True),
        StructField("w", DoubleType(), True),
    ]
)


def _rows() -> list[tuple]:
    rng = random.Random(7)
    rows = [
        (rng.randrange(40), rng.randrange(40), round(rng.uniform(0.1, 3.0), 3)) for _ in range(90)
    ]
    rows += [
        (3, 3, 2.0),  # self-loop
        (4, 4, 0.5),
        (4, 5, 1.0),  # self-loop plus an out-edge
        (6, 7, 1.0),
        (6, 7, 2.5),  # duplicate: weights summed
        (50, 51, 1.0),
        (51, 52, 2.0),
        (52, 50, 0.5),  # a second component
        (60, 61, 0.0),  # zero weight: 60 has no out-weight, so it is dangling
        (70, None, None),  # isolated vertex: teleport only
    ]
    return rows


def _oracle(rows, weighted=True, tol=1e-13) -> dict:
    """networkx.DiGraph with duplicate rows' weights summed (a DiGraph would keep one)."""
    graph = nx.DiGraph()
    for src, dst, w in rows:
        graph.add_node(src)
        if dst is None:
            continue
        w = w if weighted else 1.0
        if graph.has_edge(src, dst):
            graph[src][dst]["weight"] += w
        else:
            graph.add_edge(src, dst, weight=w)
    return nx.pagerank(graph, alpha=0.85, weight="weight", tol=tol, max_iter=10_000)


def _as_dict(df) -> dict:
    return {row["id"]: row["pagerank"] for row in df.collect()}


def _assert_close(got: dict, expected: dict, tol: float = ENGINE_TOL) -> None:
    assert set(got) == set(expected)
    worst = max(abs(got[k] - expected[k]) for k in expected)
    assert worst < tol, f"max abs difference {worst:.3g} >= {tol}"
    assert sum(got.values()) == pytest.approx(1.0, abs=1e-9)


@pytest.fixture(scope="module")
def edges(spark):
    return spark.createDataFrame(_rows(), EDGE_SCHEMA)


@pytest.fixture(scope="module")
def expected():
    return _oracle(_rows())


def test_igraph_engine_matches_networkx(edges, expected):
    result = pagerank(edges, weight="w", engine="igraph")

    assert result.schema == StructType(
        [StructField("id", LongType(), False), StructField("pagerank", DoubleType(), False)]
    )
    _assert_close(_as_dict(result), expected, tol=1e-9)


def test_spark_engine_matches_networkx(edges, expected):
    result = _as_dict(pagerank(edges, weight="w", engine="spark"))

    _assert_close(result, expected)
    # nothing flows into 60 (dangling), 61 (fed by a zero weight) or 70 (isolated): each gets
    # the uniform teleport and dangling share only
    assert result[60] == pytest.approx(result[70], abs=1e-12)
    assert result[61] == pytest.approx(result[70], abs=1e-12)
    assert result[70] == pytest.approx(expected[70], abs=1e-9)


def test_spark_engine_above_the_broadcast_limit_matches_networkx(edges, expected, monkeypatch):
    # a graph with more vertices than BROADCAST_MAX_NODES: the ranks are joined and the
    # products shuffled to their dst instead of the ranks being broadcast
    monkeypatch.setattr(sys.modules["mktpipe.graph.pagerank"], "BROADCAST_MAX_NODES", 5)

    _assert_close(_as_dict(pagerank(edges, weight="w", engine="spark")), expected)


def test_spark_engine_string_ids_unweighted_reliable_checkpoint(spark, config):
    rows = [("a", "b"), ("b", "c"), ("c", "a"), ("c", "d"), ("d", "d"), ("e", "a"), ("f", None)]
    edges = spark.createDataFrame(rows, "from_user string, to_user string")
    expected = _oracle([(s, d, 1.0) for s, d in rows], weighted=False)

    result = pagerank(
        edges, src="from_user", dst="to_user", engine="spark",
        checkpoint_dir=str(config.paths.checkpoints),
    )

    assert result.schema["id"].dataType == StringType()
    _assert_close(_as_dict(result), expected)


def test_auto_engine_uses_igraph_for_small_graphs(edges, expected, caplog):
    caplog.set_level("INFO", logger="mktpipe.graph.pagerank")

    result = _as_dict(pagerank(edges, weight="w"))

    assert "pagerank engine=igraph" in caplog.text
    _assert_close(result, expected, tol=1e-9)


def test_auto_engine_goes_to_spark_above_the_igraph_limit(edges, expected, caplog):
    caplog.set_level("INFO", logger="mktpipe.graph.pagerank")

    result = _as_dict(pagerank(edges, weight="w", igraph_max_edges=10, max_iter=2))

    assert "pagerank engine=spark" in caplog.text
    assert set(result) == set(expected)  # two iterations only: values are not converged


def test_max_iter_reached_warns_and_returns_last_iterate(edges, caplog):
    result = _as_dict(pagerank(edges, weight="w", engine="spark", max_iter=1))

    assert "did not converge in 1 iterations" in caplog.text
    assert sum(result.values()) == pytest.approx(1.0, abs=1e-9)


def test_graphframes_engine_matches_networkx_without_dangling_vertices(spark):
    if not capabilities(spark).graphframes:
        pytest.skip(
            "GraphFrames jar not on this session (no graphframes*.jar in spark.jars_dir, "
            "spark.jars or $SPARK_HOME/jars); the graphframes engine cannot run here"
        )
    rows = [(1, 2), (2, 3), (3, 1), (3, 4), (4, 1), (5, 1), (1, 5)]
    edges = spark.createDataFrame(rows, "src long, dst long")

    result = _as_dict(pagerank(edges, engine="graphframes", tol=1e-10))

    # GraphX's stopping rule is per vertex, not networkx's L1 over N: looser tolerance
    _assert_close(result, _oracle([(s, d, 1.0) for s, d in rows], weighted=False), tol=1e-4)


def test_graphframes_engine_without_jar_is_a_clear_error(spark, edges):
    if capabilities(spark).graphframes:
        pytest.skip("GraphFrames jar present: the missing-jar error cannot be shown")
    with pytest.raises(RuntimeError, match="GraphFrames jar"):
        pagerank(edges, engine="graphframes")


def test_empty_edges_raise_naming_the_input(spark):
    with pytest.raises(ValueError, match="edges DataFrame is empty"):
        pagerank(spark.createDataFrame([], EDGE_SCHEMA), weight="w")


def test_missing_columns_listed_with_present_ones(edges):
    with pytest.raises(ValueError, match=r"missing column\(s\) \['source'\].*present columns"):
        pagerank(edges, src="source", weight="w")


def test_negative_weight_rejected(spark):
    edges = spark.createDataFrame([(1, 2, 1.0), (2, 1, -0.5)], EDGE_SCHEMA)
    with pytest.raises(ValueError, match="negative weight"):
        pagerank(edges, weight="w")


def test_null_weight_rejected(spark):
    edges = spark.createDataFrame([(1, 2, 1.0), (2, 1, None)], EDGE_SCHEMA)
    with pytest.raises(ValueError, match="null or NaN weight"):
        pagerank(edges, weight="w")


def test_null_source_rejected(spark):
    edges = spark.createDataFrame([(1, 2, 1.0), (None, 1, 1.0)], EDGE_SCHEMA)
    with pytest.raises(ValueError, match="null source id"):
        pagerank(edges, weight="w")


def test_mismatched_id_types_rejected(spark):
    edges = spark.createDataFrame([(1, "2")], "src long, dst string")
    with pytest.raises(ValueError, match="must have the same type"):
        pagerank(edges)


@pytest.mark.parametrize(
    "kwargs", [{"engine": "pregel"}, {"damping": 1.0}, {"max_iter": 0}, {"tol": 0.0}]
)
def test_bad_parameters_rejected(edges, kwargs):
    with pytest.raises(ValueError):
        pagerank(edges, **kwargs)
