"""spark-submit entry point for `mktpipe run`.

Arguments are those of `mktpipe run` (see `mktpipe run --help`).
"""

import sys

from mktpipe.cli import main

if __name__ == "__main__":
    sys.exit(main(["run", *sys.argv[1:]]))
