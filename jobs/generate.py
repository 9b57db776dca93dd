"""spark-submit-free entry point for the synthetic data generator (plain Python).

Arguments are those of `mktpipe generate` (see `mktpipe generate --help`).
"""

import sys

from mktpipe.cli import main

if __name__ == "__main__":
    sys.exit(main(["generate", *sys.argv[1:]]))
