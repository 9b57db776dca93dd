"""mktpipe.graph.connected_components and label_propagation, with networkx as the oracle."""

from __future__ import annotations

import random

import networkx as nx
import pytest
from pyspark.sql.types import DoubleType, LongType, StringType, StructField, StructType

from mktpipe.graph import connected_components, label_propagation, modularity
from mktpipe.graph.metrics import nmi

ENGINES = ["spark", "igraph"]
EDGE_SCHEMA = StructType(
    [
        StructField("src", LongType(), True),
        StructField("dst", LongType(), True),
        StructField("w", DoubleType(), True),
    ]
)


# --- helpers -----------------------------------------------------------------------------
def _nx_graph(rows) -> nx.Graph:
    """The undirected graph the module means (a null dst declares an isolated vertex)."""
    graph = nx.Graph()
    for src, dst, *_ in rows:
        graph.add_node(src)
        if dst is not None:
            graph.add_edge(src, dst)
    return graph


def _expected_components(graph: nx.Graph) -> dict:
    return {v: min(part) for part in nx.connected_components(graph) for v in part}


def _as_dict(df, column: str) -> dict:
    return {row["id"]: row[column] for row in df.collect()}


def _parts(assignment: dict) -> set[frozenset]:
    groups: dict = {}
    for node, label in assignment.items():
        groups.setdefault(label, set()).add(node)
    return {frozenset(g) for g in groups.values()}


def _named_by_smallest_member(assignment: dict) -> bool:
    return all({assignment[v] for v in part} == {min(part)} for part in _parts(assignment))


def _scattered_rows() -> list[tuple]:
    """Several components, a self-loop on a vertex of its own, duplicates, both directions
    and a declared isolated vertex."""
    rng = random.Random(11)
    rows = [(rng.randrange(60), rng.randrange(60), 1.0) for _ in range(45)]
    rows += [
        (70, 70, 1.0),  # only a self-loop: its own component
        (71, 72, 1.0), (72, 71, 1.0), (71, 72, 2.0),  # both directions and a duplicate
        (80, None, None),  # isolated vertex declared by a null dst
    ]
    return rows


# --- connected components ------------------------------------------------------------------
@pytest.mark.parametrize("engine", ENGINES)
def test_components_equal_networkx_on_a_disconnected_graph(spark, engine):
    rows = _scattered_rows()
    edges = spark.createDataFrame(rows, EDGE_SCHEMA)

    got = _as_dict(connected_components(edges, engine=engine), "component")

    expected = _expected_components(_nx_graph(rows))
    assert len(set(expected.values())) > 5  # the oracle graph really is disconnected
    assert got == expected
    assert got[70] == 70 and got[80] == 80 and got[72] == 71


@pytest.mark.parametrize("engine", ENGINES)
def test_components_of_extra_vertices_and_string_ids(spark, engine):
    rows = [("b", "a"), ("c", "b"), ("x", "y"), ("q", "q"), ("d", "c")]
    edges = spark.createDataFrame(rows, "u string, v string")
    vertices = spark.createDataFrame([("lonely",), ("a",), ("zz",)], "id string")

    got = _as_dict(
        connected_components(edges, src="u", dst="v", engine=engine, vertices=vertices),
        "component",
    )

    graph = _nx_graph(rows)
    graph.add_nodes_from(["lonely", "a", "zz"])
    assert got == _expected_components(graph)
    assert got["d"] == "a" and got["lonely"] == "lonely" and got["q"] == "q"


@pytest.mark.parametrize("engine", ENGINES)
def test_components_of_a_long_path_with_shuffled_ids(spark, engine):
    # a path whose ids are in random order: min-label propagation would need ~300 rounds
    # (the diameter); large-star/small-star needs a few
    order = list(range(300))
    random.Random(5).shuffle(order)
    rows = [(order[i], order[i + 1], 1.0) for i in range(len(order) - 1)]
    rows += [(1000 + i, 1001 + i, 1.0) for i in range(40)]  # a second path, in id order
    edges = spark.createDataFrame(rows, EDGE_SCHEMA)

    got = _as_dict(connected_components(edges, engine=engine), "component")

    assert got == _expected_components(_nx_graph(rows))
    assert set(got.values()) == {0, 1000}


def test_components_spark_raises_rather_than_return_a_partial_answer(spark):
    rows = [(i, i + 1, 1.0) for i in range(50)]
    edges = spark.createDataFrame(rows, EDGE_SCHEMA)
    with pytest.raises(RuntimeError, match="did not converge in 1 rounds"):
        connected_components(edges, engine="spark", max_rounds=1)


