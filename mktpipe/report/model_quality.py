"""Section 3: model quality from the registry's metrics.json (nothing is loaded or scored).

Reads, per model, the latest promoted version's ``metrics.json`` and ``version.json``. Older
versions may lack fields (``pr_curve``, ``lr``, ``comparison``): each part is drawn only when
its data is there, with a note otherwise.
"""

from __future__ import annotations

import logging

import pandas as pd

from mktpipe.models import tuning
from mktpipe.models.registry import Registry, registry_for
from mktpipe.report import charts
from mktpipe.report import formatting as fmt
from mktpipe.report.blocks import Section, Table, Text, not_available
from mktpipe.report.context import ReportContext
from mktpipe.storage import files

log = logging.getLogger(__name__)

CLASSIFIERS = (("churn", "Churn", "churned within 30 days"),
               ("intent", "Purchase intent", "purchased within 7 days"))
VARIANTS = (("xgb", "XGBoost"), ("lr", "Logistic regression"), ("rf", "Random forest"),
            ("mlp", "Neural network (MLP)"), ("ensemble", "Ensemble"),
            ("stacked", "Stacked ensemble"))
CALIBRATION_NAMES = {"none": "uncalibrated", "platt": "Platt scaling",
                     "isotonic": "isotonic regression"}
ALGORITHMS = {"kmeans": "k-means", "bisecting_kmeans": "bisecting k-means",
              "gmm": "Gaussian mixture"}
METRIC_COLUMNS = (("average_precision", "avg precision"), ("roc_auc", "ROC AUC"),
                  ("log_loss", "log loss"), ("brier", "Brier"))


def _latest(registry: Registry, name: str) -> tuple[int | None, dict | None, dict]:
    """(latest version, its metrics or None when unreadable, its version record)."""
    version = registry.latest_version(name)
    if version is None:
        return None, {}, {}
    try:
        info = registry.info(name, version)
    except (OSError, ValueError):  # a missing or damaged version.json: show what we can
        info = {}
    try:
        metrics = registry.metrics(name, version)
    except (OSError, ValueError) as exc:
        log.warning("report: metrics of %s v%s unreadable: %s", name, version, exc)
        metrics = None
    return version, metrics, info


def _unreadable(name: str, version: int) -> Text:
    return Text(not_available(f"the metrics of {name} model v{version} are missing or "
                              "unreadable (metrics.json)"), "warning")


def _header(name: str, version: int, info: dict) -> Text:
    trained = str(info.get("created_at", "unknown date"))[:10]
    reason = f" Promotion: {info['reason']}." if info.get("reason") else ""
    return Text(f"{name} model v{version}, trained {trained}.{reason}", "note")


def _variants(metrics: dict) -> dict[str, dict]:
    """Model variants with metrics; the ensemble is left out when it is one model's copy."""
    out = {}
    for key, label in VARIANTS:
        m = metrics.get(key)
        if isinstance(m, dict) and not any(m == seen for seen in out.values()):
            out[label] = m
    return out


def _metrics_table(model: str, variants: dict[str, dict]) -> Table:
    rows = [[label, *[fmt.fmt_num(m.get(k)) for k, _ in METRIC_COLUMNS], fmt.fmt_int(m.get("n")),
             fmt.fmt_pct(m.get("positive_rate"))] for label, m in variants.items()]
    return Table(["model", *[h for _, h in METRIC_COLUMNS], "validation users", "positive rate"],
                 rows, id=f"metrics-{model}", numeric=set(range(1, 7)),
                 note="Average precision and ROC AUC: higher is better (1 = perfect); log loss "
                      "and Brier score: lower is better.")


def _tier_table(model: str, metrics: dict) -> Table | None:
    tiers = metrics.get("tiers")
    if not tiers:
        return None
    rows = [[str(t.get("tier", "")).replace("_", " "),
             f"{fmt.fmt_num(t.get('lower'), 2)} – {fmt.fmt_num(t.get('upper'), 2)}",
             fmt.fmt_int(t.get("n")), fmt.fmt_pct(t.get("precision")), fmt.fmt_pct(t.get("recall")),
             fmt.fmt_pct(t.get("cumulative_recall"))] for t in tiers]
    return Table(["tier", "probability", "users", "precision", "recall", "recall, this tier or "
                  "higher"], rows, id=f"tiers-{model}", numeric={2, 3, 4, 5},
                 title="Validation results per tier",
                 note="Precision: share of the tier's users that really converted/churned. "
                      "Recall: share of all such users that the tier catches.")


