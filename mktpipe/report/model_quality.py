"""Section 3: model quality from the registry's metrics.json (nothing is loaded or scored).

Reads, per model, the latest promoted version's ``metrics.json`` and ``version.json``. Older
versions may lack fields (``pr_curve``, ``lr``, ``comparison``): each part is drawn only when
its data is there, with a note otherwise.
"""

from __future__ import annotations

import logging

import pandas as pd

from mktpipe import i18n
from mktpipe.i18n import N_, _, segment_label, value_label
from mktpipe.models import tuning
from mktpipe.models.registry import Registry, registry_for
from mktpipe.report import charts
from mktpipe.report import formatting as fmt
from mktpipe.report.blocks import Section, Table, Text, not_available
from mktpipe.report.context import ReportContext
from mktpipe.storage import files

log = logging.getLogger(__name__)

# labels are catalog entries (N_), shown through _()
CLASSIFIERS = (("churn", N_("Churn"), N_("churned within 30 days")),
               ("intent", N_("Purchase intent"), N_("purchased within 7 days")))
VARIANTS = (("xgb", "XGBoost"), ("lr", N_("Logistic regression")), ("rf", N_("Random forest")),
            ("mlp", N_("Neural network (MLP)")), ("ensemble", N_("Ensemble")),
            ("stacked", N_("Stacked ensemble")))
CALIBRATION_NAMES = {"none": N_("uncalibrated"), "platt": N_("Platt scaling"),
                     "isotonic": N_("isotonic regression")}
ALGORITHMS = {"kmeans": "k-means", "bisecting_kmeans": N_("bisecting k-means"),
              "gmm": N_("Gaussian mixture")}
METRIC_COLUMNS = (("average_precision", N_("avg precision")), ("roc_auc", "ROC AUC"),
                  ("log_loss", N_("log loss")), ("brier", "Brier"))


# the registry's model names as readers see them
MODEL_NAMES = {"churn": N_("churn"), "intent": N_("intent"), "clv": "clv",
               "segments": N_("segments")}


def model_name(name: str) -> str:
    return _(MODEL_NAMES.get(name, name))


def variant_label(key) -> str:
    return _(dict(VARIANTS).get(key, key))


def recorded(reason) -> bool:
    """Whether to quote a reason training recorded in metrics.json (English text with its
    figures): in English only; other languages show the same decision from the recorded
    figures (the tables beside it), never a sentence in another language."""
    return bool(reason) and i18n.current().code == i18n.DEFAULT


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
    return Text(not_available(_("the metrics of {model} model v{version} are missing or "
                                "unreadable (metrics.json)").format(model=model_name(name),
                                                                    version=version)),
                "warning")


def _header(name: str, version: int, info: dict) -> Text:
    created = info.get("created_at")
    trained = fmt.fmt_date(str(created)) if created else _("unknown date")
    text = _("{model} model v{version}, trained {day}.").format(model=name, version=version,
                                                               day=trained)
    if recorded(info.get("reason")):
        text += " " + _("Promotion: {reason}.").format(reason=info["reason"])
    return Text(text, "note")


def _variants(metrics: dict) -> dict[str, dict]:
    """Model variants with metrics; the ensemble is left out when it is one model's copy."""
    out = {}
    for key, label in VARIANTS:
        m = metrics.get(key)
        if isinstance(m, dict) and not any(m == seen for seen in out.values()):
            out[_(label)] = m
    return out


def _metrics_table(model: str, variants: dict[str, dict]) -> Table:
    rows = [[label, *[fmt.fmt_num(m.get(k)) for k, _h in METRIC_COLUMNS],
             fmt.fmt_int(m.get("n")), fmt.fmt_pct(m.get("positive_rate"))]
            for label, m in variants.items()]
    return Table([_("model"), *[_(h) for _k, h in METRIC_COLUMNS], _("validation users"),
                  _("positive rate")],
                 rows, id=f"metrics-{model}", numeric=set(range(1, 7)),
                 note=_("Average precision and ROC AUC: higher is better (1 = perfect); log "
                        "loss and Brier score: lower is better."))


