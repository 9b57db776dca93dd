"""Graph analytics on Spark edge lists: PageRank, eigenvector centrality, Louvain and
label-propagation communities, connected components and modularity.

Public API (see each function's docstring for conventions)::

    pagerank(edges, src="src", dst="dst", weight=None, damping=0.85, tol=1e-9, max_iter=100,
             engine="auto") -> DataFrame[id, pagerank]
    louvain(edges, src="src", dst="dst", weight=None, resolution=1.0, engine="auto",
            seed=None) -> DataFrame[id, community]
    label_propagation(edges, src="src", dst="dst", weight=None, max_iter=20, engine="auto",
                      seed=None) -> DataFrame[id, community]
    connected_components(edges, src="src", dst="dst", engine="auto",
                         vertices=None) -> DataFrame[id, component]
    modularity(edges, communities, src="src", dst="dst", weight=None, resolution=1.0) -> float
    eigenvector_centrality(edges, src="src", dst="dst", weight=None, tol=1e-6, max_iter=100,
                           engine="auto") -> DataFrame[id, eigenvector_centrality]
    path_centralities(edges, src="src", dst="dst", k=None, seed=42, max_depth=64,
                      engine="auto") -> DataFrame[id, betweenness_centrality, closeness_centrality]
"""

from mktpipe.graph.components import connected_components
from mktpipe.graph.eigenvector import eigenvector_centrality
from mktpipe.graph.label_propagation import label_propagation
from mktpipe.graph.louvain import louvain
from mktpipe.graph.modularity import modularity
from mktpipe.graph.pagerank import pagerank
from mktpipe.graph.paths import path_centralities

__all__ = ["connected_components", "eigenvector_centrality", "label_propagation", "louvain",
           "modularity", "path_centralities", "pagerank"]
