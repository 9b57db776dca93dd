"""Saving fitted models: a Spark ML PipelineModel plus a JSON of metadata (or the JSON alone,
for a model that is only parameters), on any filesystem.

Spark writes the pipeline (its own MLWritable writers, so any path Spark can write works);
JSON files go through the file door (mktpipe.storage.files: local paths, file://, s3://,
abfss://, hdfs://), so a model saved to object storage loads back the same way; a JSON file is
written whole (temp file + rename locally, one PUT on an object store).
"""

from __future__ import annotations

import importlib
import math
from typing import Any

import numpy as np
from pyspark.ml import PipelineModel

from mktpipe.storage import files

FORMAT_VERSION = 1
PIPELINE_DIR = "pipeline"
METADATA_FILE = "metadata.json"


# the file door's helpers, under the names the model code has always used
join = files.join
read_json = files.read_json
exists = files.exists
list_dirs = files.list_dirs
create_dir = files.create_dir


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


def write_json(path: str, obj: Any, atomic: bool = True) -> None:
    """``obj`` as sorted, strict JSON (NaN -> null), written whole through the file door
    (``atomic`` is kept for old callers: every write is whole now)."""
    files.write_json(path, json_safe(obj), sort_keys=True, allow_nan=False)


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


def load_model(path: str):
    """Load a saved model as the class it was saved from: any class whose ``save`` writes
    ``path``/metadata.json with its qualified name under "class" and whose ``load(path)``
    reads it back (``SavedPipelineModel`` and its subclasses, ``ProbabilisticClvModel``)."""
    meta = read_json(join(path, METADATA_FILE))
    saved = import_class(meta["class"])
    if not callable(getattr(saved, "load", None)):
        raise ValueError(f"{path}: {meta['class']} has no load(path); not a saved model")
    return saved.load(path)
