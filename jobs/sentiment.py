"""spark-submit entry point for the sentiment stage.

Arguments are those of `mktpipe sentiment` (see `mktpipe sentiment --help`).
"""

import sys

from mktpipe.cli import main

if __name__ == "__main__":
    sys.exit(main(["sentiment", *sys.argv[1:]]))
