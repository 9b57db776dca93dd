"""spark-submit entry point for the daily stage.

Arguments are those of `mktpipe daily` (see `mktpipe daily --help`).
"""

import sys

from mktpipe.cli import main

if __name__ == "__main__":
    sys.exit(main(["daily", *sys.argv[1:]]))
