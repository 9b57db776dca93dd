"""The one door for files that are not Delta tables: manifests, run state, model artifacts,
exports, reports, the generator's truth and the landing listing.

Every path is a string that is either a local path or a URI: ``file://``, ``s3://`` (or
``s3a://``), ``abfss://``, ``hdfs://``. The same string works for the three engines that touch
storage, each getting it in the form it expects:

* :func:`normalize`: the canonical form mktpipe passes around: local paths made absolute,
  ``file://`` stripped to a local path, ``s3://`` spelled ``s3a://`` (Hadoop's S3 connector,
  which Spark needs; delta-rs and this module accept both);
* :func:`filesystem`: pyarrow's filesystem and path for this module's reads and writes;
* :func:`storage_options`: delta-rs's options for a table URI;
* Spark's ``fs.s3a.*`` settings: mktpipe.session (``hadoop_options``, ``configure_spark``).

Credentials and endpoints come from the environment only, under the names every AWS SDK reads
(``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_SESSION_TOKEN``, ``AWS_REGION``, and
``AWS_ENDPOINT_URL`` for an S3-compatible server); nothing is read from config files.

Writes are atomic where the store allows it: a local file is written to a temporary name and
renamed over the target; an object store publishes an object whole on a single PUT, so readers
never see half a file there either.
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from typing import Any

import pyarrow.fs as pafs

from mktpipe.config import s3_endpoint, s3_region
from mktpipe.uris import URI_SCHEMES, basename, is_local, join, normalize, parent, scheme  # noqa: F401

# how pyarrow spells a scheme whose Hadoop spelling differs
_ARROW_SCHEME = {"s3a": "s3"}


# --- the engines' views of a path -------------------------------------------------------------

def filesystem(path: str | Path) -> tuple[pafs.FileSystem, str]:
    """pyarrow's filesystem and in-store path for a local path or a URI."""
    text = str(path)
    if is_local(text):
        local = text.split("://", 1)[1] if "://" in text else text
        return pafs.LocalFileSystem(), os.path.abspath(os.path.expanduser(local))
    name, rest = text.split("://", 1)
    name = _ARROW_SCHEME.get(name.lower(), name.lower())
    if name == "s3":
        # pyarrow reads the credentials, region and AWS_ENDPOINT_URL from the environment
        endpoint = s3_endpoint()
        kwargs: dict[str, Any] = {}
        if endpoint:
            kwargs["endpoint_override"] = endpoint
            kwargs["scheme"] = endpoint.split("://", 1)[0] if "://" in endpoint else "https"
        if s3_region():
            kwargs["region"] = s3_region()
        return pafs.S3FileSystem(**kwargs), rest.rstrip("/")
    return pafs.FileSystem.from_uri(f"{name}://{rest}")