def test_components_reject_bad_input(spark):
    edges = spark.createDataFrame([(1, 2, 1.0)], EDGE_SCHEMA)
    with pytest.raises(ValueError, match="engine must be one of"):
        connected_components(edges, engine="graphframes")
    with pytest.raises(ValueError, match="vertices column 'id' is string"):
        connected_components(edges, vertices=spark.createDataFrame([("1",)], "id string"))
    with pytest.raises(ValueError, match=r"missing column\(s\) \['id'\]"):
        connected_components(edges, vertices=spark.createDataFrame([(1,)], "user long"))


# --- label propagation ---------------------------------------------------------------------
def _two_cliques(size: int = 6) -> list[tuple]:
    left = [(i, j, 1.0) for i in range(size) for j in range(i + 1, size)]
    right = [(size + i, size + j, 1.0) for i, j, _ in left]
    return left + right + [(size - 1, size, 1.0), (2 * size + 5, None, None)]


@pytest.mark.parametrize("engine", ENGINES)
def test_lpa_finds_two_cliques_joined_by_one_edge(spark, engine):
    rows = _two_cliques()
    edges = spark.createDataFrame(rows, EDGE_SCHEMA)

    got = _as_dict(label_propagation(edges, weight="w", engine=engine, seed=1), "community")

    assert _parts(got) == {frozenset(range(6)), frozenset(range(6, 12)), frozenset({17})}
    assert _named_by_smallest_member(got)


def test_lpa_spark_follows_weights_and_breaks_ties_by_smallest_label(spark):
    # two 4-cliques and a vertex 20 with one edge to each: unweighted it is a tie, which the
    # smaller label (0) wins; a heavier edge to the second clique pulls it there
    cliques = [(a + i, a + j) for a in (0, 10) for i in range(4) for j in range(i + 1, 4)]
    rows = [(s, d, 1.0) for s, d in cliques] + [(20, 3, 1.0), (20, 13, 2.5)]
    edges = spark.createDataFrame(rows, EDGE_SCHEMA)

    weighted = _as_dict(label_propagation(edges, weight="w", engine="spark"), "community")
    unweighted = _as_dict(label_propagation(edges, engine="spark"), "community")

    assert _parts(weighted) == {frozenset(range(4)), frozenset({10, 11, 12, 13, 20})}
    assert _parts(unweighted) == {frozenset({0, 1, 2, 3, 20}), frozenset(range(10, 14))}


def test_lpa_spark_breaks_swaps_and_stops_at_max_iter(spark, caplog):
    # plain synchronous LPA swaps the labels of an edge's two ends, and of a star's centre and
    # leaves, forever; the seeded coin ends the swap
    star = [(0, leaf, 1.0) for leaf in range(1, 7)]
    edges = spark.createDataFrame(star + [(10, 11, 1.0)], EDGE_SCHEMA)

    got = _as_dict(label_propagation(edges, engine="spark", seed=7), "community")

    assert _parts(got) == {frozenset(range(7)), frozenset({10, 11})}
    with caplog.at_level("WARNING", logger="mktpipe.graph.label_propagation"):
        first = _as_dict(label_propagation(edges, engine="spark", max_iter=1), "community")
    assert first[10] == 10 and first[11] == 11  # after one round the pair has swapped labels
    assert "stopped at max_iter=1 with 9 label(s) still changing" in caplog.text


def test_lpa_spark_matches_networkx_on_a_planted_partition(spark):
    # a seed where networkx's (semi-synchronous) LPA recovers the 4 planted groups; on some
    # other seeds it merges two of them and the spark engine scores higher than the reference
    graph = nx.planted_partition_graph(4, 25, 0.4, 0.02, seed=0)
    planted = {v: i for i, part in enumerate(graph.graph["partition"]) for v in part}
    edges = spark.createDataFrame([(u, v, 1.0) for u, v in graph.edges()], EDGE_SCHEMA)

    got = label_propagation(edges, engine="spark").cache()

    reference = nx.community.modularity(graph, nx.community.label_propagation_communities(graph))
    assert modularity(edges, got) == pytest.approx(reference, abs=0.05)
    assert nmi(_as_dict(got, "community"), planted) > 0.9
    got.unpersist()


def test_lpa_string_ids_and_bad_input(spark):
    rows = [("a", "b"), ("b", "c"), ("a", "c"), ("x", "y"), ("y", "w"), ("w", "x")]
    edges = spark.createDataFrame(rows, StructType([StructField("s", StringType()),
                                                    StructField("t", StringType())]))
    for engine in ENGINES:
        got = _as_dict(label_propagation(edges, src="s", dst="t", engine=engine, seed=2),
                       "community")
        assert got == {"a": "a", "b": "a", "c": "a", "x": "w", "y": "w", "w": "w"}, engine
    with pytest.raises(ValueError, match="max_iter must be >= 1"):
        label_propagation(edges, src="s", dst="t", max_iter=0)
    with pytest.raises(ValueError, match="engine must be one of"):
        label_propagation(edges, src="s", dst="t", engine="graphframes")