def _tier_table(model: str, metrics: dict) -> Table | None:
    tiers = metrics.get("tiers")
    if not tiers:
        return None
    rows = [[value_label("tier", t.get("tier", "")),
             f"{fmt.fmt_num(t.get('lower'), 2)} – {fmt.fmt_num(t.get('upper'), 2)}",
             fmt.fmt_int(t.get("n")), fmt.fmt_pct(t.get("precision")), fmt.fmt_pct(t.get("recall")),
             fmt.fmt_pct(t.get("cumulative_recall"))] for t in tiers]
    return Table([_("tier"), _("probability"), _("users"), _("precision"), _("recall"),
                  _("recall, this tier or higher")], rows, id=f"tiers-{model}",
                 numeric={2, 3, 4, 5}, title=_("Validation results per tier"),
                 note=_("Precision: share of the tier's users that really converted/churned. "
                        "Recall: share of all such users that the tier catches."))


SEARCH_NAMES = {"grid": N_("grid search"), "random": N_("random search"),
                "tpe": N_("Bayesian search (TPE)")}
VALIDATIONS = {"holdout": N_("holdout"), "kfold": N_("k-fold"), "time": N_("time-based")}


def search_blocks(name: str, title: str, metrics: dict) -> list:
    """The hyperparameter search history of a model version (metrics["search"]: per searched
    model, its method and trials): a convergence chart and a table; [] when it was not tuned."""
    search = metrics.get("search") or {}
    runs = {kind: s for kind, s in search.items() if s.get("results")}
    if not runs:
        return []
    curves, rows = {}, []
    for kind, s in runs.items():
        scores = [r.get("metric") for r in s["results"]]
        best = tuning.convergence(s["results"], bool(s.get("larger_is_better", True)))
        curves[variant_label(kind)] = (scores, best)
        params = ", ".join(f"{k}={fmt.fmt_num(v, 4) if isinstance(v, float) else v}"
                           for k, v in (s.get("best_params") or {}).items())
        validation = str(s.get("validation", "holdout"))
        rows.append([variant_label(kind), _(SEARCH_NAMES.get(s.get("method"), "grid search")),
                     _(VALIDATIONS[validation]) if validation in VALIDATIONS else validation,
                     fmt.fmt_int(len(scores)),
                     fmt.fmt_num(sum(r.get("seconds") or 0 for r in s["results"]), 1),
                     fmt.fmt_num(best[-1], 4), params])
    metric = metric_label(next(iter(runs.values())).get("metric_name", "score"))
    return [
        charts.search_convergence(
            f"search-{name}", _("{model}: hyperparameter search, validation {metric} per trial "
                                "(inside the training data) and the best so far.").format(
                model=title, metric=metric), curves, metric),
        Table([_("model"), _("method"), _("validation"), _("trials"), _("seconds"),
               _("best {metric}").format(metric=metric), _("best parameters")],
              rows, id=f"search-{name}", title=_("Hyperparameter search"), numeric={3, 4, 5},
              size="half"),
    ]


METRIC_NAMES = {"average_precision": N_("average precision"), "areaUnderPR": N_("PR AUC"),
                "pr_auc": N_("PR AUC"), "roc_auc": "ROC AUC", "areaUnderROC": "ROC AUC",
                "log_loss": N_("log loss"), "rmse": "RMSE", "mae": "MAE", "r2": "R²",
                "score": N_("score")}


def metric_label(name) -> str:
    return _(METRIC_NAMES[name]) if name in METRIC_NAMES else str(name)


def _calibration_blocks(name: str, calibration) -> list:
    """What calibrates the served probability and why, with each method's out-of-fold log
    loss and Brier score; [] when the version did not try calibration."""
    if not isinstance(calibration, dict) or not calibration.get("method"):
        return []
    method = _(CALIBRATION_NAMES.get(calibration["method"], calibration["method"]))
    text = _("Calibration: {method}.").format(method=method)
    if recorded(calibration.get("reason")):
        text += f" {calibration['reason']}."
    blocks: list = [Text(text, "note")]
    scores = calibration.get("out_of_fold") or {}
    rows = [[_(CALIBRATION_NAMES[m]), fmt.fmt_num(scores[m].get("log_loss"), 4),
             fmt.fmt_num(scores[m].get("brier"), 4)] for m in CALIBRATION_NAMES if m in scores]
    if rows:
        blocks.append(Table([_("calibration"), _("log loss"), "Brier"], rows,
                            id=f"calibration-{name}",
                            title=_("Calibration of the served probability (out of fold)"),
                            numeric={1, 2}, size="half",
                            note=_("Lower is better. Fitted on one half of the validation "
                                   "users, measured on the other, and the other way round.")))
    return blocks


