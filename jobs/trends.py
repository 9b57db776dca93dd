"""spark-submit entry point for `mktpipe trends`.

Arguments are those of `mktpipe trends` (see `mktpipe trends --help`).
"""

import sys

from mktpipe.cli import main

if __name__ == "__main__":
    sys.exit(main(["trends", *sys.argv[1:]]))
