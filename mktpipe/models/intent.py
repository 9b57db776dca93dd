"""Purchase intent: the probability that a user buys in the next 7 days (labels module).

XGBoost on the same preprocessing as churn (:mod:`.classifier`), with the product spec's tiers:

    intent_probability >= 0.80  personalised_offer
    0.60 <= p < 0.80            nurturing_campaign
    0.40 <= p < 0.60            educational_content
    p < 0.40                    brand_awareness

``predict`` adds intent_probability, intent_probability_xgb (the same value while XGBoost is
the only model; add "lr" to ``models`` for an ensemble) and intent_tier.
"""

from __future__ import annotations

from pyspark.sql import DataFrame

from mktpipe.model_settings import INTENT_TIERS, ClassifierSettings, intent_defaults, resolve
from mktpipe.models.classifier import BinaryClassifierModel, fit_binary_classifier

__all__ = ["INTENT_TIERS", "IntentModel", "fit", "settings_from"]

OUTPUT_PREFIX = "intent"


class IntentModel(BinaryClassifierModel):
    """Fitted purchase-intent model: ``predict`` adds intent_probability and intent_tier."""


def settings_from(config=None) -> ClassifierSettings:
    """Intent settings (defaults: XGBoost only, intent tiers) from ``config`` (None,
    ClassifierSettings, a mapping of overrides, or a Config with ``models.intent``)."""
    return resolve(config, "intent", ClassifierSettings, base=intent_defaults())


def fit(df: DataFrame, label_col: str, feature_cols=None, config=None,
        validation_df: DataFrame | None = None, tune: bool = False) -> IntentModel:
    """Fit the purchase-intent model on a feature table with a 0/1 ``label_col`` (1 = bought
    in the horizon). Arguments and validation as :func:`mktpipe.models.churn.fit`."""
    return fit_binary_classifier(df, label_col, feature_cols, settings_from(config),
                                 validation_df, tune, OUTPUT_PREFIX, IntentModel)
