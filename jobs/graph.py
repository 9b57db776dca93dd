"""spark-submit entry point for the graph stage (PageRank + Louvain).

Arguments are those of `mktpipe graph` (see `mktpipe graph --help`).
"""

import sys

from mktpipe.cli import main

if __name__ == "__main__":
    sys.exit(main(["graph", *sys.argv[1:]]))
