"""Settings of the ML models, as small frozen dataclasses validated on construction.

The model library (``mktpipe.models``) takes these, not the app's ``Config``: every ``fit``
takes ``config=None`` (defaults), one of these dataclasses, or a plain mapping of overrides.
The app's config holds the overrides under ``models.<section>``, checks them at load time, and
hands the dataclass over: ``config.models.settings("churn")``. Defaults follow the product
spec. This module imports nothing of mktpipe, so the config and the models both build on it.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from mktpipe.i18n import NP_

# lower bound of each tier (inclusive); a probability p gets the first tier with p >= bound
# (NP_ marks the names for the readers' catalog: mktpipe.i18n.value_label shows them)
CHURN_TIERS: dict[str, float] = {
    NP_("tier", "immediate_intervention"): 0.90, NP_("tier", "retention_campaign"): 0.70,
    NP_("tier", "active_monitoring"): 0.50, NP_("tier", "passive_monitoring"): 0.0,
}
INTENT_TIERS: dict[str, float] = {
    NP_("tier", "personalised_offer"): 0.80, NP_("tier", "nurturing_campaign"): 0.60,
    NP_("tier", "educational_content"): 0.40, NP_("tier", "brand_awareness"): 0.0,
}
# xgb: XGBoost; lr: logistic regression; rf: MLlib random forest; mlp: MLlib multilayer
# perceptron (a small neural network on standardised features)
MODEL_KINDS = ("xgb", "lr", "rf", "mlp")
SELECT_RULES = ("ensemble", "best", "stacked")
CALIBRATION_METHODS = ("none", "auto", "platt", "isotonic")
ANOMALY_METHODS = ("zscore", "isolation_forest", "lof", "vote")


def normalize_tiers(tiers: Mapping[str, float] | Sequence[tuple[str, float]]
                    ) -> tuple[tuple[str, float], ...]:
    """``{name: lower_bound}`` or ``[(name, lower_bound), ...]`` -> pairs sorted by bound,
    highest first. Raises ValueError unless names are unique and non-empty, bounds are distinct
    numbers in [0, 1] and the lowest bound is 0 (so every probability gets a tier)."""
    pairs = list(tiers.items()) if isinstance(tiers, Mapping) else [tuple(t) for t in tiers]
    if not pairs:
        raise ValueError("tiers: at least one tier is needed, e.g. {'all': 0.0}")
    problems = []
    names = [str(name) for name, _ in pairs]
    if any(not name for name in names) or len(set(names)) != len(names):
        problems.append(f"names must be unique and non-empty, got {names}")
    try:
        bounds = [float(bound) for _, bound in pairs]
    except (TypeError, ValueError):
        raise ValueError(f"tiers: lower bounds must be numbers, got {pairs}") from None
    if any(not (0.0 <= b <= 1.0) or math.isnan(b) for b in bounds):
        problems.append(f"lower bounds must lie in [0, 1], got {bounds}")
    if len(set(bounds)) != len(bounds):
        problems.append(f"lower bounds must be distinct, got {bounds}")
    if bounds and min(bounds) != 0.0:
        problems.append(f"the lowest tier must start at 0.0 so every probability has a tier, "
                        f"got {min(bounds)}")
    if problems:
        raise ValueError("tiers: " + "; ".join(problems))
    return tuple(sorted(zip(names, bounds), key=lambda p: -p[1]))


SEARCH_METHODS = ("grid", "random", "tpe")
CLUSTERING_ALGORITHMS = ("kmeans", "bisecting_kmeans", "gmm")
# internal validity indices: silhouette and Calinski-Harabasz higher is better, Davies-Bouldin
# lower is better
CLUSTERING_INDICES = ("silhouette", "calinski_harabasz", "davies_bouldin")


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)


@dataclass(frozen=True)
class AutoFeatureSettings:
    """Automatic feature engineering of a classifier (``models.<churn|intent>.auto_features``;
    see ``mktpipe/models/autofeatures.py``): candidates from the ``top_k`` numeric features most
    correlated with the label, selected on the training data, kept only when they improve the
    reference model's validation average precision by at least ``min_gain``."""

    enabled: bool = False
    top_k: int = 6  # the strongest numeric features the terms are built from
    squares: bool = True  # x^2 of each (PolynomialExpansion's degree-2 diagonal)
    products: bool = True  # x*y of each pair (Interaction of two numeric columns)
    ratios: bool = True  # x/y of each pair, the stronger over the weaker (null where y = 0)
    recent_share: bool = True  # x_<short>d / x_<long>d of every windowed measure
    fpr: float = 0.05  # UnivariateFeatureSelector (ANOVA F): keep p-values below this
    max_correlation: float = 0.95  # drop a candidate this correlated with a kept feature
    min_importance: float = 0.5  # drop below this share of the mean random-forest importance
    min_gain: float = 0.0  # keep the terms when validation AP improves by more than this
    validation: str = "time"  # time (the latest training snapshot) | holdout
    train_ratio: float = 0.75  # holdout (and time with one snapshot): the share fitted on
    forest_trees: int = 30  # the importance forest
    # the search runs on a seeded uniform sample of the training rows (both parts of its
    # split, in the class ratio) of about max_rows, never fewer than min_positives positives
    # expected; null: every row. The fit that follows uses every row.
    max_rows: int | None = 100_000
    min_positives: int = 2_000

    def __post_init__(self) -> None:
        _check(self.top_k >= 2, f"auto_features.top_k must be >= 2, got {self.top_k}")
        _check(self.squares or self.products or self.ratios or self.recent_share,
               "auto_features: at least one of squares, products, ratios, recent_share")
        _check(0.0 < self.fpr <= 1.0, f"auto_features.fpr must lie in (0, 1], got {self.fpr}")
        _check(0.0 < self.max_correlation <= 1.0,
               f"auto_features.max_correlation must lie in (0, 1], got {self.max_correlation}")
        _check(self.min_importance >= 0.0, "auto_features.min_importance must be >= 0")
        _check(self.validation in ("time", "holdout"),
               f"auto_features.validation must be 'time' or 'holdout', got {self.validation!r}")
        _check(0.0 < self.train_ratio < 1.0, "auto_features.train_ratio must lie in (0, 1)")
        _check(self.forest_trees >= 1, "auto_features.forest_trees must be >= 1")
        _check(self.max_rows is None or self.max_rows >= 1_000,
               f"auto_features.max_rows must be null or >= 1000, got {self.max_rows}")
        _check(self.min_positives >= 1, "auto_features.min_positives must be >= 1")


