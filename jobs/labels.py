"""spark-submit entry point for the labels stage.

Arguments are those of `mktpipe labels` (see `mktpipe labels --help`).
"""

import sys

from mktpipe.cli import main

if __name__ == "__main__":
    sys.exit(main(["labels", *sys.argv[1:]]))