def storage_options(path: str | Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    """delta-rs's ``storage_options`` for a table at ``path`` (empty for a local path).

    delta-rs reads the credentials from the environment itself; this adds what an
    S3-compatible endpoint needs, and single-writer commits on S3 (``AWS_S3_ALLOW_UNSAFE_RENAME``:
    mktpipe runs one writer per table at a time, the same assumption delta-spark's default S3
    log store makes). ``extra`` (``storage.options`` in config) overrides, for example a
    DynamoDB locking provider for several concurrent writers."""
    options: dict[str, str] = {}
    if scheme(path) in ("s3", "s3a"):
        endpoint = s3_endpoint()
        if endpoint:
            options["AWS_ENDPOINT_URL"] = endpoint
            if endpoint.startswith("http://"):
                options["AWS_ALLOW_HTTP"] = "true"
        options["AWS_S3_ALLOW_UNSAFE_RENAME"] = "true"
    options.update(extra or {})
    return options


# --- reads and writes --------------------------------------------------------------------------

def _write_local(local: str, data: bytes) -> None:
    """Atomic local write: a temporary file in the same folder, then os.replace."""
    os.makedirs(os.path.dirname(local), exist_ok=True)
    tmp = f"{local}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        with open(tmp, "wb") as out:
            out.write(data)
        os.replace(tmp, local)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_bytes(path: str | Path, data: bytes) -> str:
    """Write ``data`` to ``path`` whole (atomic: module docstring); creates parent folders."""
    fs, local = filesystem(path)
    if isinstance(fs, pafs.LocalFileSystem):
        _write_local(local, data)
    else:
        fs.create_dir(parent(local), recursive=True)
        with fs.open_output_stream(local, compression=None) as out:  # bytes as given
            out.write(data)
    return str(path)


def write_text(path: str | Path, text: str) -> str:
    return write_bytes(path, text.encode("utf-8"))


def write_json(path: str | Path, obj: Any, **dumps: Any) -> str:
    dumps.setdefault("indent", 2)
    return write_text(path, json.dumps(obj, **dumps) + "\n")


def read_bytes(path: str | Path) -> bytes:
    """The bytes of ``path``; FileNotFoundError naming it when there is no such file."""
    fs, local = filesystem(path)
    try:
        with fs.open_input_stream(local, compression=None) as src:
            return src.read()
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no such file") from None
    except OSError:  # pyarrow's S3 reports a missing key as OSError
        if fs.get_file_info(local).type == pafs.FileType.NotFound:
            raise FileNotFoundError(f"{path}: no such file") from None
        raise


def read_head(path: str | Path, size: int) -> bytes:
    """At most the first ``size`` bytes of ``path`` (a header line, a magic number)."""
    fs, local = filesystem(path)
    with fs.open_input_stream(local, compression=None) as src:
        return src.read(size)


def read_text(path: str | Path) -> str:
    return read_bytes(path).decode("utf-8")


def read_json(path: str | Path) -> Any:
    return json.loads(read_text(path))


def exists(path: str | Path) -> bool:
    fs, local = filesystem(path)
    return fs.get_file_info(local).type != pafs.FileType.NotFound


def is_dir(path: str | Path) -> bool:
    fs, local = filesystem(path)
    return fs.get_file_info(local).type == pafs.FileType.Directory


def create_dir(path: str | Path, exist_ok: bool = True) -> None:
    """Create ``path``; with ``exist_ok=False`` a local folder that exists raises
    FileExistsError (an exclusive claim; object stores cannot offer one)."""
    fs, local = filesystem(path)
    if not exist_ok and isinstance(fs, pafs.LocalFileSystem):
        os.makedirs(os.path.dirname(local), exist_ok=True)
        os.mkdir(local)
        return
    fs.create_dir(local, recursive=True)


def _entries(path: str | Path, recursive: bool = False) -> list[pafs.FileInfo]:
    fs, local = filesystem(path)
    selector = pafs.FileSelector(local, recursive=recursive, allow_not_found=True)
    return fs.get_file_info(selector)


def list_dirs(path: str | Path) -> list[str]:
    """Names of the folders directly under ``path``, sorted ([] when it does not exist)."""
    return sorted(i.base_name for i in _entries(path) if i.type == pafs.FileType.Directory)


def list_files(path: str | Path, suffixes: tuple[str, ...] = (), recursive: bool = False
               ) -> list[str]:
    """Full paths (in ``path``'s own spelling) of the files under ``path`` whose names end in
    one of ``suffixes`` (any name when empty), sorted; [] when ``path`` does not exist."""
    _, local = filesystem(path)
    base = str(path).rstrip("/")
    out = []
    for info in _entries(path, recursive):
        if info.type != pafs.FileType.File or not info.base_name.endswith(suffixes or ("",)):
            continue
        out.append(join(base, info.path[len(local.rstrip("/")) + 1:]))
    return sorted(out)


def delete(path: str | Path, missing_ok: bool = True) -> None:
    """Remove a file or a folder with everything in it."""
    fs, local = filesystem(path)
    kind = fs.get_file_info(local).type
    if kind == pafs.FileType.NotFound:
        if not missing_ok:
            raise FileNotFoundError(f"{path}: no such file or folder")
        return
    if kind == pafs.FileType.Directory:
        fs.delete_dir(local)
    else:
        fs.delete_file(local)


def move(src: str | Path, dst: str | Path) -> None:
    """Move a file or folder to ``dst`` (replacing a file there). A local move is one rename;
    on an object store a folder is copied object by object, then the source deleted."""
    fs, a = filesystem(src)
    _, b = filesystem(dst)
    fs.create_dir(parent(b), recursive=True)
    if isinstance(fs, pafs.LocalFileSystem) or fs.get_file_info(a).type == pafs.FileType.File:
        fs.move(a, b)
        return
    for info in fs.get_file_info(pafs.FileSelector(a, recursive=True)):
        if info.type == pafs.FileType.File:
            fs.copy_file(info.path, b + info.path[len(a):])
    fs.delete_dir(a)


def upload(local_dir: str | Path, dest: str | Path) -> None:
    """Copy the local folder ``local_dir`` (everything in it) to ``dest`` (any store)."""
    fs, target = filesystem(dest)
    fs.create_dir(target, recursive=True)
    pafs.copy_files(str(Path(local_dir).resolve()), target,
                    source_filesystem=pafs.LocalFileSystem(), destination_filesystem=fs)


def local_executable(names: list[str] | tuple[str, ...], configured: str | None = None
                     ) -> str | None:
    """The first of ``names`` found on the PATH (or ``configured`` when it names an executable
    file): a local program the product runs, such as the browser that prints PDFs."""
    import shutil

    if configured:
        return configured if (os.path.isfile(configured) and os.access(configured, os.X_OK)) \
            else shutil.which(configured)
    for name in names:
        found = shutil.which(name)
        if found:
            return found
    return None


def local_temp_dir(prefix: str = "mktpipe-") -> str:
    """A new local temporary folder (delete it with :func:`delete`)."""
    import tempfile

    return tempfile.mkdtemp(prefix=prefix)

