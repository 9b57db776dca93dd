"""Feature preprocessing shared by the models: column selection, Spark ML stages, validation split.

Any feature table works. Columns are sorted into kinds by their Spark type:

* numeric (any NumericType) and boolean: cast to double; nulls and NaN imputed with the
  training median (``Imputer``); a 0/1 missing indicator is added for the columns that had
  nulls in the training data (elsewhere it would be a constant);
* string: categorical. Nulls become the category ``__missing__``; ``StringIndexer`` with
  ``handleInvalid="keep"`` maps values unseen in training to one extra index. Tree models get
  the index; linear models a one-hot vector (``dropLast`` drops exactly that extra "unseen"
  slot, so an unseen value is the all-zero baseline). String columns with more than
  ``max_categories`` distinct values (ids, free text) are dropped with a warning.

Every stage is a Spark ML stage, so the fitted preprocessing saves and loads with the model.
Internal columns carry the ``__mk_`` prefix and never reach a model's output.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field

from pyspark import keyword_only
from pyspark.ml import Transformer
from pyspark.ml.feature import (
    Imputer,
    OneHotEncoder,
    SQLTransformer,
    StandardScaler,
    StringIndexer,
    VectorAssembler,
)
from pyspark.ml.functions import vector_to_array
from pyspark.ml.param import Param, Params, TypeConverters
from pyspark.ml.param.shared import HasInputCols, HasOutputCols
from pyspark.ml.util import DefaultParamsReadable, DefaultParamsWritable
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T_

log = logging.getLogger(__name__)

INTERNAL = "__mk_"
LABEL = INTERNAL + "label"
WEIGHT = INTERNAL + "weight"
TREE_FEATURES = INTERNAL + "features_tree"
LINEAR_FEATURES = INTERNAL + "features_linear"
SCALED_FEATURES = INTERNAL + "features_scaled"  # LINEAR_FEATURES standardised (the MLP's)
MISSING_CATEGORY = "__missing__"
ID_COLUMNS = ("id", "user_id", "snapshot_date")


def is_id_like(name: str) -> bool:
    """user_id, snapshot_date, ``*_id`` and ``_*`` (bookkeeping such as _run_id) columns."""
    return name in ID_COLUMNS or name.endswith("_id") or name.startswith("_")


def _kind(data_type: T_.DataType) -> str | None:
    if isinstance(data_type, T_.BooleanType | T_.NumericType):
        return "numeric"
    if isinstance(data_type, T_.StringType):
        return "categorical"
    return None


def infer_feature_columns(df: DataFrame, exclude=()) -> list[str]:
    """Every column of ``df`` but ``exclude`` and id-like ones, with a usable type (numeric,
    boolean, string). Other types (dates, arrays, maps) are skipped with a logged warning."""
    out, skipped = [], []
    for f in df.schema.fields:
        if f.name in exclude or is_id_like(f.name):
            continue
        (out if _kind(f.dataType) else skipped).append(f.name)
    if skipped:
        log.warning("feature columns skipped for their type (not numeric, boolean or string): "
                    "%s", skipped)
    if not out:
        raise ValueError(f"no usable feature columns in {df.columns} (excluded: {list(exclude)} "
                         "and id-like columns); pass feature_cols explicitly")
    return out


def require_columns(df: DataFrame, columns, what: str) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValueError(f"{what}: missing columns {missing}; present {df.columns}")


@dataclass(frozen=True)
class FeatureSpec:
    """What preprocessing does with each feature column (decided on the training data)."""

    numeric: tuple[str, ...] = ()
    categorical: tuple[str, ...] = ()
    indicators: tuple[str, ...] = ()  # numeric columns with nulls in training
    dropped: dict[str, str] = field(default_factory=dict)  # column -> why

    @property
    def columns(self) -> list[str]:
        return [*self.numeric, *self.categorical]

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> FeatureSpec:
        return cls(tuple(d["numeric"]), tuple(d["categorical"]), tuple(d["indicators"]),
                   dict(d.get("dropped", {})))


def profile_features(df: DataFrame, feature_cols, max_categories: int = 100) -> FeatureSpec:
    """Sort ``feature_cols`` into kinds with one aggregation over ``df`` (null counts, approximate
    distinct counts of strings). Raises ValueError for missing columns or unusable types."""
    require_columns(df, feature_cols, "features")
    types = {f.name: f.dataType for f in df.schema.fields}
    bad = {c: types[c].simpleString() for c in feature_cols if _kind(types[c]) is None}
    if bad:
        raise ValueError(f"features: unsupported column types {bad}; use numeric, boolean or "
                         "string columns (derive numbers from dates first)")
    numeric = [c for c in feature_cols if _kind(types[c]) == "numeric"]
    categorical = [c for c in feature_cols if _kind(types[c]) == "categorical"]
    exprs = [F.count(F.lit(1)).alias("__n")]
    for i, c in enumerate(numeric):
        value = F.col(c).cast("double")
        exprs.append(F.count(F.when(value.isNull() | F.isnan(value), 1)).alias(f"n{i}"))
    exprs += [F.approx_count_distinct(c).alias(f"c{i}") for i, c in enumerate(categorical)]
    row = df.agg(*exprs).first()
    n, dropped = row["__n"], {}
    if n == 0:
        raise ValueError("features: the training data has no rows")
    keep_numeric, indicators = [], []
    for i, c in enumerate(numeric):
        if row[f"n{i}"] == n:
            dropped[c] = "all values null"
        else:
            keep_numeric.append(c)
            if row[f"n{i}"]:
                indicators.append(c)
    keep_categorical = []
    for i, c in enumerate(categorical):
        if row[f"c{i}"] > max_categories:
            dropped[c] = f"about {row[f'c{i}']} distinct values > max_categories={max_categories}"
        else:
            keep_categorical.append(c)
    if dropped:
        log.warning("features dropped: %s", dropped)
    if not keep_numeric and not keep_categorical:
        raise ValueError(f"features: no usable feature left ({dropped})")
    return FeatureSpec(tuple(keep_numeric), tuple(keep_categorical), tuple(indicators), dropped)


def _q(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def preprocessing_stages(spec: FeatureSpec, tree: bool = True, linear: bool = False,
                         scaled: bool = False) -> list:
    """Unfitted Spark ML stages producing TREE_FEATURES and/or LINEAR_FEATURES (vectors), and
    with ``scaled`` SCALED_FEATURES (LINEAR_FEATURES standardised: mean 0, std 1)."""
    linear = linear or scaled
    num = [f"{INTERNAL}num{i}" for i in range(len(spec.numeric))]
    imp = [f"{INTERNAL}imp{i}" for i in range(len(spec.numeric))]
    miss = [f"{INTERNAL}miss{i}" for i in range(len(spec.indicators))]
    cat = [f"{INTERNAL}cat{i}" for i in range(len(spec.categorical))]
    idx = [f"{INTERNAL}idx{i}" for i in range(len(spec.categorical))]
    ohe = [f"{INTERNAL}ohe{i}" for i in range(len(spec.categorical))]
    selects = ["*"]
    selects += [f"CAST({_q(c)} AS DOUBLE) AS {o}" for c, o in zip(spec.numeric, num)]
    selects += [f"CAST(({_q(c)} IS NULL OR isnan(CAST({_q(c)} AS DOUBLE))) AS DOUBLE) AS {o}"
                for c, o in zip(spec.indicators, miss)]
    selects += [f"COALESCE(CAST({_q(c)} AS STRING), '{MISSING_CATEGORY}') AS {o}"
                for c, o in zip(spec.categorical, cat)]
    stages: list = [SQLTransformer(statement=f"SELECT {', '.join(selects)} FROM __THIS__")]
    if num:
        stages.append(Imputer(inputCols=num, outputCols=imp, strategy="median"))
    if cat:
        stages.append(StringIndexer(inputCols=cat, outputCols=idx, handleInvalid="keep",
                                    stringOrderType="frequencyDesc"))
    if tree:
        stages.append(VectorAssembler(inputCols=imp + miss + idx, outputCol=TREE_FEATURES))
    if linear:
        if cat:
            stages.append(OneHotEncoder(inputCols=idx, outputCols=ohe, dropLast=True))
        stages.append(VectorAssembler(inputCols=imp + miss + (ohe if cat else []),
                                      outputCol=LINEAR_FEATURES))
    if scaled:
        stages.append(StandardScaler(inputCol=LINEAR_FEATURES, outputCol=SCALED_FEATURES,
                                     withMean=True, withStd=True))
    return stages


def split_train_validation(df: DataFrame, validation_df: DataFrame | None = None,
                           date_col: str = "snapshot_date", fraction: float = 0.2,
                           seed: int = 42) -> tuple[DataFrame, DataFrame, dict]:
    """Training and validation sets, and a dict describing the split.

    ``validation_df`` given: used as is (a later snapshot). Else when ``date_col`` has at least
    two distinct values: the latest snapshot validates, earlier ones train (rows with a null
    date are left out). Else a seeded random split of ``fraction``, with a logged warning:
    with one snapshot the validation score cannot show drift over time.
    """
    if validation_df is not None:
        return df, validation_df, {"strategy": "given"}
    if date_col in df.columns:
        dates = sorted(r[0] for r in df.select(date_col).distinct().dropna().collect())
        if len(dates) >= 2:
            latest = dates[-1]
            train = df.filter(F.col(date_col) < F.lit(latest))
            valid = df.filter(F.col(date_col) == F.lit(latest))
            return train, valid, {"strategy": "time",
                                  "train_snapshots": [str(d) for d in dates[:-1]],
                                  "validation_snapshot": str(latest)}
    log.warning("no validation_df and fewer than 2 distinct %s values: random %.0f%% "
                "validation split (seed %d); time-based validation is preferred",
                date_col, 100 * fraction, seed)
    train, valid = df.randomSplit([1.0 - fraction, fraction], seed=seed)
    return train, valid, {"strategy": "random", "fraction": fraction, "seed": seed}


class VectorElement(Transformer, HasInputCols, HasOutputCols, DefaultParamsReadable,
                    DefaultParamsWritable):
    """Element ``index`` of each vector column in ``inputCols`` as a double column in
    ``outputCols`` (e.g. P(class 1) from a probability vector). Saves and loads in pipelines."""

    index = Param(Params._dummy(), "index", "the vector element to extract (0-based)",
                  typeConverter=TypeConverters.toInt)

    @keyword_only
    def __init__(self, *, inputCols=None, outputCols=None, index=1):
        super().__init__()
        self._setDefault(index=1)
        self._set(**self._input_kwargs)

    def _transform(self, dataset: DataFrame) -> DataFrame:
        i = self.getOrDefault(self.index)
        pairs = zip(self.getInputCols(), self.getOutputCols(), strict=True)
        return dataset.withColumns({o: vector_to_array(F.col(c))[i].cast("double")
                                    for c, o in pairs})


def drop_training_summary(model):
    """Drop the training summary a fitted Spark ML model keeps (LogisticRegression, KMeans...).

    Spark 4.1's summaries hold the SparkSession in a field that is not transient; once the
    session has run an ``Observation`` (the spark graph engines use them), the session no longer
    serialises, so every later task that ships the model (``transform``) fails with "Task not
    serializable: ObservationManager". mktpipe never reads the summaries. Returns ``model``."""
    from pyspark import SparkContext

    stages = getattr(model, "stages", None)
    for stage in (stages if stages is not None else [model]):
        if getattr(stage, "hasSummary", False):
            none = SparkContext._active_spark_context._jvm.scala.Option.empty()
            stage._java_obj.setSummary(none)  # Scala's private[ml] setter, public in bytecode
    return model

