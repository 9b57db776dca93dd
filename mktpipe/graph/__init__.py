"""Graph analytics: PageRank, Louvain communities and modularity on Spark edge lists.

Public API (see each function's docstring for conventions)::

    pagerank(edges, src="src", dst="dst", weight=None, damping=0.85, tol=1e-9, max_iter=100,
             engine="auto") -> DataFrame[id, pagerank]
    louvain(edges, src="src", dst="dst", weight=None, resolution=1.0, engine="auto",
            seed=None) -> DataFrame[id, community]
    modularity(edges, communities, src="src", dst="dst", weight=None, resolution=1.0) -> float
"""

from mktpipe.graph.louvain import louvain
from mktpipe.graph.modularity import modularity
from mktpipe.graph.pagerank import pagerank

__all__ = ["louvain", "modularity", "pagerank"]