def _auto_features(value: Any) -> AutoFeatureSettings:
    if isinstance(value, AutoFeatureSettings):
        return value
    if isinstance(value, bool):  # auto_features: true
        return AutoFeatureSettings(enabled=value)
    _check(isinstance(value, Mapping), f"auto_features must be a mapping or a boolean, got "
                                       f"{value!r}")
    allowed = {f.name for f in dataclasses.fields(AutoFeatureSettings)}
    unknown = sorted(set(value) - allowed)
    _check(not unknown, f"auto_features: unknown keys {unknown}; allowed: {sorted(allowed)}")
    return AutoFeatureSettings(**value)


@dataclass(frozen=True)
class ClassifierSettings:
    """Binary classifiers (churn, purchase intent)."""

    models: tuple[str, ...] = ("xgb", "lr")
    tiers: Any = field(default_factory=lambda: dict(CHURN_TIERS))
    class_weight: str = "balanced"  # balanced | none
    xgb_params: Mapping[str, Any] = field(default_factory=lambda: {
        "max_depth": 4, "n_estimators": 150, "learning_rate": 0.1, "subsample": 0.9})
    lr_params: Mapping[str, Any] = field(default_factory=lambda: {
        "regParam": 0.01, "elasticNetParam": 0.0, "maxIter": 100})
    # 50 trees and 100 iterations: at 100k users (137,616 training rows) churn's served model
    # scored the same validation average precision as with 100 trees and 200 iterations
    # (0.5925 vs 0.5921; the forest 0.5727 vs 0.5746, the MLP 0.5583 vs 0.5558) and the
    # churn fit took 199 s instead of 312 s
    rf_params: Mapping[str, Any] = field(default_factory=lambda: {
        "numTrees": 50, "maxDepth": 8, "subsamplingRate": 0.8})
    # hidden_layers: sizes between the input and the 2-unit output; the rest are
    # MultilayerPerceptronClassifier params
    mlp_params: Mapping[str, Any] = field(default_factory=lambda: {
        "hidden_layers": [16, 8], "maxIter": 100, "stepSize": 0.03})
    # ensemble: serve the mean of the models' probabilities; best: serve the mean only when it
    # beats its best member on validation average precision, else that member
    select: str = "ensemble"
    # stack: also fit a logistic regression over the members' probabilities on validation
    # (measured out of fold), a candidate for select: best / stacked
    stack: bool = True
    # calibration of the served probability, fitted on validation: none | platt | isotonic |
    # auto (the one with the lowest out-of-fold log loss, none unless it beats uncalibrated)
    calibration: str = "none"
    num_workers: int = 1  # xgboost.spark workers (Spark tasks); one per executor core at most
    date_col: str = "snapshot_date"
    validation_fraction: float = 0.2  # random split, only when there is no time to split on
    seed: int = 42
    max_categories: int = 100  # string columns with more distinct values are dropped
    calibration_bins: int = 10
    tuning: Mapping[str, Mapping[str, Sequence]] = field(default_factory=dict)
    max_grid_size: int = 16
    tuning_train_ratio: float = 0.75
    search: str = "grid"  # grid | random | tpe (the ``tuning`` space; see models/tuning.py)
    search_trials: int = 16  # random / tpe: parameter sets tried at most
    search_timeout_s: float = 600.0  # random / tpe: per model, no new trial after this
    # how a trial is scored inside the training data: holdout (tuning_train_ratio), kfold
    # (search_folds folds), time (train on earlier snapshots, validate on the latest)
    search_validation: str = "holdout"
    search_folds: int = 3
    # interaction, polynomial, ratio and recent-share terms, selected and validated
    auto_features: Any = field(default_factory=AutoFeatureSettings)

    def __post_init__(self) -> None:
        _check(self.search in SEARCH_METHODS,
               f"search must be one of {SEARCH_METHODS}, got {self.search!r}")
        _check(self.search_trials >= 1, "search_trials must be >= 1")
        _check(self.search_validation in ("holdout", "kfold", "time"),
               "search_validation must be one of ('holdout', 'kfold', 'time'), got "
               f"{self.search_validation!r}")
        _check(self.search_folds >= 2, "search_folds must be >= 2")
        _check(self.search_timeout_s > 0, "search_timeout_s must be > 0")
        object.__setattr__(self, "auto_features", _auto_features(self.auto_features))
        object.__setattr__(self, "models", tuple(self.models))
        object.__setattr__(self, "tiers", normalize_tiers(self.tiers))
        unknown = [m for m in self.models if m not in MODEL_KINDS]
        _check(bool(self.models) and not unknown and len(set(self.models)) == len(self.models),
               f"models must be distinct names from {MODEL_KINDS}, got {self.models}")
        _check(self.select in SELECT_RULES,
               f"select must be one of {SELECT_RULES}, got {self.select!r}")
        _check(self.calibration in CALIBRATION_METHODS,
               f"calibration must be one of {CALIBRATION_METHODS}, got {self.calibration!r}")
        _check(self.select != "stacked" or self.stack, "select: stacked needs stack: true")
        _check(self.class_weight in ("balanced", "none"),
               f"class_weight must be 'balanced' or 'none', got {self.class_weight!r}")
        _check(0.0 < self.validation_fraction < 1.0,
               f"validation_fraction must lie in (0, 1), got {self.validation_fraction}")
        _check(self.num_workers >= 1, f"num_workers must be >= 1, got {self.num_workers}")
        _check(self.max_categories >= 1, f"max_categories must be >= 1, got {self.max_categories}")
        _check(self.calibration_bins >= 1, "calibration_bins must be >= 1")
        _check(0.0 < self.tuning_train_ratio < 1.0, "tuning_train_ratio must lie in (0, 1)")
        _check(self.max_grid_size >= 1, "max_grid_size must be >= 1")
        stray = [k for k in self.tuning if k not in self.models]
        _check(not stray, f"tuning has grids for {stray}, which are not among models "
                          f"{self.models}")


