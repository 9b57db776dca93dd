"""PageRank and Louvain: the Spark engines against igraph on the driver, at a few sizes.

For each edge count in ``--sizes`` a planted-community graph is generated with numpy (a
degree-corrected stochastic block model: power-law community sizes, Pareto vertex propensities
for heavy-tailed degrees, a share ``--mixing`` of edges between communities; LFR is far too slow
at a million edges). Then, each engine once:

* PageRank (directed: each generated pair oriented at random, weights uniform in [0.5, 2]):
  time per engine, the time ratio spark/igraph, and the largest difference between the two;
* eigenvector centrality (the same pairs, undirected): spark vs local (scipy's ARPACK on the
  driver, in igraph's column), time ratio and largest difference;
* betweenness and closeness (the same pairs, directed, unweighted) from ``--path-sources``
  sampled sources, per engine (spark: the DataFrame search; igraph: on the driver): time of
  each, their ratio and largest difference; then igraph's exact betweenness and closeness:
  its time, the Spearman rank correlation of the estimate with the exact values, and the
  overlap of their top 100 vertices;
* Louvain (the same pairs, undirected): time, modularity (computed in Spark), the ratios
  spark/igraph of time and modularity, and NMI against the planted partition.

Then NMI against the planted partition on networkx LFR graphs (``--lfr-sizes``, mixing 0.1 and
0.3), per Louvain engine.

    .venv/bin/python bench/graph.py                                # 100k edges, LFR n=1000
    .venv/bin/python bench/graph.py --sizes 100000,1000000 --lfr-sizes 1000,5000
    .venv/bin/python bench/graph.py --sizes 20000 --skip pagerank --engines spark
    .venv/bin/python bench/graph.py --lfr-sizes 5000 --block-nodes 1250   # Louvain, 4 blocks

Times include bringing the result to the driver (n rows), and for igraph bringing the edges
there too: what a caller pays. The first timed call also pays the JVM's warm-up, so a small
warm-up graph runs first. The load average is printed: on a shared machine compare the ratios
within one run, not absolute seconds across runs.
"""

from __future__ import annotations

import argparse
import logging
import os
import tempfile
import time

import networkx as nx
import numpy as np
import pandas as pd

from mktpipe.config import load_config
from mktpipe.graph import (
    eigenvector_centrality,
    louvain,
    modularity,
    pagerank,
    path_centralities,
)
from mktpipe.graph._louvain_blocks import BLOCK_NODES
from mktpipe.graph.metrics import nmi
from mktpipe.session import get_spark

log = logging.getLogger("bench.graph")


def planted_graph(
    n_edges: int, avg_degree: float = 20.0, mixing: float = 0.2, seed: int = 0
) -> tuple[pd.DataFrame, np.ndarray]:
    """A degree-corrected SBM: ``(edges[src, dst, weight], planted community per vertex)``.

    Vertices ``0..n-1`` with ``n = 2 * n_edges / avg_degree``; community sizes drawn from a
    power law (exponent 1.5, 20..1000 vertices); propensities ``theta ~ 1 + Pareto(2.5)`` give a
    heavy-tailed degree distribution. An edge is intra-community with probability
    ``1 - mixing``: its first end drawn by theta over all vertices, its second by theta inside
    the first's community; otherwise both ends by theta over all vertices. Self-loops and
    repeated pairs are dropped, so the count is a little under ``n_edges``.
    """
    rng = np.random.default_rng(seed)
    n = max(int(2 * n_edges / avg_degree), 50)
    sizes = []
    while sum(sizes) < n:
        sizes.append(int(min(1000, 20 * (1 - rng.random()) ** (-1 / 0.5))))
    sizes[-1] -= sum(sizes) - n
    community = np.repeat(np.arange(len(sizes)), sizes)  # vertices sorted by community
    theta = 1.0 + rng.pareto(2.5, size=n)
    cum = np.cumsum(theta)
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    base = np.concatenate([[0.0], cum])[starts]  # theta mass before each community
    mass = cum[starts + np.array(sizes) - 1] - base
    draws = int(n_edges * 1.15)  # room for dropped loops and repeats
    src = np.searchsorted(cum, rng.random(draws) * cum[-1])
    inside = rng.random(draws) >= mixing
    comm = community[src]
    dst_inside = np.searchsorted(cum, base[comm] + rng.random(draws) * mass[comm])
    dst_any = np.searchsorted(cum, rng.random(draws) * cum[-1])
    dst = np.minimum(np.where(inside, dst_inside, dst_any), n - 1)
    pairs = np.unique(np.stack([np.minimum(src, dst), np.maximum(src, dst)], axis=1)[src != dst],
                      axis=0)
    pairs = pairs[rng.permutation(len(pairs))[:n_edges]]
    flip = rng.random(len(pairs)) < 0.5  # random orientation for the directed PageRank
    edges = pd.DataFrame({
        "src": np.where(flip, pairs[:, 1], pairs[:, 0]).astype("int64"),
        "dst": np.where(flip, pairs[:, 0], pairs[:, 1]).astype("int64"),
        "weight": rng.uniform(0.5, 2.0, len(pairs)),
    })
    return edges, community


