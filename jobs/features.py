"""spark-submit entry point for the features stage.

Arguments are those of `mktpipe features` (see `mktpipe features --help`).
"""

import sys

from mktpipe.cli import main

if __name__ == "__main__":
    sys.exit(main(["features", *sys.argv[1:]]))
