"""Pure (driver-side, Spark-free) metrics for comparing partitions."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd


def _aligned(labels_a, labels_b) -> tuple[np.ndarray, np.ndarray]:
    if isinstance(labels_a, Mapping) and isinstance(labels_b, Mapping):
        if labels_a.keys() != labels_b.keys():
            only_a = len(labels_a.keys() - labels_b.keys())
            only_b = len(labels_b.keys() - labels_a.keys())
            raise ValueError(
                f"nmi: the two labelings cover different items ({only_a} only in labels_a, "
                f"{only_b} only in labels_b)"
            )
        keys = list(labels_a)
        return (
            pd.factorize(pd.Series([labels_a[k] for k in keys], dtype=object))[0],
            pd.factorize(pd.Series([labels_b[k] for k in keys], dtype=object))[0],
        )
    a, b = list(labels_a), list(labels_b)
    if len(a) != len(b):
        raise ValueError(f"nmi: labelings have different lengths ({len(a)} and {len(b)})")
    return (
        pd.factorize(pd.Series(a, dtype=object))[0],
        pd.factorize(pd.Series(b, dtype=object))[0],
    )


def _entropy(counts: np.ndarray, total: int) -> float:
    p = counts[counts > 0] / total
    return float(-(p * np.log(p)).sum())


def nmi(labels_a: Sequence | Mapping, labels_b: Sequence | Mapping) -> float:
    """Normalised mutual information of two labelings of the same items, in [0, 1].

    Inputs: two sequences of equal length (item i has label ``labels_a[i]`` and
    ``labels_b[i]``), or two mappings item -> label over the same keys. Labels are any hashable
    values (their names do not matter, only the grouping). Output: ``MI / mean(H_a, H_b)``
    (arithmetic normalisation, sklearn's default); 1.0 when both labelings put everything in
    one group (or are empty), 0.0 when exactly one of them does.
    """
    a, b = _aligned(labels_a, labels_b)
    if len(a) == 0:
        return 1.0
    return nmi_from_counts(pd.crosstab(a, b).to_numpy())


def nmi_from_counts(counts: np.ndarray) -> float:
    """NMI from a contingency table (rows: labels of one partition, columns: the other's).

    What ``nmi`` computes, for callers that aggregate the table themselves (e.g. a Spark
    ``groupBy(a, b).count()``, so the items never come to the driver).
    """
    counts = np.asarray(counts, dtype=float)
    n = counts.sum()
    if n == 0:
        return 1.0
    h_a = _entropy(counts.sum(axis=1), n)
    h_b = _entropy(counts.sum(axis=0), n)
    if h_a == 0.0 and h_b == 0.0:
        return 1.0
    joint = counts / n
    outer = np.outer(counts.sum(axis=1), counts.sum(axis=0)) / (n * n)
    nonzero = joint > 0
    mutual = float((joint[nonzero] * np.log(joint[nonzero] / outer[nonzero])).sum())
    normaliser = (h_a + h_b) / 2.0
    return float(min(max(mutual / normaliser, 0.0), 1.0))