def lfr_graph(n: int, mu: float, seed: int = 42) -> tuple[pd.DataFrame, np.ndarray]:
    """networkx's LFR benchmark (unweighted) and its planted partition."""
    graph = nx.LFR_benchmark_graph(n, 3, 1.5, mu, average_degree=20, max_degree=50,
                                   min_community=20, max_community=max(100, n // 10), seed=seed)
    graph.remove_edges_from(list(nx.selfloop_edges(graph)))
    planted = np.array([min(graph.nodes[v]["community"]) for v in range(n)])
    edges = pd.DataFrame(list(graph.edges()), columns=["src", "dst"]).astype("int64")
    edges["weight"] = 1.0
    return edges, planted


def file_backed(spark, frame: pd.DataFrame, folder: str, name: str):
    """``frame`` as a DataFrame read from Parquet, as the graph stage's edges are (read from
    Delta). A DataFrame made by ``createDataFrame`` from pandas is a local relation holding
    every row in its plan: each later query over it (and over a cache of anything derived from
    it) compares and copies those rows while planning, about 1-2 s per query at a million
    edges, which would be timed as the engines' cost."""
    path = os.path.join(folder, f"{name}.parquet")
    frame.to_parquet(path, index=False)
    return spark.read.parquet(path)


def _timed(fn):
    started = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - started


def bench_pagerank(edges_df, engines) -> dict:
    out = {}
    for engine in engines:
        ranks, seconds = _timed(
            lambda e=engine: pagerank(edges_df, weight="weight", engine=e).toPandas()
        )
        out[engine] = (ranks.set_index("id")["pagerank"].sort_index(), seconds)
    row = {f"pr_{e}_s": s for e, (_, s) in out.items()}
    if {"spark", "igraph"} <= set(out):
        row["pr_time_ratio"] = out["spark"][1] / out["igraph"][1]
        row["pr_max_diff"] = float((out["spark"][0] - out["igraph"][0]).abs().max())
    return row


def bench_eigenvector(edges_df, engines) -> dict:
    """Eigenvector centrality: spark vs local (scipy on the driver) for igraph's slot."""
    out = {}
    for engine in engines:
        engine = "local" if engine == "igraph" else engine
        values, seconds = _timed(lambda e=engine: eigenvector_centrality(
            edges_df, weight="weight", engine=e).toPandas())
        out[engine] = (values.set_index("id")["eigenvector_centrality"].sort_index(), seconds)
    row = {f"ev_{e}_s": s for e, (_, s) in out.items()}
    if {"spark", "local"} <= set(out):
        row["ev_time_ratio"] = out["spark"][1] / out["local"][1]
        row["ev_max_diff"] = float((out["spark"][0] - out["local"][0]).abs().max())
    return row


def bench_paths(edges_df, k: int, engines) -> dict:
    """Sampled betweenness / closeness from ``k`` sources, per engine (the same sources and
    values: the largest difference is printed), against igraph's exact values."""
    import igraph as ig
    from scipy.stats import spearmanr

    out = {}
    for engine in engines:
        values, seconds = _timed(
            lambda e=engine: path_centralities(edges_df, k=k, engine=e).toPandas())
        out[engine] = (values.set_index("id").sort_index(), seconds)
    row = {"paths_k": k, **{f"paths_{e}_s": s for e, (_, s) in out.items()}}
    if {"spark", "igraph"} <= set(out):
        row["paths_time_ratio"] = out["spark"][1] / out["igraph"][1]
        row["paths_max_diff"] = float((out["spark"][0] - out["igraph"][0]).abs().max().max())
    est = next(iter(out.values()))[0]
    started = time.perf_counter()
    pairs = edges_df.select("src", "dst").toPandas()
    ids = np.union1d(pairs.src.to_numpy(), pairs.dst.to_numpy())
    index = {v: i for i, v in enumerate(ids)}
    g = ig.Graph(n=len(ids), edges=list(zip(pairs.src.map(index), pairs.dst.map(index))),
                 directed=True).simplify()
    n = len(ids)
    exact_b = np.array(g.betweenness(directed=True)) / ((n - 1) * (n - 2))
    exact_c = np.zeros(n)  # closeness by networkx's Wasserman-Faust rule, from igraph BFS
    for v in range(n):
        dist = np.array(g.distances(source=[v], mode="in")).ravel()  # d(s, v) for every s
        reach = np.isfinite(dist) & (dist > 0)
        r = reach.sum()
        exact_c[v] = (r / (n - 1)) * (r / dist[reach].sum()) if r else 0.0
    row["paths_igraph_exact_s"] = time.perf_counter() - started
    got_b = est.loc[ids, "betweenness_centrality"].to_numpy()
    got_c = est.loc[ids, "closeness_centrality"].to_numpy()

    def top_overlap(a, b, m=100):
        return len(set(np.argsort(-a)[:m]) & set(np.argsort(-b)[:m])) / m

    row.update({"betweenness_spearman": spearmanr(got_b, exact_b).statistic,
                "betweenness_top100": top_overlap(got_b, exact_b),
                "closeness_spearman": spearmanr(got_c, exact_c).statistic,
                "closeness_top100": top_overlap(got_c, exact_c)})
    return row


def bench_louvain(edges_df, planted: np.ndarray, engines, seed: int, prefix="lv",
                  block_nodes: int = BLOCK_NODES) -> dict:
    row = {}
    for engine in engines:
        blocks = {"block_nodes": block_nodes} if engine == "spark" else {}
        result, seconds = _timed(
            lambda e=engine, b=blocks: louvain(edges_df, weight="weight", engine=e, seed=seed,
                                               **b).toPandas()
        )
        spark = edges_df.sparkSession
        q = modularity(edges_df, spark.createDataFrame(result), weight="weight")
        found = result.set_index("id")["community"].sort_index()
        row.update({
            f"{prefix}_{engine}_s": seconds, f"{prefix}_{engine}_q": q,
            f"{prefix}_{engine}_nmi": nmi(planted[found.index.to_numpy()], found.to_numpy()),
            f"{prefix}_{engine}_k": found.nunique(),
        })
    if {"spark", "igraph"} <= set(engines):
        row[f"{prefix}_time_ratio"] = row[f"{prefix}_spark_s"] / row[f"{prefix}_igraph_s"]
        row[f"{prefix}_q_ratio"] = row[f"{prefix}_spark_q"] / row[f"{prefix}_igraph_q"]
    return row


def _table(rows: list[dict]) -> str:
    frame = pd.DataFrame(rows).set_index("graph").T
    return frame.to_string(float_format=lambda v: f"{v:.4g}")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="100000", help="edge counts, comma separated")
    parser.add_argument("--lfr-sizes", default="1000", help="LFR vertex counts (0: skip)")
    parser.add_argument("--engines", default="spark,igraph")
    parser.add_argument("--skip", default="",
                        help="pagerank, eigenvector, paths and/or louvain")
    parser.add_argument("--path-sources", type=int, default=64,
                        help="sampled sources for betweenness and closeness")
    parser.add_argument("--mixing", type=float, default=0.2)
    parser.add_argument("--block-nodes", type=int, default=BLOCK_NODES,
                        help="spark Louvain: vertices per block of its first level (0: "
                             "synchronous rounds instead)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--env", default="local", help="config overlay for the session")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("mktpipe.graph").setLevel(logging.INFO)
    engines = [e for e in args.engines.split(",") if e]
    skip = set(args.skip.split(","))
    spark = get_spark(load_config(args.env))

    warm, warm_planted = planted_graph(2000, seed=99)
    scratch = tempfile.TemporaryDirectory(prefix="mktpipe-bench-graph-")
    warm_df = file_backed(spark, warm, scratch.name, "warm")
    bench_pagerank(warm_df, engines)
    bench_eigenvector(warm_df, engines)
    bench_louvain(warm_df, warm_planted, engines, args.seed)

    rows = []
    for size in [int(s) for s in args.sizes.split(",") if s]:
        edges, planted = planted_graph(size, mixing=args.mixing, seed=args.seed)
        edges_df = file_backed(spark, edges, scratch.name, f"sbm-{size}").cache()
        row = {"graph": f"sbm {len(edges):,} edges", "vertices": len(planted),
               "load_avg_1m": os.getloadavg()[0]}
        edges_df.count()
        if "pagerank" not in skip:
            row.update(bench_pagerank(edges_df, engines))
        if "eigenvector" not in skip:
            row.update(bench_eigenvector(edges_df, engines))
        if "paths" not in skip:
            row.update(bench_paths(edges_df, args.path_sources, engines))
        if "louvain" not in skip:
            row.update(bench_louvain(edges_df, planted, engines, args.seed,
                                     block_nodes=args.block_nodes))
        edges_df.unpersist()
        rows.append(row)
        print(_table(rows[-1:]), flush=True)
    for n in [int(s) for s in args.lfr_sizes.split(",") if s and int(s) > 0]:
        for mu in (0.1, 0.3):
            edges, planted = lfr_graph(n, mu)
            edges_df = file_backed(spark, edges, scratch.name, f"lfr-{n}-{mu}")
            row = {"graph": f"lfr n={n} mu={mu} ({len(edges):,} edges)", "vertices": n,
                   "load_avg_1m": os.getloadavg()[0]}
            row.update(bench_louvain(edges_df, planted, engines, args.seed,
                                     block_nodes=args.block_nodes))
            rows.append(row)
            print(_table(rows[-1:]), flush=True)
    print("\nsummary\n" + _table(rows))
    spark.stop()
    scratch.cleanup()


if __name__ == "__main__":
    main()
