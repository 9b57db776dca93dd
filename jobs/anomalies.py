"""spark-submit entry point for `mktpipe anomalies`.

Arguments are those of `mktpipe anomalies` (see `mktpipe anomalies --help`).
"""

import sys

from mktpipe.cli import main

if __name__ == "__main__":
    sys.exit(main(["anomalies", *sys.argv[1:]]))
