"""Saving fitted models: a Spark ML PipelineModel plus a JSON of metadata, on any filesystem.

Spark writes the pipeline (its own MLWritable writers, so any path Spark can write works);
JSON files go through pyarrow's filesystem layer (local paths, file://, s3://, gs://, hdfs://),
so a model saved to object storage loads back the same way. ``write_json(..., atomic=True)``
writes a temporary file and renames it over the target: readers never see half a file (a
rename is atomic on local and HDFS filesystems; object stores only approximate it).
"""

from __future__ import annotations

import importlib
import json
import math
import os
import uuid
from typing import Any

import numpy as np
import pyarrow.fs as pafs
from pyspark.ml import PipelineModel

FORMAT_VERSION = 1
PIPELINE_DIR = "pipeline"
METADATA_FILE = "metadata.json"


def _fs(path: str) -> tuple[pafs.FileSystem, str]:
    if "://" in path and not path.startswith("file://"):
        return pafs.FileSystem.from_uri(path)
    local = path[len("file://"):] if path.startswith("file://") else path
    return pafs.LocalFileSystem(), os.path.abspath(local)


def join(base: str, *parts: str) -> str:
    return "/".join([base.rstrip("/"), *[str(p).strip("/") for p in parts]])


def json_safe(value: Any) -> Any:
    """Plain JSON values: NaN/inf -> None, numpy scalars -> Python, tuples -> lists."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_json(path: str, obj: Any, atomic: bool = False) -> None:
    fs, local = _fs(path)
    fs.create_dir(local.rsplit("/", 1)[0], recursive=True)
    data = json.dumps(json_safe(obj), indent=2, sort_keys=True, allow_nan=False).encode()
    target = f"{local}.tmp-{uuid.uuid4().hex}" if atomic else local
    with fs.open_output_stream(target) as out:
        out.write(data)
    if atomic:
        fs.move(target, local)


def read_json(path: str) -> Any:
    fs, local = _fs(path)
    try:
        with fs.open_input_stream(local) as src:
            return json.loads(src.read().decode())
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no such file") from None


def exists(path: str) -> bool:
    fs, local = _fs(path)
    return fs.get_file_info(local).type != pafs.FileType.NotFound


def list_dirs(path: str) -> list[str]:
    """Names of the folders directly under ``path`` ([] when it does not exist)."""
    fs, local = _fs(path)
    if fs.get_file_info(local).type == pafs.FileType.NotFound:
        return []
    infos = fs.get_file_info(pafs.FileSelector(local, recursive=False))
    return sorted(i.base_name for i in infos if i.type == pafs.FileType.Directory)


def create_dir(path: str, exist_ok: bool = True) -> None:
    """Create ``path``; with ``exist_ok=False`` a local folder that exists raises
    FileExistsError (an exclusive claim; remote stores cannot offer one)."""
    fs, local = _fs(path)
    if not exist_ok and isinstance(fs, pafs.LocalFileSystem):
        os.makedirs(os.path.dirname(local), exist_ok=True)
        os.mkdir(local)
        return
    fs.create_dir(local, recursive=True)


def qualified_name(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def import_class(name: str) -> type:
    module, _, attr = name.rpartition(".")
    return getattr(importlib.import_module(module), attr)


class SavedPipelineModel:
    """A fitted Spark ML ``PipelineModel`` with JSON metadata (features, settings, metrics).

    Subclasses add ``predict``; ``save``/``load`` round-trip both parts."""

    def __init__(self, pipeline_model: PipelineModel, metadata: dict) -> None:
        self.pipeline_model = pipeline_model
        self.metadata = json_safe(metadata)  # as it will read back from JSON

    @property
    def metrics(self) -> dict:
        return self.metadata.get("metrics", {})

    @property
    def feature_cols(self) -> list[str]:
        return list(self.metadata.get("feature_cols", []))

    def params(self) -> dict:
        """Settings and tuned parameters the model was fitted with."""
        return {"settings": self.metadata.get("settings", {}),
                "tuning": self.metadata.get("tuning", {})}

    def save(self, path: str) -> None:
        """Write ``path``/pipeline (Spark ML writers) and ``path``/metadata.json; overwrites."""
        self.pipeline_model.write().overwrite().save(join(path, PIPELINE_DIR))
        meta = {**self.metadata, "class": qualified_name(type(self)),
                "format_version": FORMAT_VERSION}
        write_json(join(path, METADATA_FILE), meta, atomic=True)

    @classmethod
    def load(cls, path: str):
        """Load a model saved by ``save``; raises ValueError when ``path`` holds another kind."""
        meta = read_json(join(path, METADATA_FILE))
        saved = import_class(meta["class"])
        if not issubclass(saved, cls):
            raise ValueError(f"{path} holds a {meta['class']}, not a {qualified_name(cls)}; "
                             f"load it with {meta['class']}.load or artifacts.load_model")
        return saved(PipelineModel.load(join(path, PIPELINE_DIR)), meta)


def load_model(path: str) -> SavedPipelineModel:
    """Load any model saved by ``SavedPipelineModel.save``, as the class it was saved from."""
    return SavedPipelineModel.load(path)