def auto_feature_blocks(name: str, report) -> list:
    """What automatic feature engineering tried, what each selection step kept, the held-out
    figures with and without the terms, and the decision; [] when it was off."""
    if not isinstance(report, dict) or not report.get("enabled"):
        return []
    decisions = {"kept": N_("kept"), "rejected": N_("not kept"), "skipped": N_("skipped")}
    decision = report.get("decision")
    decision = _(decisions[decision]) if decision in decisions else decision
    text = _("Automatic feature engineering: {decision}.").format(decision=decision)
    if recorded(report.get("reason")):
        text += f" {report['reason']}."
    blocks: list = [Text(text, "note")]
    steps = [(_("candidate terms"), report.get("candidates")),
             (_("after the univariate test (ANOVA F)"), report.get("after_univariate")),
             (_("after correlation filtering"), report.get("after_correlation")),
             (_("after importance pruning"), report.get("after_importance")),
             (_("kept"), len(report.get("kept") or []))]
    rows = [[step, fmt.fmt_int(n)] for step, n in steps if n is not None]
    if "before" in report:
        rows += [[_("PR AUC without the terms (held out)"), fmt.fmt_num(report["before"], 4)],
                 [_("PR AUC with the terms (held out)"), fmt.fmt_num(report.get("after"), 4)]]
    if report.get("kept"):
        rows.append([_("terms"), ", ".join(report["kept"])])
    blocks.append(Table([_("step"), _("value")], rows, id=f"auto-features-{name}",
                        title=_("Automatic feature engineering"), size="half",
                        note=_("Decided inside the training data ({how}); the validation users "
                               "above never took part.").format(how=report["validation"])
                        if recorded(report.get("validation")) else
                        _("Decided inside the training data; the validation users above never "
                          "took part.")))
    return blocks


def classifier_blocks(name: str, title: str, outcome: str, registry: Registry,
                      ctx: ReportContext) -> list:
    version, metrics, info = _latest(registry, name)
    if version is None:
        return [Text(not_available(_("no {model} model trained yet").format(
            model=model_name(name)),
                                   _("Run the train stage to register one.")), "warning")]
    ctx.models_read[name] = version
    if metrics is None:
        return [_unreadable(name, version)]
    title, outcome = _(title), _(outcome)
    variants = _variants(metrics)
    blocks = [_header(title, version, info), _metrics_table(name, variants)]
    served = metrics.get("served") or {}
    if served.get("model") and len(variants) > 1:
        text = _("Scores come from: {model}.").format(model=variant_label(served["model"]))
        if recorded(served.get("reason")):
            text = text[:-1] + f" ({served['reason']})."
        blocks.append(Text(text, "note"))
    if "stacked" in metrics:
        blocks.append(Text(_("The stacked ensemble is a logistic regression over the members' "
                             "probabilities fitted on the validation users; its figures are "
                             "out of fold (each half of them scored by a stacker fitted on the "
                             "other half)."), "note"))
    blocks.extend(_calibration_blocks(name, metrics.get("calibration")))
    curves = {label: pd.DataFrame(m["pr_curve"]) for label, m in variants.items()
              if m.get("pr_curve")}
    best = metrics.get("served") or metrics.get("ensemble") or next(iter(variants.values()), {})
    sparse = [label for label, pr in curves.items()
              if len(pr.dropna(subset=["precision", "recall"])) < 3]
    if curves:
        blocks.append(charts.pr_curves(
            f"pr-{name}", _("{model}: precision against recall on the validation users "
                            "(positive = {outcome}). Higher and further right is better.")
            .format(model=title, outcome=outcome), curves, best.get("positive_rate")))
    else:
        blocks.append(Text(_("This {model} model version recorded no precision-recall curve.")
                           .format(model=model_name(name)), "note"))
    calib = {label: pd.DataFrame(m["calibration"]) for label, m in variants.items()
             if m.get("calibration")}
    if calib:
        blocks.append(charts.calibration(
            f"calibration-{name}", _("{model}: calibration. A point on the diagonal means the "
                                     "predicted probability matches how often it happened.")
            .format(model=title), calib))
    if sparse:
        blocks.append(Text(_("The precision-recall curve of {models} has fewer than 3 points: "
                             "its predicted probabilities hardly spread over the recorded "
                             "thresholds, so the model barely ranks users apart.").format(
            models=", ".join(sparse)), "note"))
    blocks.append(_tier_table(name, best))
    blocks.extend(auto_feature_blocks(name, metrics.get("auto_features")))
    blocks.extend(search_blocks(name, title, metrics))
    return [b for b in blocks if b is not None]


