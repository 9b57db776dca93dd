"""The model registry: MLflow's tracking store and model registry, with mktpipe's promotion gate.

Every :meth:`Registry.register` is one MLflow run in the experiment ``models.mlflow_experiment``
(default ``mktpipe``): the settings as params, every finite metric (nested keys dotted) as
metrics, the lineage (training snapshots, source table versions, rows) as ``lineage.*`` tags,
and as run artifacts::

    model/            the fitted model (Spark ML pipeline + metadata.json, ``artifacts``)
    metrics.json      every metric, tables included (calibration, PR curve, search history)
    params.json       settings and tuned parameters
    features.json     the feature columns
    lineage.json      training snapshots, source table versions, created_at
    tables/<key>.json each table of the metrics on its own (e.g. ``ensemble.calibration``)

The run's ``model/`` then becomes the next version of the registered model ``name``; its tags
hold the gate's record (primary metric, value, promoted, reason, created_at, model class).

Promotion rule: the new version gets the alias ``champion`` (what :meth:`latest_version` and
``score`` load) unless its primary metric regresses against the current champion by more than
``tolerance`` (absolute, in the metric's own unit; direction from ``higher_is_better``). A
refused version is kept (loadable by number) and its ``reason`` tag says by how much it
regressed. ``primary_metric`` is a key of the metrics dict, dotted for nested dicts
(``"ensemble.average_precision"``).

Where the store lives: ``models.mlflow_tracking_uri`` (a tracking server, ``databricks``, a
database URI), else the ``MLFLOW_TRACKING_URI`` environment variable, else an embedded SQLite
store at ``<paths.models>/mlflow.db`` with run artifacts under ``<paths.models>/mlartifacts``
(no server; ``mlflow ui --backend-store-uri sqlite:///<paths.models>/mlflow.db`` shows it).
A ``paths.models`` on object storage (``s3://``) keeps the artifacts there and needs a tracking
URI (SQLite cannot live on an object store).

Model files are written straight to the run's artifact location when it is a filesystem the file
door and Spark write (local, ``file://``, ``s3://``, ``abfss://``, ``hdfs://``) and loaded from
there; any other artifact store (a server's proxied ``mlflow-artifacts:/``, ``dbfs:/``) goes
through MLflow's upload and download, via a local temporary folder.

A crash midway leaves no version behind: the version is created only after every file is
written, and the run is marked FAILED.
"""

from __future__ import annotations

import atexit
import datetime as dt
import logging
import math
import os
import re
import tempfile
from dataclasses import asdict, dataclass
from typing import Any

from mktpipe.models import artifacts
from mktpipe.storage import files
from mktpipe.uris import URI_SCHEMES, scheme

log = logging.getLogger(__name__)

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
CHAMPION = "champion"  # the alias of the promoted version
DEFAULT_EXPERIMENT = "mktpipe"
MODEL_DIR = "model"
DB_FILE = "mlflow.db"
ARTIFACTS_DIR = "mlartifacts"
# MLflow's limits per log_batch call
_BATCH_METRICS, _BATCH_PARAMS = 1000, 100
_PARAM_CHARS = 6000
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]+):")  # mlflow-artifacts:/x has no "//"
_BAD_KEY = re.compile(r"[^A-Za-z0-9_\-. /]")
# the version record, stored as model version tags (strings), with the type to read each back
_RECORD = {"created_at": str, "model_class": str, "primary_metric": str, "value": float,
           "higher_is_better": bool, "tolerance": float, "promoted": bool, "reason": str,
           "run_id": str}


@dataclass(frozen=True)
class RegistrationResult:
    name: str
    version: int
    promoted: bool
    reason: str
    path: str  # where the model's files are (the run's artifact folder ``model``)
    run_id: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


def metric_value(metrics: dict, path: str) -> Any:
    """``metrics["a"]["b"]`` for ``path="a.b"``; KeyError naming what is there."""
    node: Any = metrics
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            keys = sorted(node) if isinstance(node, dict) else type(node).__name__
            raise KeyError(f"metric {path!r}: no {part!r} (available: {keys})")
        node = node[part]
    return node


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def _finite(x) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)