SEARCH_NAMES = {"grid": "grid search", "random": "random search",
                "tpe": "Bayesian search (TPE)"}


def search_blocks(name: str, title: str, metrics: dict) -> list:
    """The hyperparameter search history of a model version (metrics["search"]: per searched
    model, its method and trials): a convergence chart and a table; [] when it was not tuned."""
    search = metrics.get("search") or {}
    runs = {kind: s for kind, s in search.items() if s.get("results")}
    if not runs:
        return []
    labels = dict(VARIANTS)
    curves, rows = {}, []
    for kind, s in runs.items():
        scores = [r.get("metric") for r in s["results"]]
        best = tuning.convergence(s["results"], bool(s.get("larger_is_better", True)))
        curves[labels.get(kind, kind)] = (scores, best)
        params = ", ".join(f"{k}={fmt.fmt_num(v, 4) if isinstance(v, float) else v}"
                           for k, v in (s.get("best_params") or {}).items())
        rows.append([labels.get(kind, kind), SEARCH_NAMES.get(s.get("method"), "grid search"),
                     s.get("validation", "holdout"), fmt.fmt_int(len(scores)),
                     fmt.fmt_num(sum(r.get("seconds") or 0 for r in s["results"]), 1),
                     fmt.fmt_num(best[-1], 4), params])
    metric = next(iter(runs.values())).get("metric_name", "score")
    return [
        charts.search_convergence(
            f"search-{name}", f"{title}: hyperparameter search, validation {metric} per trial "
            "(inside the training data) and the best so far.", curves, metric),
        Table(["model", "method", "validation", "trials", "seconds", f"best {metric}",
               "best parameters"],
              rows, id=f"search-{name}", title="Hyperparameter search", numeric={3, 4, 5},
              size="half"),
    ]


def _calibration_blocks(name: str, calibration) -> list:
    """What calibrates the served probability and why, with each method's out-of-fold log
    loss and Brier score; [] when the version did not try calibration."""
    if not isinstance(calibration, dict) or not calibration.get("method"):
        return []
    method = CALIBRATION_NAMES.get(calibration["method"], calibration["method"])
    blocks: list = [Text(f"Calibration: {method}. {calibration.get('reason', '')}.", "note")]
    scores = calibration.get("out_of_fold") or {}
    rows = [[CALIBRATION_NAMES[m], fmt.fmt_num(scores[m].get("log_loss"), 4),
             fmt.fmt_num(scores[m].get("brier"), 4)] for m in CALIBRATION_NAMES if m in scores]
    if rows:
        blocks.append(Table(["calibration", "log loss", "Brier"], rows, id=f"calibration-{name}",
                            title="Calibration of the served probability (out of fold)",
                            numeric={1, 2}, size="half",
                            note="Lower is better. Fitted on one half of the validation users, "
                                 "measured on the other, and the other way round."))
    return blocks


def auto_feature_blocks(name: str, report) -> list:
    """What automatic feature engineering tried, what each selection step kept, the held-out
    figures with and without the terms, and the decision; [] when it was off."""
    if not isinstance(report, dict) or not report.get("enabled"):
        return []
    decision = {"kept": "kept", "rejected": "not kept", "skipped": "skipped"}.get(
        report.get("decision"), report.get("decision"))
    blocks: list = [Text(f"Automatic feature engineering: {decision}. "
                         f"{report.get('reason', '')}.", "note")]
    steps = [("candidate terms", report.get("candidates")),
             ("after the univariate test (ANOVA F)", report.get("after_univariate")),
             ("after correlation filtering", report.get("after_correlation")),
             ("after importance pruning", report.get("after_importance")),
             ("kept", len(report.get("kept") or []))]
    rows = [[step, fmt.fmt_int(n)] for step, n in steps if n is not None]
    if "before" in report:
        rows += [["PR AUC without the terms (held out)", fmt.fmt_num(report["before"], 4)],
                 ["PR AUC with the terms (held out)", fmt.fmt_num(report.get("after"), 4)]]
    if report.get("kept"):
        rows.append(["terms", ", ".join(report["kept"])])
    blocks.append(Table(["step", "value"], rows, id=f"auto-features-{name}",
                        title="Automatic feature engineering", size="half",
                        note=f"Decided inside the training data ({report.get('validation', '')}); "
                             "the validation users above never took part."))
    return blocks


