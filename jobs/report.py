"""spark-submit entry point for `mktpipe report`.

Arguments are those of `mktpipe report` (see `mktpipe report --help`).
"""

import sys

from mktpipe.cli import main

if __name__ == "__main__":
    sys.exit(main(["report", *sys.argv[1:]]))