def _mlflow():
    try:
        import mlflow  # noqa: F401
        from mlflow import MlflowClient
    except ImportError as exc:  # pragma: no cover - mlflow is in the `full` extra
        raise ImportError("the model registry needs mlflow: pip install -e '.[full]' "
                          "(make setup installs it)") from exc
    return MlflowClient


def default_tracking_uri(root: str) -> str:
    """The embedded store for a local ``root``: ``sqlite:///<root>/mlflow.db``."""
    if scheme(root):
        raise ValueError(
            f"paths.models is {root}: MLflow's embedded SQLite store needs a local folder. "
            "Set models.mlflow_tracking_uri (MKTPIPE__MODELS__MLFLOW_TRACKING_URI) to a tracking "
            "server or a database, e.g. sqlite:////var/lib/mktpipe/mlflow.db; the model files "
            f"still go under {root}")
    local = os.path.abspath(root.removeprefix("file://"))
    files.create_dir(local)
    return f"sqlite:///{os.path.join(local, DB_FILE)}"


def _direct(uri: str) -> bool:
    """Can the file door (and Spark) write and read ``uri`` itself?"""
    found = _SCHEME.match(uri)
    return found is None or found.group(1).lower() in URI_SCHEMES


class Registry:
    """Versioned models in MLflow under the artifact root ``root``; see the module docstring.

    ``Registry(root)`` alone uses the embedded SQLite store under ``root``; the keyword
    arguments name another tracking store (``mlflow_tracking_uri``), a separate model registry
    store (``registry_uri``) and the experiment.
    """

    def __init__(self, root: str, mlflow_tracking_uri: str | None = None,
                 mlflow_experiment: str = DEFAULT_EXPERIMENT,
                 registry_uri: str | None = None) -> None:
        self.root = str(root)
        self.tracking_uri = (mlflow_tracking_uri or os.environ.get("MLFLOW_TRACKING_URI")
                             or default_tracking_uri(self.root))
        self.registry_uri = registry_uri or self.tracking_uri
        self.experiment = mlflow_experiment
        self._client = _mlflow()(tracking_uri=self.tracking_uri, registry_uri=self.registry_uri)
        self._experiment_id: str | None = None

    @property
    def client(self):
        """The ``mlflow.MlflowClient`` on this registry's stores."""
        return self._client

    @staticmethod
    def _check(name: str) -> str:
        if not _NAME.match(name):
            raise ValueError(f"model name {name!r}: use letters, digits, '_', '-', '.'")
        return name

    def _experiment(self) -> str:
        if self._experiment_id is None:
            found = self._client.get_experiment_by_name(self.experiment)
            if found is not None:
                self._experiment_id = found.experiment_id
            else:
                local_store = self.tracking_uri.startswith(("sqlite:", "file:"))
                location = artifacts.join(self.root, ARTIFACTS_DIR) if local_store else None
                if location and not scheme(location):
                    location = "file://" + os.path.abspath(location)
                try:
                    self._experiment_id = self._client.create_experiment(
                        self.experiment, artifact_location=location)
                except Exception:  # another writer created it first
                    found = self._client.get_experiment_by_name(self.experiment)
                    if found is None:
                        raise
                    self._experiment_id = found.experiment_id
        return self._experiment_id

    # --- reading ------------------------------------------------------------------------------

    def _model_versions(self, name: str) -> list:
        from mlflow.exceptions import MlflowException

        try:
            return list(self._client.search_model_versions(f"name = '{self._check(name)}'"))
        except MlflowException:
            return []

    def versions(self, name: str) -> list[int]:
        """Versions of ``name``, oldest first."""
        return sorted(int(v.version) for v in self._model_versions(name))

    def latest_version(self, name: str) -> int | None:
        """The champion (promoted) version, None when there is none."""
        from mlflow.exceptions import MlflowException

        try:
            return int(self._client.get_model_version_by_alias(self._check(name), CHAMPION)
                       .version)
        except MlflowException:
            return None

    def _version(self, name: str, version: int):
        from mlflow.exceptions import MlflowException

        try:
            return self._client.get_model_version(self._check(name), str(int(version)))
        except MlflowException as exc:
            raise FileNotFoundError(
                f"model {name!r} has no version {version} in the registry {self.registry_uri} "
                f"(versions: {self.versions(name)})") from exc

    def info(self, name: str, version: int) -> dict:
        """The version's record: created_at, primary metric and value, promoted, reason."""
        mv = self._version(name, version)
        record: dict[str, Any] = {"name": name, "version": int(mv.version)}
        for key, kind in _RECORD.items():
            raw = mv.tags.get(key)
            if raw is None:
                continue
            if kind is bool:
                record[key] = raw == "true"
            elif kind is float:
                record[key] = float(raw) if raw not in ("", "None") else None
            else:
                record[key] = raw
        record["champion"] = CHAMPION in (getattr(mv, "aliases", None) or [])
        return record

    def _source(self, name: str, version: int):
        """(the MLflow model version, the URI of its model files)."""
        mv = self._version(name, version)
        return mv, self._client.get_model_version_download_uri(name, mv.version)

    def model_uri(self, name: str, version: int) -> str:
        """Where the version's model files are (its run's ``model`` artifact folder)."""
        return self._source(name, version)[1]

    def _run_file(self, name: str, version: int, filename: str):
        """A JSON file of the version's run (None when the run has none)."""
        from mlflow.exceptions import MlflowException

        mv, source = self._source(name, version)
        uri = f"{source.rstrip('/').rsplit('/', 1)[0]}/{filename}"  # beside model/
        if _direct(uri):
            return artifacts.read_json(uri) if artifacts.exists(uri) else None
        with tempfile.TemporaryDirectory(prefix="mktpipe-registry-") as local:
            try:
                path = self._client.download_artifacts(mv.run_id, filename, local)
            except (MlflowException, OSError):
                return None
            return artifacts.read_json(path)

    def metrics(self, name: str, version: int) -> dict:
        found = self._run_file(name, version, "metrics.json")
        if found is None:
            raise FileNotFoundError(f"model {name!r} v{version} has no metrics.json")
        return found

    def params(self, name: str, version: int) -> dict:
        return self._run_file(name, version, "params.json") or {}

    def lineage(self, name: str, version: int) -> dict:
        """Training snapshots, source table versions, run id, created_at ({} if absent)."""
        try:
            return self._run_file(name, version, "lineage.json") or {}
        except FileNotFoundError:
            return {}

    def load(self, name: str, version: int):
        """The model of ``version``, as the class it was saved from (``artifacts.load_model``)."""
        mv, uri = self._source(name, version)
        if _direct(uri):
            return artifacts.load_model(uri)
        # a store Spark cannot read: a local copy (kept for the process's life, as Spark may
        # read the files lazily); on a cluster, use an artifact root every node can read
        local = tempfile.mkdtemp(prefix="mktpipe-model-")
        atexit.register(files.delete, local)
        return artifacts.load_model(self._client.download_artifacts(mv.run_id, MODEL_DIR, local))

    def load_latest(self, name: str):
        version = self.latest_version(name)
        if version is None:
            raise FileNotFoundError(f"model {name!r} has no promoted version in the registry "
                                    f"{self.registry_uri}; register one first")
        return self.load(name, version)

    # --- writing ------------------------------------------------------------------------------

    def register(self, name: str, model, metrics: dict | None = None,
                 primary_metric: str = "ensemble.average_precision",
                 higher_is_better: bool = True, tolerance: float = 0.01,
                 lineage: dict | None = None) -> RegistrationResult:
        """Log ``model`` (anything with ``save(path)``) as an MLflow run, register it as the next
        version of ``name`` and give it the ``champion`` alias unless ``primary_metric``
        regresses by more than ``tolerance``.

        ``metrics`` default to ``model.metrics``; ``lineage``: e.g. {"training_snapshot":
        "2026-10-01", "source_tables": {"gold.user_features": 12}}. Raises KeyError when
        ``primary_metric`` is not in ``metrics``, ValueError for a negative tolerance.
        """
        from mlflow.entities import RunStatus

        self._check(name)
        if tolerance < 0 or not math.isfinite(tolerance):
            raise ValueError(f"tolerance must be a finite number >= 0, got {tolerance}")
        metrics = artifacts.json_safe(metrics if metrics is not None
                                      else getattr(model, "metrics", {}))
        value = metric_value(metrics, primary_metric)
        params = artifacts.json_safe(model.params() if hasattr(model, "params") else {})
        created_at = _now()
        lineage = artifacts.json_safe({**(lineage or {}), "created_at": created_at})
        run = self._client.create_run(self._experiment(), run_name=name,
                                      tags={"model_name": name})
        run_id = run.info.run_id
        try:
            contents = {"metrics.json": metrics, "params.json": params,
                        "lineage.json": lineage, "features.json": {
                            "feature_cols": list(getattr(model, "feature_cols", []))}}
            contents.update({f"tables/{key}.json": table for key, table in _tables(metrics)})
            source = self._write_files(run.info.artifact_uri, run_id, model, contents)
            self._log(run_id, metrics, params, lineage)
            promoted, reason = self._decide(name, value, primary_metric, higher_is_better,
                                            tolerance)
            record = {"created_at": created_at,
                      "model_class": artifacts.qualified_name(type(model)),
                      "primary_metric": primary_metric, "value": value,
                      "higher_is_better": higher_is_better, "tolerance": tolerance,
                      "promoted": promoted, "reason": reason, "run_id": run_id}
            self._ensure_registered(name)
            mv = self._client.create_model_version(
                name, source=source, run_id=run_id, tags=_tag_strings(record),
                description=reason)
            version = int(mv.version)
            self._client.set_tag(run_id, "model_version", str(version))
            self._client.set_tag(run_id, "promoted", "true" if promoted else "false")
            if promoted:
                self._client.set_registered_model_alias(name, CHAMPION, str(version))
        except BaseException:
            self._client.set_terminated(run_id, RunStatus.to_string(RunStatus.FAILED))
            raise
        self._client.set_terminated(run_id)
        log.info("registered %s v%d (%s): %s", name, version,
                 "promoted" if promoted else "not promoted", reason)
        return RegistrationResult(name, version, promoted, reason, source, run_id)

    def promote(self, name: str, version: int) -> None:
        """Make ``version`` the champion regardless of metrics (a manual override or rollback)."""
        mv = self._version(name, version)
        self._client.set_registered_model_alias(name, CHAMPION, mv.version)
        self._client.set_model_version_tag(name, mv.version, "manual_promotion", _now())
        log.info("promoted %s v%s by hand", name, mv.version)

    def _ensure_registered(self, name: str) -> None:
        from mlflow.exceptions import MlflowException

        try:
            self._client.get_registered_model(name)
        except MlflowException:
            try:
                self._client.create_registered_model(
                    name, description=f"mktpipe model {name!r}; the alias {CHAMPION!r} is the "
                                      "version score uses")
            except MlflowException:  # another writer registered it first
                self._client.get_registered_model(name)

    def _write_files(self, artifact_uri: str, run_id: str, model, contents: dict) -> str:
        """The model and the JSON files into the run's artifacts; the model's URI."""
        if _direct(artifact_uri):
            model.save(artifacts.join(artifact_uri, MODEL_DIR))
            for rel, obj in contents.items():
                artifacts.write_json(artifacts.join(artifact_uri, rel), obj)
            return f"{artifact_uri.rstrip('/')}/{MODEL_DIR}"
        # a store the file door cannot write: save locally, then MLflow uploads
        with tempfile.TemporaryDirectory(prefix="mktpipe-model-") as local:
            model.save(os.path.join(local, MODEL_DIR))
            for rel, obj in contents.items():
                artifacts.write_json(os.path.join(local, rel), obj)
            self._client.log_artifacts(run_id, local)
        return f"{artifact_uri.rstrip('/')}/{MODEL_DIR}"

    def _log(self, run_id: str, metrics: dict, params: dict, lineage: dict) -> None:
        from mlflow.entities import Metric, Param, RunTag

        stamp = int(dt.datetime.now(dt.UTC).timestamp() * 1000)
        numbers = [Metric(_key(k), float(v), stamp, 0)
                   for k, v in _flatten(metrics).items() if _finite(v)]
        settings = [Param(_key(k), str(v)[:_PARAM_CHARS]) for k, v in _flatten(params).items()]
        tags = [RunTag(_key(f"lineage.{k}"), str(v)[:_PARAM_CHARS])
                for k, v in _flatten(lineage).items()]
        for i in range(0, len(numbers), _BATCH_METRICS):
            self._client.log_batch(run_id, metrics=numbers[i:i + _BATCH_METRICS])
        for items, field in ((settings, "params"), (tags, "tags")):
            for i in range(0, len(items), _BATCH_PARAMS):
                self._client.log_batch(run_id, **{field: items[i:i + _BATCH_PARAMS]})

    def _decide(self, name: str, value, metric: str, higher_is_better: bool,
                tolerance: float) -> tuple[bool, str]:
        if not _finite(value):
            return False, f"{metric} is undefined ({value!r}); not promoted"
        current = self.latest_version(name)
        if current is None:
            return True, f"first version: {metric} = {value:.6g}"
        try:
            old = metric_value(self.metrics(name, current), metric)
        except (KeyError, FileNotFoundError):
            return True, f"champion v{current} has no {metric}; promoted with {value:.6g}"
        if not _finite(old):
            return True, f"champion v{current} has an undefined {metric}; promoted"
        change = (value - old) if higher_is_better else (old - value)  # > 0 = better
        what = f"{metric} {value:.6g} vs champion v{current} {old:.6g}"
        if change >= 0:
            return True, f"{what}: improves by {change:.6g}"
        if -change <= tolerance:
            return True, f"{what}: regresses by {-change:.6g}, within tolerance {tolerance:g}"
        return False, (f"{what}: regresses by {-change:.6g} > tolerance {tolerance:g}; "
                       "kept, not promoted")