def classifier_blocks(name: str, title: str, outcome: str, registry: Registry,
                      ctx: ReportContext) -> list:
    version, metrics, info = _latest(registry, name)
    if version is None:
        return [Text(not_available(f"no {name} model trained yet",
                                   "Run the train stage to register one."), "warning")]
    ctx.models_read[name] = version
    if metrics is None:
        return [_unreadable(name, version)]
    variants = _variants(metrics)
    blocks = [_header(title, version, info), _metrics_table(name, variants)]
    served = metrics.get("served") or {}
    if served.get("model") and len(variants) > 1:
        label = dict(VARIANTS).get(served["model"], served["model"])
        blocks.append(Text(f"Scores come from: {label} ({served.get('reason', '')}).", "note"))
    if "stacked" in metrics:
        blocks.append(Text("The stacked ensemble is a logistic regression over the members' "
                           "probabilities fitted on the validation users; its figures are out "
                           "of fold (each half of them scored by a stacker fitted on the other "
                           "half).", "note"))
    blocks.extend(_calibration_blocks(name, metrics.get("calibration")))
    curves = {label: pd.DataFrame(m["pr_curve"]) for label, m in variants.items()
              if m.get("pr_curve")}
    best = metrics.get("served") or metrics.get("ensemble") or next(iter(variants.values()), {})
    sparse = [label for label, pr in curves.items()
              if len(pr.dropna(subset=["precision", "recall"])) < 3]
    if curves:
        blocks.append(charts.pr_curves(
            f"pr-{name}", f"{title}: precision against recall on the validation users "
            f"(positive = {outcome}). Higher and further right is better.", curves,
            best.get("positive_rate")))
    else:
        blocks.append(Text(f"This {name} model version recorded no precision-recall curve.",
                           "note"))
    calib = {label: pd.DataFrame(m["calibration"]) for label, m in variants.items()
             if m.get("calibration")}
    if calib:
        blocks.append(charts.calibration(
            f"calibration-{name}", f"{title}: calibration. A point on the diagonal means the "
            "predicted probability matches how often it happened.", calib))
    if sparse:
        blocks.append(Text(f"The precision-recall curve of {', '.join(sparse)} has fewer than 3 "
                           "points: its predicted probabilities hardly spread over the recorded "
                           "thresholds, so the model barely ranks users apart.", "note"))
    blocks.append(_tier_table(name, best))
    blocks.extend(auto_feature_blocks(name, metrics.get("auto_features")))
    blocks.extend(search_blocks(name, title, metrics))
    return [b for b in blocks if b is not None]


def clv_blocks(registry: Registry, ctx: ReportContext) -> list:
    version, metrics, info = _latest(registry, "clv")
    if version is None:
        return [Text(not_available("no clv model trained yet",
                                   "Run the train stage to register one."), "warning")]
    ctx.models_read["clv"] = version
    if metrics is None:
        return [_unreadable("clv", version)]
    blocks: list = [_header("CLV", version, info)]
    xgb = metrics.get("xgb") or {}
    if xgb:
        row = ["XGBoost", fmt.fmt_usd(xgb.get("rmse")), fmt.fmt_usd(xgb.get("mae")),
               fmt.fmt_num(xgb.get("r2")), fmt.fmt_pct(xgb.get("mape")), fmt.fmt_int(xgb.get("n"))]
        blocks.append(Table(["model", "RMSE (USD)", "MAE (USD)", "R²", "MAPE", "users"], [row],
                            id="metrics-clv", numeric={1, 2, 3, 4, 5},
                            title="Validation error of the CLV model"))
    blocks.extend(search_blocks("clv", "CLV", metrics))
    comp = metrics.get("comparison")
    if not comp:
        return blocks + [Text("This CLV model version has no comparison with BG/NBD.", "note")]
    if comp.get("skipped"):
        return blocks + [Text("No comparison with BG/NBD for this version: the probabilistic "
                              f"model could not be fitted ({comp['skipped']}).", "note")]
    names = {"ml": "machine learning (XGBoost)", "bgnbd": "BG/NBD + Gamma-Gamma"}
    metric = str(comp.get("metric", "rmse"))
    if comp.get("winner") in names:
        rel = comp.get("relative_margin")
        by = fmt.fmt_usd(comp.get("margin")) + (f" ({fmt.fmt_pct(rel)})" if fmt.is_number(rel)
                                                 else "")
        verdict = (f"The {names[comp['winner']]} model predicts 90-day customer value better: "
                   f"its {metric.upper()} is lower by {by} on {fmt.fmt_int(comp.get('n'))} "
                   "holdout customers.")
    else:
        verdict = f"Both CLV models are tied on {metric.upper()}."
    blocks.append(Text(verdict, "callout"))
    ml, bg = comp.get("ml") or {}, comp.get("bgnbd") or {}
    keys = [k for k in ("rmse", "mae") if fmt.is_number(ml.get(k)) and fmt.is_number(bg.get(k))]
    if keys:
        blocks.append(charts.grouped_bars(
            "clv-comparison", "CLV models on the same holdout customers: error in USD "
            "(lower is better).", [k.upper() for k in keys],
            {"XGBoost": [ml[k] for k in keys], "BG/NBD": [bg[k] for k in keys]}, "USD"))
    rows = [[label, fmt_(ml.get(k)), fmt_(bg.get(k))] for k, label, fmt_ in (
        ("rmse", "RMSE (USD)", fmt.fmt_usd), ("mae", "MAE (USD)", fmt.fmt_usd),
        ("r2", "R²", fmt.fmt_num), ("mape", "MAPE", fmt.fmt_pct), ("n", "customers", fmt.fmt_int))]
    blocks.append(Table(["metric", "XGBoost", "BG/NBD"], rows, id="clv-comparison",
                        title="Holdout comparison", numeric={1, 2}, size="half",
                        note="RMSE and MAE: typical error per customer in USD. R²: share of "
                             "the variation explained (1 = perfect)."))
    return blocks


