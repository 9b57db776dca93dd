"""spark-submit entry point for `mktpipe score`.

Arguments are those of `mktpipe score` (see `mktpipe score --help`).
"""

import sys

from mktpipe.cli import main

if __name__ == "__main__":
    sys.exit(main(["score", *sys.argv[1:]]))
