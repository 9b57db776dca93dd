"""spark-submit entry point for `mktpipe backfill`.

Arguments are those of `mktpipe backfill` (see `mktpipe backfill --help`).
"""

import sys

from mktpipe.cli import main

if __name__ == "__main__":
    sys.exit(main(["backfill", *sys.argv[1:]]))
