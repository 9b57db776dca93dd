"""A model registry on a filesystem (local path or any URI pyarrow and Spark can write).

Layout::

    <root>/<name>/latest.json            {"version": 3, "updated_at": ..., ...}  (atomic rename)
    <root>/<name>/<version>/model/       the fitted model (Spark ML pipeline + metadata.json)
    <root>/<name>/<version>/metrics.json
    <root>/<name>/<version>/params.json  settings and tuned parameters
    <root>/<name>/<version>/features.json
    <root>/<name>/<version>/lineage.json training snapshot, source table versions, created_at
    <root>/<name>/<version>/version.json written last: a version without it is incomplete

Promotion rule: a new version becomes ``latest`` unless its primary metric regresses against
the current latest by more than ``tolerance`` (absolute, in the metric's own unit; direction
from ``higher_is_better``). A refused version is kept (loadable by number) and the reason says
by how much it regressed. ``primary_metric`` is a key of the metrics dict, dotted for nested
dicts (``"ensemble.average_precision"``).

MLflow: with ``mlflow_tracking_uri`` set and ``mlflow`` importable, each registration is also
logged as an MLflow run (params, numeric metrics, lineage tags, the version's files). Off by
default; an MLflow failure is logged and never fails the registration.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import re
from dataclasses import asdict, dataclass
from typing import Any

from mktpipe.models import artifacts

log = logging.getLogger(__name__)

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
LATEST = "latest.json"
VERSION_FILE = "version.json"


@dataclass(frozen=True)
class RegistrationResult:
    name: str
    version: int
    promoted: bool
    reason: str
    path: str

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


class Registry:
    """Versioned models under ``root``; see the module docstring."""

    def __init__(self, root: str, mlflow_tracking_uri: str | None = None,
                 mlflow_experiment: str = "mktpipe") -> None:
        self.root = str(root)
        self.mlflow_tracking_uri = mlflow_tracking_uri
        self.mlflow_experiment = mlflow_experiment

    def _dir(self, name: str, version: int | None = None) -> str:
        if not _NAME.match(name):
            raise ValueError(f"model name {name!r}: use letters, digits, '_', '-', '.'")
        base = artifacts.join(self.root, name)
        return base if version is None else artifacts.join(base, str(int(version)))

    # --- reading ------------------------------------------------------------------------------

    def versions(self, name: str) -> list[int]:
        """Complete versions of ``name``, oldest first."""
        base = self._dir(name)
        found = [int(d) for d in artifacts.list_dirs(base) if d.isdigit()]
        return sorted(v for v in found
                      if artifacts.exists(artifacts.join(base, str(v), VERSION_FILE)))

    def latest_version(self, name: str) -> int | None:
        path = artifacts.join(self._dir(name), LATEST)
        return int(artifacts.read_json(path)["version"]) if artifacts.exists(path) else None

    def info(self, name: str, version: int) -> dict:
        """The version's record: created_at, primary metric and value, promoted, reason."""
        return artifacts.read_json(artifacts.join(self._dir(name, version), VERSION_FILE))

    def metrics(self, name: str, version: int) -> dict:
        return artifacts.read_json(artifacts.join(self._dir(name, version), "metrics.json"))

    def lineage(self, name: str, version: int) -> dict:
        """Training snapshots, source table versions, run id, created_at ({} if absent)."""
        path = artifacts.join(self._dir(name, version), "lineage.json")
        return artifacts.read_json(path) if artifacts.exists(path) else {}

    def load(self, name: str, version: int):
        """The model of ``version``, as the class it was saved from (``artifacts.load_model``)."""
        if int(version) not in self.versions(name):
            raise FileNotFoundError(f"model {name!r} has no version {version} under "
                                    f"{self.root} (versions: {self.versions(name)})")
        return artifacts.load_model(artifacts.join(self._dir(name, version), "model"))

    def load_latest(self, name: str):
        version = self.latest_version(name)
        if version is None:
            raise FileNotFoundError(f"model {name!r} has no promoted version under {self.root}; "
                                    "register one first")
        return self.load(name, version)

    # --- writing ------------------------------------------------------------------------------

    def register(self, name: str, model, metrics: dict | None = None,
                 primary_metric: str = "ensemble.average_precision",
                 higher_is_better: bool = True, tolerance: float = 0.01,
                 lineage: dict | None = None) -> RegistrationResult:
        """Store ``model`` (anything with ``save(path)``) as the next version of ``name`` and
        promote it to latest unless ``primary_metric`` regresses by more than ``tolerance``.

        ``metrics`` default to ``model.metrics``; ``lineage``: e.g. {"training_snapshot":
        "2026-10-01", "source_tables": {"gold.user_features": 12}}. Raises KeyError when
        ``primary_metric`` is not in ``metrics``, ValueError for a negative tolerance.
        """
        if tolerance < 0 or not math.isfinite(tolerance):
            raise ValueError(f"tolerance must be a finite number >= 0, got {tolerance}")
        metrics = artifacts.json_safe(metrics if metrics is not None
                                      else getattr(model, "metrics", {}))
        value = metric_value(metrics, primary_metric)
        version, path = self._claim_version(name)
        created_at = _now()
        model.save(artifacts.join(path, "model"))
        params = model.params() if hasattr(model, "params") else {}
        artifacts.write_json(artifacts.join(path, "metrics.json"), metrics)
        artifacts.write_json(artifacts.join(path, "params.json"), params)
        artifacts.write_json(artifacts.join(path, "features.json"),
                             {"feature_cols": list(getattr(model, "feature_cols", []))})
        artifacts.write_json(artifacts.join(path, "lineage.json"),
                             {**(lineage or {}), "created_at": created_at})
        promoted, reason = self._decide(name, value, primary_metric, higher_is_better, tolerance)
        record = {"name": name, "version": version, "created_at": created_at,
                  "model_class": artifacts.qualified_name(type(model)),
                  "primary_metric": primary_metric, "value": value,
                  "higher_is_better": higher_is_better, "tolerance": tolerance,
                  "promoted": promoted, "reason": reason}
        artifacts.write_json(artifacts.join(path, VERSION_FILE), record)
        if promoted:
            self._point_latest(name, version, primary_metric, value)
        log.info("registered %s v%d (%s): %s", name, version,
                 "promoted" if promoted else "not promoted", reason)
        result = RegistrationResult(name, version, promoted, reason, path)
        self._mlflow(result, metrics, params, lineage or {})
        return result

    def promote(self, name: str, version: int) -> None:
        """Point latest at ``version`` regardless of metrics (a manual override or rollback)."""
        record = self.info(name, version)
        self._point_latest(name, int(version), record["primary_metric"], record["value"],
                           manual=True)

    def _claim_version(self, name: str) -> tuple[int, str]:
        base = self._dir(name)
        for _ in range(20):  # another writer may claim the same number: take the next one
            existing = [int(d) for d in artifacts.list_dirs(base) if d.isdigit()]
            version = max(existing, default=0) + 1
            path = self._dir(name, version)
            try:
                artifacts.create_dir(path, exist_ok=False)
                return version, path
            except FileExistsError:
                continue
        raise RuntimeError(f"could not claim a new version folder under {base}")

    def _decide(self, name: str, value, metric: str, higher_is_better: bool,
                tolerance: float) -> tuple[bool, str]:
        if not _finite(value):
            return False, f"{metric} is undefined ({value!r}); not promoted"
        current = self.latest_version(name)
        if current is None:
            return True, f"first version: {metric} = {value:.6g}"
        try:
            old = metric_value(self.metrics(name, current), metric)
        except KeyError:
            return True, f"latest v{current} has no {metric}; promoted with {value:.6g}"
        if not _finite(old):
            return True, f"latest v{current} has an undefined {metric}; promoted"
        change = (value - old) if higher_is_better else (old - value)  # > 0 = better
        what = f"{metric} {value:.6g} vs latest v{current} {old:.6g}"
        if change >= 0:
            return True, f"{what}: improves by {change:.6g}"
        if -change <= tolerance:
            return True, f"{what}: regresses by {-change:.6g}, within tolerance {tolerance:g}"
        return False, (f"{what}: regresses by {-change:.6g} > tolerance {tolerance:g}; "
                       "kept, not promoted")

    def _point_latest(self, name: str, version: int, metric: str, value,
                      manual: bool = False) -> None:
        artifacts.write_json(artifacts.join(self._dir(name), LATEST),
                             {"version": version, "updated_at": _now(), "primary_metric": metric,
                              "value": value, "manual": manual}, atomic=True)

    def _mlflow(self, result: RegistrationResult, metrics: dict, params: dict,
                lineage: dict) -> None:
        if not self.mlflow_tracking_uri:
            return
        try:
            import mlflow
        except ImportError:
            log.warning("mlflow_tracking_uri is set but mlflow is not installed; skipping MLflow")
            return
        try:
            mlflow.set_tracking_uri(self.mlflow_tracking_uri)
            mlflow.set_experiment(self.mlflow_experiment)
            with mlflow.start_run(run_name=f"{result.name}-v{result.version}"):
                mlflow.log_params({k: str(v)[:500] for k, v in _flatten(params).items()})
                mlflow.log_metrics({k: float(v) for k, v in _flatten(metrics).items()
                                    if _finite(v)})
                mlflow.set_tags({"model_name": result.name, "version": result.version,
                                 "promoted": result.promoted,
                                 **{f"lineage.{k}": str(v)[:500]
                                    for k, v in _flatten(lineage).items()}})
                if "://" not in result.path or result.path.startswith("file://"):
                    mlflow.log_artifacts(result.path.removeprefix("file://"))
        except Exception as exc:  # tracking is a side channel: never fail the registration
            log.warning("MLflow logging of %s v%d failed: %s", result.name, result.version, exc)


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


def registry_for(config) -> Registry:
    """The registry at the app config's ``paths.models`` (a local path or a URI), with its
    MLflow tracking URI (``models.mlflow_tracking_uri``)."""
    return Registry(config.uri("models"), mlflow_tracking_uri=config.models.mlflow_tracking_uri)