def clv_blocks(registry: Registry, ctx: ReportContext) -> list:
    version, metrics, info = _latest(registry, "clv")
    if version is None:
        return [Text(not_available(_("no {model} model trained yet").format(
            model=model_name("clv")),
                                   _("Run the train stage to register one.")), "warning")]
    ctx.models_read["clv"] = version
    if metrics is None:
        return [_unreadable("clv", version)]
    blocks: list = [_header("CLV", version, info)]
    xgb = metrics.get("xgb") or {}
    if xgb:
        row = ["XGBoost", fmt.fmt_usd(xgb.get("rmse")), fmt.fmt_usd(xgb.get("mae")),
               fmt.fmt_num(xgb.get("r2")), fmt.fmt_pct(xgb.get("mape")), fmt.fmt_int(xgb.get("n"))]
        blocks.append(Table([_("model"), _("RMSE (USD)"), _("MAE (USD)"), "R²", "MAPE",
                             _("users")], [row], id="metrics-clv", numeric={1, 2, 3, 4, 5},
                            title=_("Validation error of the CLV model")))
    blocks.extend(search_blocks("clv", "CLV", metrics))
    comp = metrics.get("comparison")
    if not comp:
        return blocks + [Text(_("This CLV model version has no comparison with BG/NBD."),
                              "note")]
    if comp.get("skipped"):
        return blocks + [Text(_("No comparison with BG/NBD for this version: the probabilistic "
                                "model could not be fitted ({why}).").format(
            why=comp["skipped"]), "note")]
    names = {"ml": N_("machine learning (XGBoost)"), "bgnbd": "BG/NBD + Gamma-Gamma"}
    metric = str(comp.get("metric", "rmse"))
    if comp.get("winner") in names:
        rel = comp.get("relative_margin")
        by = fmt.fmt_usd(comp.get("margin")) + (f" ({fmt.fmt_pct(rel)})" if fmt.is_number(rel)
                                                 else "")
        verdict = _("The {model} model predicts 90-day customer value better: its {metric} is "
                    "lower by {by} on {n} holdout customers.").format(
            model=_(names.get(comp.get("winner"))), metric=metric.upper(), by=by,
            n=fmt.fmt_int(comp.get("n")))
    else:
        verdict = _("Both CLV models are tied on {metric}.").format(metric=metric.upper())
    blocks.append(Text(verdict, "callout"))
    ml, bg = comp.get("ml") or {}, comp.get("bgnbd") or {}
    keys = [k for k in ("rmse", "mae") if fmt.is_number(ml.get(k)) and fmt.is_number(bg.get(k))]
    if keys:
        blocks.append(charts.grouped_bars(
            "clv-comparison", _("CLV models on the same holdout customers: error in USD "
                                "(lower is better)."), [k.upper() for k in keys],
            {"XGBoost": [ml[k] for k in keys], "BG/NBD": [bg[k] for k in keys]}, "USD"))
    rows = [[label, fmt_(ml.get(k)), fmt_(bg.get(k))] for k, label, fmt_ in (
        ("rmse", _("RMSE (USD)"), fmt.fmt_usd), ("mae", _("MAE (USD)"), fmt.fmt_usd),
        ("r2", "R²", fmt.fmt_num), ("mape", "MAPE", fmt.fmt_pct),
        ("n", _("customers"), fmt.fmt_int))]
    blocks.append(Table([_("metric"), "XGBoost", "BG/NBD"], rows, id="clv-comparison",
                        title=_("Holdout comparison"), numeric={1, 2}, size="half",
                        note=_("RMSE and MAE: typical error per customer in USD. R²: share of "
                               "the variation explained (1 = perfect).")))
    return blocks


INDEX_NAMES = {"silhouette": N_("silhouette"), "calinski_harabasz": "Calinski-Harabasz",
               "davies_bouldin": "Davies-Bouldin"}