def segments_model_blocks(registry: Registry, ctx: ReportContext) -> list:
    version, metrics, info = _latest(registry, "segments")
    if version is None:
        return [Text(not_available("no segments model trained yet"), "warning")]
    ctx.models_read["segments"] = version
    if metrics is None:
        return [_unreadable("segments", version)]
    method = ALGORITHMS.get(str(metrics.get("algorithm")), "k-means")
    text = (f"{fmt.fmt_int(metrics.get('k'))} behavioural segments by {method}, silhouette "
            f"{fmt.fmt_num(metrics.get('silhouette'), 2)} (from -1 to 1; above 0.25 the segments "
            "are reasonably distinct).")
    if metrics.get("chosen_because"):
        text += f" Chosen for the {metrics['chosen_because']}."
    blocks = [_header("Segmentation", version, info), Text(text)]
    comparison = metrics.get("comparison") or []
    if comparison:
        chosen = (metrics.get("algorithm"), metrics.get("k"))
        rows = [[ALGORITHMS.get(r.get("algorithm"), str(r.get("algorithm"))),
                 fmt.fmt_int(r.get("k")), fmt.fmt_num(r.get("silhouette"), 3),
                 fmt.fmt_num(r.get("calinski_harabasz"), 1),
                 fmt.fmt_num(r.get("davies_bouldin"), 3),
                 "chosen" if (r.get("algorithm"), r.get("k")) == chosen
                 else ("empty clusters" if r.get("degenerate") else "")]
                for r in comparison]
        blocks.append(Table(
            ["method", "k", "silhouette", "Calinski-Harabasz", "Davies-Bouldin", ""], rows,
            id="segmentation-comparison", title="Segmentation methods compared",
            numeric={1, 2, 3, 4}, collapsed=len(rows) > 12,
            note="Silhouette (-1 to 1) and Calinski-Harabasz: higher is better; "
                 "Davies-Bouldin: lower is better. Scored on the same sample of customers."))
    segments = metrics.get("segments") or []
    if segments:
        rows = [[str(g.get("name")), fmt.fmt_int(g.get("size")),
                 str(g.get("action", "")).replace("_", " "), str(g.get("action_reason", ""))]
                for g in segments]
        blocks.append(Table(["segment", "users", "recommended action", "why"], rows,
                            id="segment-actions", title="Segments and what to do with them",
                            numeric={1}))
    return blocks


def model_section(ctx: ReportContext) -> Section:
    section = Section("models", "Model quality",
                      "How well the latest promoted models did on validation users they were "
                      "not trained on.")
    root = ctx.uri("models")
    if not files.exists(root):
        section.missing = not_available(f"no model registry at {root} yet",
                                        "Run the train stage to create it.")
        return section
    registry = registry_for(ctx.config)
    for name, title, outcome in CLASSIFIERS:
        section.add(Text(title, "subheading"),
                    *classifier_blocks(name, title, outcome, registry, ctx))
    section.add(Text("Customer lifetime value (90 days)", "subheading"), *clv_blocks(registry, ctx))
    section.add(Text("Segmentation", "subheading"), *segments_model_blocks(registry, ctx))
    return section
