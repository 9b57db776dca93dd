"""How mktpipe spells a path: a local path or a URI (``file://``, ``s3://``/``s3a://``,
``abfss://``, ``hdfs://``). Pure string functions, below everything that takes a path (the
config validates ``paths.*`` with them; the file door, mktpipe.storage.files, re-exports them).
"""

from __future__ import annotations

from pathlib import Path

# URI schemes a ``paths.*`` value may use besides a plain local path
URI_SCHEMES = ("file", "s3", "s3a", "abfss", "abfs", "hdfs")


def scheme(path: str | Path) -> str:
    """``"s3a"`` for ``s3a://b/x``; ``""`` for a local path (``file://`` counts as local)."""
    text = str(path)
    if "://" not in text:
        return ""
    name = text.split("://", 1)[0].lower()
    return "" if name == "file" else name


def is_local(path: str | Path) -> bool:
    return scheme(path) == ""


def normalize(path: str | Path) -> str:
    """The canonical spelling of ``path`` (module docstring); raises ValueError for a scheme
    mktpipe does not support."""
    text = str(path)
    if "://" not in text:
        return str(Path(text).expanduser().resolve())
    name, rest = text.split("://", 1)
    name = name.lower()
    if name == "file":
        return str(Path(rest).resolve())
    if name not in URI_SCHEMES:
        raise ValueError(f"{text}: unsupported URI scheme {name!r}; use a local path or one of "
                         + ", ".join(f"{s}://" for s in URI_SCHEMES))
    if name == "s3":
        name = "s3a"
    return f"{name}://{rest.rstrip('/')}"


def join(base: str | Path, *parts: str) -> str:
    """``base``/``parts``, with ``/`` whatever the store (a URI's ``//`` is kept)."""
    return "/".join([str(base).rstrip("/"), *[str(p).strip("/") for p in parts if str(p)]])


def parent(path: str) -> str:
    return str(path).rstrip("/").rsplit("/", 1)[0]


def basename(path: str) -> str:
    return str(path).rstrip("/").rsplit("/", 1)[-1]
