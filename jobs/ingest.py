"""spark-submit entry point for the ingest stage.

    spark-submit --master spark://host:7077 --py-files dist/mktpipe-pyfiles.zip \
        jobs/ingest.py --run-date 2026-10-01 --env cluster

Arguments are those of `mktpipe ingest` (see `mktpipe ingest --help`).
"""

import sys

from mktpipe.cli import main

if __name__ == "__main__":
    sys.exit(main(["ingest", *sys.argv[1:]]))