def intent_defaults() -> ClassifierSettings:
    return ClassifierSettings(models=("xgb",), tiers=dict(INTENT_TIERS))


@dataclass(frozen=True)
class RegressorSettings:
    """The ML CLV regressor (spend in the next N days)."""

    xgb_params: Mapping[str, Any] = field(default_factory=lambda: {
        "max_depth": 4, "n_estimators": 150, "learning_rate": 0.1, "subsample": 0.9})
    objective: str = "reg:squarederror"  # reg:tweedie suits zero-heavy spend too
    num_workers: int = 1
    date_col: str = "snapshot_date"
    validation_fraction: float = 0.2
    seed: int = 42
    max_categories: int = 100
    output_col: str = "clv_prediction"
    tuning: Mapping[str, Sequence] = field(default_factory=dict)  # grid over xgb params
    max_grid_size: int = 16
    tuning_train_ratio: float = 0.75
    search: str = "grid"  # grid | random | tpe (the ``tuning`` space; see models/tuning.py)
    search_trials: int = 16  # random / tpe: parameter sets tried at most
    search_timeout_s: float = 600.0  # random / tpe: per model, no new trial after this
    search_validation: str = "holdout"  # holdout | kfold | time (as ClassifierSettings)
    search_folds: int = 3

    def __post_init__(self) -> None:
        _check(self.search in SEARCH_METHODS,
               f"search must be one of {SEARCH_METHODS}, got {self.search!r}")
        _check(self.search_trials >= 1, "search_trials must be >= 1")
        _check(self.search_validation in ("holdout", "kfold", "time"),
               "search_validation must be one of ('holdout', 'kfold', 'time'), got "
               f"{self.search_validation!r}")
        _check(self.search_folds >= 2, "search_folds must be >= 2")
        _check(self.search_timeout_s > 0, "search_timeout_s must be > 0")
        _check(0.0 < self.validation_fraction < 1.0, "validation_fraction must lie in (0, 1)")
        _check(self.num_workers >= 1, f"num_workers must be >= 1, got {self.num_workers}")
        _check(bool(self.output_col), "output_col must be a column name")
        _check(self.max_grid_size >= 1, "max_grid_size must be >= 1")