def _key(key: str) -> str:
    """An MLflow-valid metric, param or tag key."""
    return _BAD_KEY.sub("_", key)[:250]


def _tag_strings(record: dict) -> dict[str, str]:
    out = {}
    for key, value in record.items():
        if isinstance(value, bool):
            out[key] = "true" if value else "false"
        elif isinstance(value, float) and not math.isfinite(value):
            out[key] = "None"
        else:
            out[key] = "None" if value is None else str(value)
    return out


def _flatten(d: dict, prefix: str = "") -> dict:
    """Nested dicts to dotted keys; lists of records (tables) are left out."""
    out = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flatten(v, key + "."))
        elif not isinstance(v, list):
            out[key] = v
    return out


def _tables(d: dict, prefix: str = ""):
    """(dotted key, records) for each list of dicts in the metrics: the calibration table, the
    PR curve, the search history."""
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            yield from _tables(v, key + ".")
        elif isinstance(v, list) and v and all(isinstance(r, dict) for r in v):
            yield _key(key).replace("/", "_"), v


def registry_for(config) -> Registry:
    """The registry of the app config: artifacts under ``paths.models`` (a local path or a
    URI), MLflow stores from ``models.mlflow_tracking_uri`` / ``models.mlflow_registry_uri``
    (default: the embedded SQLite store under ``paths.models``)."""
    models = config.models
    return Registry(config.uri("models"), mlflow_tracking_uri=models.mlflow_tracking_uri,
                    mlflow_experiment=models.mlflow_experiment,
                    registry_uri=models.mlflow_registry_uri)

