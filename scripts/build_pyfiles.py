"""Build the zip that ``spark-submit --py-files`` ships to executors: the ``mktpipe`` package.

    python scripts/build_pyfiles.py                 # -> dist/mktpipe-pyfiles.zip
    python scripts/build_pyfiles.py --out /tmp/x.zip

Holds every file under ``mktpipe/`` (code and package data: yaml, json, csv, html, ...) except
caches, at the paths Python imports them from (``mktpipe/__init__.py`` at the top), so an
executor imports the driver's exact code. Third-party packages are *not* included: executors
use the virtualenv's (PYSPARK_PYTHON), which must have the pinned dependencies installed.
The zip is reproducible (sorted entries, fixed timestamps) and written atomically.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "mktpipe"
DEFAULT_OUT = ROOT / "dist" / "mktpipe-pyfiles.zip"
SKIP_DIRS = {"__pycache__", ".pytest_cache", ".ruff_cache", ".mypy_cache"}
SKIP_SUFFIXES = {".pyc", ".pyo", ".so.tmp", ".swp"}
FIXED_TIME = (1980, 1, 1, 0, 0, 0)


def package_files(root: Path = ROOT, package: str = PACKAGE) -> list[Path]:
    """Files of the package under ``root``, relative to ``root``, sorted."""
    base = root / package
    if not (base / "__init__.py").is_file():
        raise FileNotFoundError(f"{base}/__init__.py not found: not a package")
    files = []
    for dirpath, dirnames, filenames in os.walk(base):
        dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS and not d.startswith("."))
        for name in sorted(filenames):
            path = Path(dirpath) / name
            if path.suffix in SKIP_SUFFIXES or name.startswith("."):
                continue
            files.append(path.relative_to(root))
    return files


def build(out: Path = DEFAULT_OUT, root: Path = ROOT) -> Path:
    """Write the zip to ``out`` (atomically) and return its path."""
    out = Path(out).resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=out.name + ".", suffix=".tmp", dir=out.parent)
    os.close(fd)
    try:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            for rel in package_files(root):
                info = zipfile.ZipInfo(rel.as_posix(), date_time=FIXED_TIME)
                info.compress_type = zipfile.ZIP_DEFLATED
                info.external_attr = 0o644 << 16
                zf.writestr(info, (root / rel).read_bytes())
        os.replace(tmp, out)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT,
                        help=f"zip to write (default: {DEFAULT_OUT.relative_to(ROOT)})")
    args = parser.parse_args(argv)
    out = build(args.out)
    with zipfile.ZipFile(out) as zf:
        names = zf.namelist()
    data = sum(1 for n in names if not n.endswith(".py"))
    print(f"wrote {out}: {len(names)} files ({data} package data), "
          f"{out.stat().st_size / 1024:.0f} KiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
