"""spark-submit entry point for table maintenance (OPTIMIZE + VACUUM).

Arguments are those of `mktpipe maintain` (see `mktpipe maintain --help`).
"""

import sys

from mktpipe.cli import main

if __name__ == "__main__":
    sys.exit(main(["maintain", *sys.argv[1:]]))