def _chosen_because(metrics: dict) -> str:
    """Why the segmentation won, from its recorded figures: the best selection index among
    the usable candidates (metrics.json's chosen_because says the same in English)."""
    index = metrics.get("selection_metric")
    if index not in INDEX_NAMES:
        return _("Chosen for the {why}.").format(why=metrics.get("chosen_because", ""))
    usable = [r for r in metrics.get("comparison") or [] if not r.get("degenerate")]
    sentence = (_("Chosen for the lowest {index} ({value}) of {n} usable candidates.")
                if index == "davies_bouldin" else
                _("Chosen for the highest {index} ({value}) of {n} usable candidates."))
    return sentence.format(index=_(INDEX_NAMES[index]), value=fmt.fmt_num(metrics.get(index), 3),
                           n=fmt.fmt_int(len(usable)) if usable else "—")


def segments_model_blocks(registry: Registry, ctx: ReportContext) -> list:
    version, metrics, info = _latest(registry, "segments")
    if version is None:
        return [Text(not_available(_("no {model} model trained yet").format(
            model=model_name("segments"))), "warning")]
    ctx.models_read["segments"] = version
    if metrics is None:
        return [_unreadable("segments", version)]
    method = _(ALGORITHMS.get(str(metrics.get("algorithm")), "k-means"))
    text = _("{k} behavioural segments by {method}, silhouette {silhouette} (from -1 to 1; above "
             "0.25 the segments are reasonably distinct).").format(
        k=fmt.fmt_int(metrics.get("k")), method=method,
        silhouette=fmt.fmt_num(metrics.get("silhouette"), 2))
    if metrics.get("selection_metric") or metrics.get("chosen_because"):
        text += " " + _chosen_because(metrics)
    blocks = [_header(_("Segmentation"), version, info), Text(text)]
    comparison = metrics.get("comparison") or []
    if comparison:
        chosen = (metrics.get("algorithm"), metrics.get("k"))
        rows = [[_(ALGORITHMS.get(r.get("algorithm"), str(r.get("algorithm")))),
                 fmt.fmt_int(r.get("k")), fmt.fmt_num(r.get("silhouette"), 3),
                 fmt.fmt_num(r.get("calinski_harabasz"), 1),
                 fmt.fmt_num(r.get("davies_bouldin"), 3),
                 _("chosen") if (r.get("algorithm"), r.get("k")) == chosen
                 else (_("empty clusters") if r.get("degenerate") else "")]
                for r in comparison]
        blocks.append(Table(
            [_("method"), "k", _("silhouette"), "Calinski-Harabasz", "Davies-Bouldin", ""], rows,
            id="segmentation-comparison", title=_("Segmentation methods compared"),
            numeric={1, 2, 3, 4}, collapsed=len(rows) > 12,
            note=_("Silhouette (-1 to 1) and Calinski-Harabasz: higher is better; "
                   "Davies-Bouldin: lower is better. Scored on the same sample of customers.")))
    segments = metrics.get("segments") or []
    if segments:
        from mktpipe.models.segmentation import ACTION_REASONS

        rows = [[segment_label(g.get("name")), fmt.fmt_int(g.get("size")),
                 value_label("action", g.get("action", "")),
                 str(g["action_reason"]) if recorded(g.get("action_reason"))
                 else _(ACTION_REASONS.get(g.get("action"), ""))]
                for g in segments]
        blocks.append(Table([_("segment"), _("users"), _("recommended action"), _("why")],
                            rows, id="segment-actions",
                            title=_("Segments and what to do with them"), numeric={1}))
    return blocks


def model_section(ctx: ReportContext) -> Section:
    section = Section("models", _("Model quality"), _(
        "How well the latest promoted models did on validation users they were not trained on."))
    root = ctx.uri("models")
    if not files.exists(root):
        section.missing = not_available(_("no model registry at {path} yet").format(path=root),
                                        _("Run the train stage to create it."))
        return section
    registry = registry_for(ctx.config)
    for name, title, outcome in CLASSIFIERS:
        section.add(Text(_(title), "subheading"),
                    *classifier_blocks(name, title, outcome, registry, ctx))
    section.add(Text(_("Customer lifetime value (90 days)"), "subheading"),
                *clv_blocks(registry, ctx))
    section.add(Text(_("Segmentation"), "subheading"), *segments_model_blocks(registry, ctx))
    return section