@dataclass(frozen=True)
class SegmentationSettings:
    """Behavioural segmentation: every algorithm in ``algorithms`` for every k in
    [k_min, k_max], the pair with the best ``selection_metric`` wins."""

    k_min: int = 3
    k_max: int = 8
    algorithms: tuple[str, ...] = CLUSTERING_ALGORITHMS
    # one algorithm only (the setting before ``algorithms``; "bisecting" = bisecting_kmeans)
    algorithm: str | None = None
    selection_metric: str = "silhouette"  # | calinski_harabasz | davies_bouldin
    log1p: bool = True  # sign(x) log(1 + |x|) before standardising: counts are heavy-tailed
    max_iter: int = 30
    seed: int = 42
    name_features: int = 2  # features named per segment
    name_threshold: float = 0.5  # |standardised centroid| below this counts as "average"

    def __post_init__(self) -> None:
        _check(2 <= self.k_min <= self.k_max,
               f"need 2 <= k_min <= k_max, got k_min={self.k_min}, k_max={self.k_max}")
        if self.algorithm is not None:
            one = {"bisecting": "bisecting_kmeans"}.get(self.algorithm, self.algorithm)
            object.__setattr__(self, "algorithms", (one,))
        object.__setattr__(self, "algorithms", tuple(self.algorithms))
        unknown = [a for a in self.algorithms if a not in CLUSTERING_ALGORITHMS]
        _check(bool(self.algorithms) and not unknown
               and len(set(self.algorithms)) == len(self.algorithms),
               f"algorithms must be distinct names from {CLUSTERING_ALGORITHMS}, got "
               f"{self.algorithm or self.algorithms}")
        _check(self.selection_metric in CLUSTERING_INDICES,
               f"selection_metric must be one of {CLUSTERING_INDICES}, got "
               f"{self.selection_metric!r}")
        _check(self.name_features >= 1, "name_features must be >= 1")
        _check(self.name_threshold >= 0, "name_threshold must be >= 0")


