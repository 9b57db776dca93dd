"""spark-submit entry point for `mktpipe train`.

Arguments are those of `mktpipe train` (see `mktpipe train --help`).
"""

import sys

from mktpipe.cli import main

if __name__ == "__main__":
    sys.exit(main(["train", *sys.argv[1:]]))
