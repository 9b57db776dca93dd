"""Churn: the probability that an active user goes quiet in the next N days (labels module).

An XGBoost classifier and a standardised logistic-regression baseline on any feature table,
their mean as the ensemble score, and the product spec's risk tiers:

    churn_probability >= 0.90   immediate_intervention
    0.70 <= p < 0.90            retention_campaign
    0.50 <= p < 0.70            active_monitoring
    p < 0.50                    passive_monitoring

Usage::

    model = churn.fit(features, "churned")           # validated on the latest snapshot
    model.metrics["ensemble"]["average_precision"]
    scored = model.predict(features)  # + churn_probability(_xgb, _lr), churn_tier
    model.save(path); churn.ChurnModel.load(path)
"""

from __future__ import annotations

from pyspark.sql import DataFrame

from mktpipe.model_settings import CHURN_TIERS, ClassifierSettings, resolve
from mktpipe.models.classifier import (
    BinaryClassifierModel,
    assign_tier,
    fit_binary_classifier,
    tier_col,
)

__all__ = ["CHURN_TIERS", "ChurnModel", "assign_tier", "fit", "settings_from", "tier_col"]

OUTPUT_PREFIX = "churn"


class ChurnModel(BinaryClassifierModel):
    """Fitted churn model: ``predict`` adds churn_probability (ensemble mean),
    churn_probability_xgb, churn_probability_lr and churn_tier."""


def settings_from(config=None) -> ClassifierSettings:
    """Churn settings from ``config`` (None, ClassifierSettings, a mapping of overrides, or a
    legacy mktpipe Config with a ``models.churn`` mapping)."""
    return resolve(config, "churn", ClassifierSettings)


def fit(df: DataFrame, label_col: str, feature_cols=None, config=None,
        validation_df: DataFrame | None = None, tune: bool = False) -> ChurnModel:
    """Fit the churn models on a feature table with a 0/1 ``label_col`` (1 = churned).

    ``feature_cols`` None = every column but the label, snapshot_date and id-like columns;
    string columns are categorical. ``validation_df``: a later snapshot to measure on; without
    it the latest ``snapshot_date`` validates (or a random 20% when there is one snapshot).
    ``tune=True`` runs the grids of ``config``'s ``tuning`` first. Returns a ChurnModel with
    ``.metrics`` for xgb, lr and the ensemble.
    """
    return fit_binary_classifier(df, label_col, feature_cols, settings_from(config),
                                 validation_df, tune, OUTPUT_PREFIX, ChurnModel)