@dataclass(frozen=True)
class AnomalySettings:
    z_threshold: float = 6.0
    max_watch_seconds_per_day: float = 20 * 3600.0
    watch_col: str = "watch_seconds"
    min_days: int = 5  # fewer active days: no within-user z-scores (too little history)
    log_scale: bool = True  # z-scores of log1p(x): engagement counts are heavy-tailed
    min_scale: float = 0.5  # floor of the robust scale, in z's units (log1p units by default)
    # which detector flags users: zscore (the rules above), isolation_forest, lof (local
    # outlier factor), or vote (flagged by at least two of the three)
    method: str = "zscore"
    contamination: float = 0.01  # isolation_forest / lof: the share of users they flag
    sample_rows: int = 20_000  # isolation_forest / lof: users fitted on (a seeded sample)
    n_neighbors: int = 20  # lof
    seed: int = 42

    def __post_init__(self) -> None:
        _check(self.method in ANOMALY_METHODS,
               f"method must be one of {ANOMALY_METHODS}, got {self.method!r}")
        _check(0 < self.contamination < 0.5,
               f"contamination must lie in (0, 0.5), got {self.contamination}")
        _check(self.sample_rows >= 10, f"sample_rows must be >= 10, got {self.sample_rows}")
        _check(self.n_neighbors >= 2, f"n_neighbors must be >= 2, got {self.n_neighbors}")
        _check(self.z_threshold > 0, f"z_threshold must be > 0, got {self.z_threshold}")
        _check(self.max_watch_seconds_per_day > 0, "max_watch_seconds_per_day must be > 0")
        _check(self.min_days >= 2, f"min_days must be >= 2, got {self.min_days}")
        _check(self.min_scale > 0, f"min_scale must be > 0, got {self.min_scale}")


S = TypeVar("S")


def resolve(config: Any, section: str, cls: type[S], base: S | None = None) -> S:
    """Settings of type ``cls`` from ``config``: None -> ``base`` (or ``cls()``); an instance
    of ``cls`` as is; a mapping -> ``base`` with those fields replaced.

    For calls written before the models took dataclasses, an object whose
    ``models.<section>`` is such a mapping (the app's ``Config``) gives that mapping."""
    base = base if base is not None else cls()
    if config is None:
        return base
    if isinstance(config, cls):
        return config
    if not isinstance(config, Mapping):
        node = getattr(getattr(config, "models", None), section, None)
        if not isinstance(node, Mapping):
            raise TypeError(f"{section} settings: expected None, {cls.__name__} or a mapping "
                            f"of overrides, got {type(config).__name__}")
        config = node
    overrides = dict(config)
    allowed = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(overrides) - allowed)
    if unknown:
        raise ValueError(f"{section} settings: unknown keys {unknown}; allowed: {sorted(allowed)}")
    return dataclasses.replace(base, **overrides)


def to_dict(settings: Any) -> dict:
    """A JSON-friendly dict of a settings dataclass (tuples become lists)."""
    out = dataclasses.asdict(settings)
    if "tiers" in out:
        out["tiers"] = {name: bound for name, bound in out["tiers"]}
    return out
