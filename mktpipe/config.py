"""Layered, validated configuration.

Layers, later wins:

1. ``conf/base.yaml``
2. ``conf/<env>.yaml`` (local, test, cluster, ...)
3. environment variables ``MKTPIPE__SECTION__KEY=value`` (value parsed as YAML: ``8``, ``true``)
4. ``overrides`` (the CLI's ``--conf section.key=value``)

The merged mapping is validated against the models below: an unknown key or a value of the
wrong type fails at once with the key's dotted name and what is allowed. This module is the
only place in mktpipe that reads environment variables (secrets included: see ``secret``).
"""

from __future__ import annotations

import copy
import datetime as dt
import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from mktpipe import model_settings
from mktpipe.i18n import NP_
from mktpipe.schemas import FX_TO_USD
from mktpipe.uris import URI_SCHEMES, is_local, normalize

ENV_PREFIX = "MKTPIPE__"
CONF_DIR_ENV = "MKTPIPE_CONF_DIR"
ENV_NAME_ENV = "MKTPIPE_ENV"


class ConfigError(ValueError):
    """Configuration that cannot be used; the message names the key and what is allowed."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True, frozen=False)


class AppConfig(_Section):
    env: str = "local"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"


# what object storage is reached with, read from the environment only (the names every AWS SDK
# reads); credentials (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY) are read by the SDKs themselves
OBJECT_STORE_ENV = ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL", "AWS_REGION", "AWS_DEFAULT_REGION")
OBJECT_STORE_CREDENTIALS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")


class PathsConfig(_Section):
    """Where everything lives: each a local path (relative to the working folder) or a URI
    (``file://``, ``s3://``, ``abfss://``, ``hdfs://``); the same string serves Spark, delta-rs
    and mktpipe's own files (mktpipe.storage.files)."""

    landing: str = "data/landing"
    warehouse: str = "data/warehouse"
    truth: str = "data/landing/_truth"
    models: str = "models"
    reports: str = "reports"
    exports: str = "exports"
    checkpoints: str = "data/checkpoints"

    @model_validator(mode="after")
    def _known_schemes(self) -> PathsConfig:
        for key, value in self.model_dump().items():
            name = value.split("://", 1)[0].lower() if "://" in value else ""
            if name and name not in URI_SCHEMES:
                raise ValueError(
                    f"paths.{key}: {value!r} uses the unsupported scheme {name!r}; use a local "
                    "path or one of " + ", ".join(f"{s}://" for s in URI_SCHEMES))
        return self


class SparkConfig(_Section):
    master: str = "local[2]"
    app_name: str = "mktpipe"
    shuffle_partitions: int = Field(8, ge=1)
    driver_memory: str = "2g"
    ui_enabled: bool = False
    # folder searched for extension jars (Delta, GraphFrames, Spark NLP) before start-up
    jars_dir: str | None = "jars"
    # Maven coordinates; only used when set, never by default (no network here)
    packages: list[str] = Field(default_factory=list)
    # extra Spark settings passed through as-is (e.g. {"spark.executor.memory": "4g"})
    conf: dict[str, str] = Field(default_factory=dict)
    # native query engine: comet runs the queries it supports on Apache DataFusion Comet when
    # its jar is present (`make jars`), auto the same, none (default) Spark's own JVM engine
    accelerator: Literal["none", "comet", "auto"] = "none"
    # off-heap memory the native engine works in (spark.memory.offHeap.size), per JVM
    accelerator_memory: str = "2g"


class StorageConfig(_Section):
    # auto: delta-spark when its jar is present, else delta-rs
    backend: Literal["auto", "delta-rs", "delta-spark"] = "auto"
    target_file_rows: int = Field(1_000_000, ge=1000)  # a write splits files above this
    target_file_mb: int = Field(128, ge=1)  # OPTIMIZE bin-packs files up to this size
    # add_columns: a write may add new nullable columns (an upgrade adding an output column);
    # strict: any difference is refused. A missing column or changed type is always refused.
    schema_evolution: Literal["add_columns", "strict"] = "add_columns"
    # extra delta-rs storage options for object storage, e.g. a DynamoDB locking provider for
    # several concurrent writers on S3 (no credentials here: they come from the environment)
    options: dict[str, str] = Field(default_factory=dict)


class GenerateConfig(_Section):
    users: int = Field(2000, ge=10)
    days: int = Field(120, ge=1)
    seed: int = 42
    start_date: dt.date = dt.date(2026, 6, 29)
    dirty_rate: float = Field(0.02, ge=0.0, le=0.5)


class IngestConfig(_Section):
    # a timestamp later than the end of the landing date plus this many hours is in the future
    future_tolerance_hours: int = Field(24, ge=0)
    max_order_usd: float = Field(20_000.0, gt=0)  # per order, after conversion to USD
    max_watch_time_s: float = Field(3 * 3600.0, gt=0)
    referential_checks: bool = True
    # conversion to USD for orders.amount_usd; a currency missing here is UNKNOWN_ENUM
    fx_to_usd: dict[str, float] = Field(default_factory=lambda: dict(FX_TO_USD))


class SentimentConfig(_Section):
    # auto: Spark NLP when its jar and spark_nlp_model_path are present, else VADER (+ Spanish)
    backend: Literal["auto", "vader", "spark_nlp"] = "auto"
    positive_threshold: float = Field(0.05, ge=-1.0, le=1.0)
    negative_threshold: float = Field(-0.05, ge=-1.0, le=1.0)
    languages: list[str] = Field(default_factory=lambda: ["en", "es"])
    spark_nlp_model_path: str | None = None


class FeaturesConfig(_Section):
    windows_days: list[int] = Field(default_factory=lambda: [7, 30, 90])
    # a user is in a snapshot when active within this many days before it
    active_window_days: int = Field(90, ge=1)
    # a daily run recomputes this many days before the run date too (late events)
    late_arrival_days: int = Field(1, ge=0)


class LabelsConfig(_Section):
    churn_horizon_days: int = Field(30, ge=1)  # no activity in the next N days = churned
    churn_active_before_days: int = Field(30, ge=1)  # among users active in the N days before
    clv_horizon_days: int = Field(90, ge=1)
    purchase_horizon_days: int = Field(7, ge=1)


class GraphConfig(_Section):
    interaction_window_days: int = Field(30, ge=1)
    interaction_weight: float = Field(0.2, ge=0.0)  # per like/comment/share; a follow is 1
    pagerank_engine: Literal["auto", "spark", "igraph", "graphframes"] = "auto"
    louvain_engine: Literal["auto", "spark", "igraph"] = "auto"
    # spark Louvain: its first level as sequential Louvain in blocks of at most this many
    # vertices, in parallel (0: synchronous rounds over the whole graph)
    louvain_block_nodes: int = Field(250_000, ge=0)
    lpa_engine: Literal["auto", "spark", "igraph"] = "auto"  # label propagation
    lpa_max_iter: int = Field(20, ge=1)
    components_engine: Literal["auto", "spark", "igraph"] = "auto"
    eigenvector_engine: Literal["auto", "spark", "local"] = "auto"  # local: scipy on the driver
    # betweenness and closeness (mktpipe.graph.paths): a BFS from path_sources seeded sources
    # (null: every vertex, exact; costs a BFS level per hop of the graph's diameter)
    path_centralities: bool = True
    path_sources: int | None = Field(64, ge=1)
    path_engine: Literal["auto", "spark", "igraph"] = "auto"  # auto: igraph when it fits
    igraph_max_edges: int = Field(2_000_000, ge=0)
    damping: float = Field(0.85, gt=0.0, lt=1.0)
    tol: float = Field(1e-9, gt=0.0)
    max_iter: int = Field(100, ge=1)
    resolution: float = Field(1.0, gt=0.0)
    seed: int = 42
    top_creators: int = Field(5, ge=1)


class ModelsConfig(_Section):
    # train when a model is missing or its training snapshot is this many days old or more
    retrain_every_days: int = Field(7, ge=1)
    # most recent labelled snapshots a training set uses; the latest of them validates
    training_snapshots: int = Field(4, ge=1)
    tune: bool = False  # run each model's bounded grid (the `tuning` key of its section)
    # models fitted at once by the train stage (threads sharing the Spark session); 1: in turn
    parallel_fits: int = Field(2, ge=1, le=8)
    promotion_tolerance: float = Field(0.01, ge=0.0)  # absolute, in the primary metric's unit
    exclude_anomalous: bool = True  # users flagged by the anomaly detector stay out of training
    anomaly_lookback_days: int = Field(60, ge=7)  # daily series the detector scores
    # CLV tiers by the percentile of predicted 90-day value within the snapshot (lower bounds)
    clv_tiers: dict[str, float] = Field(default_factory=lambda: {
        NP_("tier", "vip"): 0.95, NP_("tier", "high"): 0.80, NP_("tier", "medium"): 0.50,
        NP_("tier", "low"): 0.0})
    # behaviour features the segmentation clusters on (standardised, log-compressed)
    segment_features: list[str] = Field(default_factory=lambda: [
        "views_30d", "watch_seconds_30d", "engagement_rate_30d", "active_days_30d",
        "product_clicks_30d", "order_count", "monetary_total", "followers"])
    # the model registry is MLflow's: None = the embedded SQLite store under paths.models (or
    # the MLFLOW_TRACKING_URI environment variable); else a tracking server, databricks, a DB URI
    mlflow_tracking_uri: str | None = None
    mlflow_registry_uri: str | None = None  # a separate model registry store; None: the above
    mlflow_experiment: str = "mktpipe"
    # overrides of the model library's settings (mktpipe/model_settings.py), checked at load;
    # the models take them as dataclasses: config.models.settings("churn")
    churn: dict[str, Any] = Field(default_factory=dict)
    intent: dict[str, Any] = Field(default_factory=dict)
    clv: dict[str, Any] = Field(default_factory=dict)
    segmentation: dict[str, Any] = Field(default_factory=dict)
    anomalies: dict[str, Any] = Field(default_factory=dict)

    def settings(self, section: str) -> Any:
        """The model library's settings dataclass for ``section`` (churn, intent, clv,
        segmentation, anomalies): its defaults with this config's overrides."""
        cls, base = _MODEL_SETTINGS[section]
        return model_settings.resolve(getattr(self, section), section, cls, base=base())

    @model_validator(mode="after")
    def _validate(self) -> ModelsConfig:
        # build every section now, so a bad key or value fails at load time with its dotted
        # key (``models.churn.tiers``) rather than mid-run
        for section in _MODEL_SETTINGS:
            try:
                self.settings(section)
            except (TypeError, ValueError) as exc:
                raise ValueError(f"models.{section}: {exc}") from None
        try:
            model_settings.normalize_tiers(self.clv_tiers)
        except ValueError as exc:
            raise ValueError(f"models.clv_tiers: {exc}") from None
        return self


_MODEL_SETTINGS: dict[str, tuple[type, Any]] = {
    "churn": (model_settings.ClassifierSettings, model_settings.ClassifierSettings),
    "intent": (model_settings.ClassifierSettings, model_settings.intent_defaults),
    "clv": (model_settings.RegressorSettings, model_settings.RegressorSettings),
    "segmentation": (model_settings.SegmentationSettings, model_settings.SegmentationSettings),
    "anomalies": (model_settings.AnomalySettings, model_settings.AnomalySettings),
}


class ExportConfig(_Section):
    formats: list[Literal["csv", "parquet"]] = Field(default_factory=lambda: ["csv", "parquet"])
    # the keyed hash (HMAC-SHA256) of user ids reads its key from this environment variable
    key_env: str = "MKTPIPE_EXPORT_KEY"


KPI_NAMES = ("active_users", "events", "views", "engagements", "orders", "revenue_usd")
FORECASTER_NAMES = ("seasonal_naive", "ets", "sarima", "gbm", "prophet")


class TrendsConfig(_Section):
    """The trends stage (mktpipe.trends): forecast tournament and trend diagnostics."""

    kpis: list[Literal[KPI_NAMES]] = Field(default_factory=lambda: [
        "active_users", "views", "engagements", "orders", "revenue_usd"])
    history_days: int = Field(180, ge=14)  # days before the snapshot the series cover
    models: list[Literal[FORECASTER_NAMES]] = Field(
        default_factory=lambda: list(FORECASTER_NAMES))
    horizon_days: int = Field(30, ge=1)
    backtest_horizon_days: int = Field(14, ge=1)  # each rolling-origin fold forecasts this far
    backtest_folds: int = Field(3, ge=1)
    interval: float = Field(0.8, gt=0.0, lt=1.0)  # nominal coverage of prediction intervals
    selection_metric: Literal["mase", "smape", "mape"] = "mase"
    check_days: int = Field(7, ge=1)  # the winner re-fitted without these days forecasts them
    segment_column: str | None = "segment"  # gold.customer_segments column; null: totals only
    segment_kpis: list[Literal[KPI_NAMES]] = Field(
        default_factory=lambda: ["active_users", "revenue_usd"])
    min_segment_active_users: float = Field(20.0, ge=0.0)  # mean a day, for a segment series
    change_penalty: float = Field(3.0, gt=0.0)  # x sigma^2 x log(n), ruptures PELT

    @model_validator(mode="after")
    def _validate(self) -> TrendsConfig:
        if "seasonal_naive" not in self.models:  # MASE's scale and the fallback
            self.models = ["seasonal_naive", *self.models]
        return self


class AlertsConfig(_Section):
    """Rules the trends stage evaluates into gold.alerts (severity: warning or critical)."""

    enabled: bool = True
    kpi_drop_days: int = Field(3, ge=1)  # latest days compared with the check forecast
    kpi_drop_min_days: int = Field(2, ge=1)  # ... at least this many below its interval
    kpi_drop_interval: float = Field(0.95, gt=0.0, lt=1.0)  # the check forecast's interval
    kpi_drop_segments: bool = False  # also per-segment series (noisier)
    regime_change_days: int = Field(14, ge=1)  # a change this recent is news
    regime_change_min_confidence: float = Field(0.66, ge=0.0, le=1.0)
    churn_risk_max_increase: float = Field(0.05, ge=0.0)  # share of users at risk, in points
    quarantine_max_share: float = Field(0.05, ge=0.0, le=1.0)  # of the latest ingest's rows
    churn_risk_tiers: list[str] = Field(default_factory=lambda: [
        "immediate_intervention", "retention_campaign"])
    exit_on: Literal["never", "warning", "critical"] = "never"  # see `--fail-on-alert`


class ReportConfig(_Section):
    """What the report stage writes besides ``index.html`` (mktpipe.report.outputs), and in
    which language its readers get it, the dashboard and the alerts too (mktpipe.i18n)."""

    language: Literal["en", "es"] = "en"

    audiences: list[Literal["executive", "marketing", "technical"]] = Field(
        default_factory=lambda: ["executive", "marketing", "technical"])
    formats: list[Literal["html", "pdf", "csv"]] = Field(
        default_factory=lambda: ["html", "pdf", "csv"])
    browser: str | None = None  # the Chromium binary for PDFs; null: looked up on PATH
    pdf_timeout_s: float = Field(120.0, gt=0)


class DeliveryConfig(_Section):
    """The report sent by SMTP after the report stage (mktpipe.report.delivery); credentials
    come from the environment variables named here, never from this file."""

    enabled: bool = False
    recipients: list[str] = Field(default_factory=list)
    sender: str = "mktpipe@localhost"
    smtp_host: str = "localhost"
    smtp_port: int = Field(587, ge=1, le=65535)
    tls: Literal["starttls", "ssl", "none"] = "starttls"
    username_env: str = "MKTPIPE_SMTP_USER"  # no login when the variable is unset
    password_env: str = "MKTPIPE_SMTP_PASSWORD"
    timeout_s: float = Field(30.0, gt=0)
    retries: int = Field(3, ge=1)  # attempts in all
    retry_wait_s: float = Field(10.0, ge=0)  # doubled after each failed attempt
    subject: str = "mktpipe report {snapshot}"

    @model_validator(mode="after")
    def _validate(self) -> DeliveryConfig:
        if self.enabled and not self.recipients:
            raise ValueError("delivery.enabled needs delivery.recipients (a list of addresses)")
        bad = [r for r in self.recipients if "@" not in r]
        if bad:
            raise ValueError(f"delivery.recipients: not e-mail addresses: {bad}")
        return self


class PipelineConfig(_Section):
    # backfill builds graph + feature snapshots every N days after the first date, and the last
    snapshot_every_days: int = Field(30, ge=1)
    stages: list[str] = Field(default_factory=lambda: [
        "ingest", "sentiment", "daily", "graph", "features", "anomalies", "labels", "train",
        "score", "trends", "report"])


class Config(_Section):
    app: AppConfig = Field(default_factory=AppConfig)
    paths: PathsConfig = Field(default_factory=PathsConfig)
    spark: SparkConfig = Field(default_factory=SparkConfig)
    storage: StorageConfig = Field(default_factory=StorageConfig)
    generate: GenerateConfig = Field(default_factory=GenerateConfig)
    ingest: IngestConfig = Field(default_factory=IngestConfig)
    sentiment: SentimentConfig = Field(default_factory=SentimentConfig)
    features: FeaturesConfig = Field(default_factory=FeaturesConfig)
    labels: LabelsConfig = Field(default_factory=LabelsConfig)
    graph: GraphConfig = Field(default_factory=GraphConfig)
    models: ModelsConfig = Field(default_factory=ModelsConfig)
    export: ExportConfig = Field(default_factory=ExportConfig)
    trends: TrendsConfig = Field(default_factory=TrendsConfig)
    alerts: AlertsConfig = Field(default_factory=AlertsConfig)
    report: ReportConfig = Field(default_factory=ReportConfig)
    delivery: DeliveryConfig = Field(default_factory=DeliveryConfig)
    pipeline: PipelineConfig = Field(default_factory=PipelineConfig)

    def uri(self, name: str) -> str:
        """``paths.<name>`` in the form every engine takes (mktpipe.storage.files.normalize):
        an absolute local path (relative ones are from the working folder), or a URI with
        ``s3://`` spelled ``s3a://``."""
        return normalize(getattr(self.paths, name))

    def is_local(self, name: str) -> bool:
        return is_local(getattr(self.paths, name))

    def resolve_path(self, name: str) -> Path:
        """An absolute local path for ``paths.<name>``; a URI raises ValueError (use
        :meth:`uri`, which every path of the product goes through)."""
        if not self.is_local(name):
            raise ValueError(f"paths.{name} is a URI ({getattr(self.paths, name)}), not a local "
                             "path; use config.uri()")
        return Path(self.uri(name))

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump()


def conf_dir() -> Path:
    """The folder holding base.yaml and the overlays: $MKTPIPE_CONF_DIR, ./conf, or the repo's."""
    explicit = os.environ.get(CONF_DIR_ENV)
    if explicit:
        return Path(explicit)
    here = Path.cwd() / "conf"
    if (here / "base.yaml").exists():
        return here
    return Path(__file__).resolve().parent.parent / "conf"


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        with path.open(encoding="utf-8") as fh:
            data = yaml.safe_load(fh) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of sections at the top level")
    return data


def _deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def _set_dotted(tree: dict[str, Any], dotted: str, value: Any, origin: str) -> None:
    parts = [p for p in dotted.split(".") if p]
    if len(parts) < 2:
        raise ConfigError(f"{origin}: '{dotted}' must name section.key (e.g. spark.master)")
    node = tree
    for part in parts[:-1]:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ConfigError(f"{origin}: '{dotted}' goes through a non-section value")
    node[parts[-1]] = value


def _parse_scalar(text: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def _env_overrides(environ: dict[str, str]) -> dict[str, Any]:
    tree: dict[str, Any] = {}
    for name, raw in sorted(environ.items()):
        if not name.startswith(ENV_PREFIX):
            continue
        dotted = ".".join(p.lower() for p in name[len(ENV_PREFIX):].split("__"))
        _set_dotted(tree, dotted, _parse_scalar(raw), f"environment variable {name}")
    return tree


def parse_overrides(items: list[str] | None) -> dict[str, Any]:
    """Turn ``["spark.master=local[4]", ...]`` into a nested mapping (values parsed as YAML)."""
    tree: dict[str, Any] = {}
    for item in items or []:
        if "=" not in item:
            raise ConfigError(f"--conf {item!r}: expected section.key=value")
        key, value = item.split("=", 1)
        _set_dotted(tree, key.strip(), _parse_scalar(value), f"--conf {item}")
    return tree


def _describe(error: dict[str, Any]) -> str:
    key = ".".join(str(p) for p in error["loc"])
    kind = error["type"]
    if kind == "extra_forbidden":
        section = error["loc"][:-1]
        model: Any = Config
        for part in section:
            model = model.model_fields[str(part)].annotation
        allowed = ", ".join(sorted(model.model_fields))
        return f"unknown key '{key}' (allowed here: {allowed})"
    return f"'{key}': {error['msg']} (got {error.get('input')!r})"


def validate(tree: dict[str, Any], origin: str = "configuration") -> Config:
    """Validate a merged mapping; raise ConfigError listing every bad key."""
    try:
        return Config.model_validate(tree)
    except ValidationError as exc:
        problems = "; ".join(_describe(e) for e in exc.errors())
        raise ConfigError(f"invalid {origin}: {problems}") from None


def load_config(
    env: str | None = None,
    overrides: dict[str, Any] | list[str] | None = None,
    environ: dict[str, str] | None = None,
) -> Config:
    """Load base.yaml, the ``env`` overlay, MKTPIPE__* variables and overrides; validate.

    ``env`` defaults to $MKTPIPE_ENV, else "local". ``overrides`` is a nested mapping or a list
    of ``section.key=value`` strings (as given to ``--conf``).
    """
    environ = dict(os.environ if environ is None else environ)
    env = env or environ.get(ENV_NAME_ENV) or "local"
    folder = conf_dir()
    base_file = folder / "base.yaml"
    tree = _read_yaml(base_file) if base_file.exists() else {}
    overlay = folder / f"{env}.yaml"
    if overlay.exists():
        tree = _deep_merge(tree, _read_yaml(overlay))
    elif env != "local":
        known = sorted(p.stem for p in folder.glob("*.yaml") if p.stem != "base")
        raise ConfigError(f"unknown environment '{env}': no {overlay} (known: {known})")
    tree = _deep_merge(tree, _env_overrides(environ))
    if isinstance(overrides, list):
        overrides = parse_overrides(overrides)
    tree = _deep_merge(tree, overrides or {})
    tree.setdefault("app", {})["env"] = env
    return validate(tree, f"configuration (env '{env}', conf dir {folder})")


def object_store_env(credentials: bool = False) -> dict[str, str]:
    """The object-storage settings set in the environment (OBJECT_STORE_ENV), and with
    ``credentials`` the keys too (OBJECT_STORE_CREDENTIALS): only for handing them to a JVM
    that was started before they were set (mktpipe.session.configure_spark)."""
    names = OBJECT_STORE_ENV + (OBJECT_STORE_CREDENTIALS if credentials else ())
    return {name: os.environ[name] for name in names if os.environ.get(name)}


def s3_endpoint() -> str | None:
    """The S3 endpoint set in the environment (an S3-compatible server), or None for AWS's."""
    env = object_store_env()
    return env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL")


def s3_region() -> str | None:
    env = object_store_env()
    return env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION")


def optional_secret(name: str) -> str | None:
    """A secret from the environment, or None when it is not set (e.g. SMTP without login)."""
    return os.environ.get(name) or None


def secret(name: str, purpose: str) -> str:
    """Read a secret from the environment; raise a clear error when it is missing."""
    value = os.environ.get(name)
    if not value:
        raise ConfigError(
            f"environment variable {name} is not set; it is needed for {purpose}. "
            f"Set it (e.g. export {name}=...) — secrets never live in config files."
        )
    return value
