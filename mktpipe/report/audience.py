"""Sections 4 and 5: customer segments, and influencers / communities from the graph stage."""

from __future__ import annotations

import datetime as dt
import logging

import pandas as pd
from pyspark.sql import functions as F

from mktpipe import i18n
from mktpipe import schemas as S
from mktpipe.catalog import COMMUNITIES, CUSTOMER_SEGMENTS, GRAPH_METRICS, USER_FEATURES
from mktpipe.features import columns as C
from mktpipe.i18n import N_, NP_, _, dimension_value, ngettext, segment_label, value_label
from mktpipe.report import charts, queries
from mktpipe.report import formatting as fmt
from mktpipe.report.blocks import Section, Table, Text, not_available
from mktpipe.report.context import ReportContext

log = logging.getLogger(__name__)

TOP_N = 10
TIER_FAMILIES = (("churn_tier", N_("Churn risk tiers")),
                 ("intent_tier", N_("Purchase intent tiers")), ("clv_tier", N_("CLV tiers")))
PROFILE_LABELS = {"churn_probability": (N_("churn risk"), "pct"),
                  "intent_probability": (N_("purchase intent"), "pct"),
                  "clv_90d": (N_("90-day CLV"), "usd"), "order_count": (N_("orders"), "num1"),
                  "monetary_total": (N_("spend to date"), "usd"),
                  C.DAYS_SINCE_LAST_ACTIVE: (N_("days since active"), "num1")}


def _label(col: str) -> tuple[str, str]:
    if col in PROFILE_LABELS:
        label, unit = PROFILE_LABELS[col]
        return _(label), unit
    if col.startswith("engagement_rate"):
        return _("engagements per view ({window})").format(
            window=col.rsplit("_", 1)[-1].replace("d", " d")), "num2"
    return i18n.feature_label(col), "num1"


def _text(value) -> str:
    """A table cell for an id or a name; '—' for null / NaN."""
    if value is None or (isinstance(value, float) and value != value):
        return fmt.MISSING
    return str(value)


def _cell(value, unit: str) -> str:
    if unit.startswith("num"):
        return fmt.fmt_num(value, int(unit[3:]))
    return fmt.fmt_value(value, unit)


def _profile_table(profiles: pd.DataFrame, total: int) -> Table:
    """Metrics as rows, segments as columns (a segment count stays readable; metrics grow)."""
    cols = [c for c in profiles.columns if c not in ("segment", "users")]
    segments = [segment_label(v) for v in profiles["segment"]]
    rows = [[_("users"), *[fmt.fmt_int(v) for v in profiles["users"]]],
            [_("share of users"), *[fmt.fmt_pct(v / total if total else None)
                                    for v in profiles["users"]]]]
    for col in cols:
        label, unit = _label(col)
        rows.append([label, *[_cell(v, unit) for v in profiles[col]]])
    return Table([_("average per user"), *segments], rows, id="segment-profiles",
                 title=_("Segment profiles"), numeric=set(range(1, len(segments) + 1)),
                 note=_("Scores from the models; behaviour from the user features of the same "
                        "snapshot (30-day windows unless stated)."))


def value_order(config) -> dict[str, list[str]]:
    """Display order of each dimension's values: tiers from the highest, RFM by rule order."""
    from mktpipe.model_settings import CHURN_TIERS, INTENT_TIERS, normalize_tiers
    from mktpipe.models.segmentation import RFM_RULES

    def names(tiers) -> list[str]:
        try:
            return [name for name, _bound in normalize_tiers(tiers)]
        except ValueError:
            return []

    return {"churn_tier": names(config.models.churn.get("tiers", CHURN_TIERS)),
            "intent_tier": names(config.models.intent.get("tiers", INTENT_TIERS)),
            "clv_tier": names(config.models.clv_tiers),
            "rfm_segment": [name for name, _r, _f in RFM_RULES] + [NP_("rfm", "no_purchase")]}


def _ordered(frame: pd.DataFrame, order: list[str]) -> pd.DataFrame:
    rank = {v: i for i, v in enumerate(order)}
    return frame.assign(_o=frame["value"].map(lambda v: rank.get(v, len(rank)))) \
        .sort_values(["_o", "users", "value"], ascending=[True, False, True])


def segments_section(ctx: ReportContext) -> Section:
    section = Section("segments", _("Customer segments"), _(
        "Who the scored customers are: behavioural segments, RFM groups and the action tiers "
        "of the churn, intent and CLV models."))
    segments = ctx.table(CUSTOMER_SEGMENTS)
    if segments is None:
        section.missing = not_available(
            _("{table} does not exist").format(table=CUSTOMER_SEGMENTS),
            _("Run the score stage first."))
        return section
    dates = queries.partition_dates(segments)
    if ctx.snapshot not in dates:
        latest = queries.latest_on_or_before(dates, ctx.snapshot)
        section.missing = not_available(
            _("{table} has no partition for {day}").format(table=CUSTOMER_SEGMENTS,
                                                          day=fmt.fmt_date(ctx.snapshot)),
            _("Latest scores: {day}.").format(day=fmt.fmt_date(latest)) if latest
            else _("Run the score stage for this snapshot."))
        return section
    current = segments.filter(F.col(S.SNAPSHOT_DATE) == F.lit(ctx.snapshot))
    order = value_order(ctx.config)
    by_dim = {d: _ordered(g, order.get(d, []))
              for d, g in queries.segment_counts(current).groupby("dimension")}
    total = int(by_dim[next(iter(by_dim))]["users"].sum()) if by_dim else 0
    lead = ngettext("{n} user scored for {day}.", "{n} users scored for {day}.", total).format(
        n=fmt.fmt_int(total), day=fmt.fmt_date(ctx.snapshot))
    flagged = by_dim.get("is_anomalous")
    if flagged is not None and (flagged["value"] == "true").any():
        n = int(flagged.loc[flagged["value"] == "true", "users"].sum())
        lead += " " + ngettext(
            "{n} of them shows anomalous (bot-like) engagement: best left out of campaigns "
            "until reviewed.", "{n} of them show anomalous (bot-like) engagement: best left "
            "out of campaigns until reviewed.", n).format(n=fmt.fmt_int(n))
    section.add(Text(lead, "lead"))
    if "segment" in by_dim:
        seg = by_dim["segment"]
        section.add(charts.hbars("segment-sizes", _("Users per behavioural segment."),
                                 [segment_label(v) for v in seg["value"]],
                                 seg["users"].tolist(), _("users")))
    if "rfm_segment" in by_dim:
        rfm = by_dim["rfm_segment"]
        section.add(Table([_("RFM segment"), _("users"), _("share")],
                          [[value_label("rfm", v), fmt.fmt_int(n), fmt.fmt_pct(n / total)]
                           for v, n in zip(rfm["value"], rfm["users"])],
                          id="rfm-segments",
                          title=_("RFM segments (recency, frequency, monetary)"),
                          numeric={1, 2}, size="half"))
    panels = {_(title): [(dimension_value(col, v), n)
                         for v, n in zip(by_dim[col]["value"], by_dim[col]["users"])]
              for col, title in TIER_FAMILIES if col in by_dim}
    if panels:
        section.add(charts.tier_panels("tiers", _("Users per action tier of each model, "
                                                  "highest tier on top."), panels))
    features = _features(ctx)
    feature_cols = [] if features is None else queries.profile_columns(
        features.columns, ctx.config.features.windows_days)
    section.add(_profile_table(queries.segment_profiles(current, features, feature_cols), total))
    if features is None:
        section.note(_("Behaviour averages need {table} for {day}; it is missing, so only "
                       "model scores are profiled.").format(table=USER_FEATURES,
                                                            day=fmt.fmt_date(ctx.snapshot)))
    ctx.details["segments"] = {d: dict(zip(g["value"], g["users"].astype(int)))
                               for d, g in by_dim.items()}
    return section


def _features(ctx: ReportContext):
    features = ctx.table(USER_FEATURES)
    if features is None:
        return None
    current = features.filter(F.col(S.SNAPSHOT_DATE) == F.lit(ctx.snapshot))
    return current if current.limit(1).count() else None


def _graph_snapshot(ctx: ReportContext, table: str):
    df = ctx.table(table)
    if df is None:
        return None, None
    snap = queries.latest_on_or_before(queries.partition_dates(df), ctx.snapshot)
    if snap is None:
        return None, None
    return df.filter(F.col(S.SNAPSHOT_DATE) == F.lit(snap)), snap


def _influencer_blocks(metrics, snap: dt.date) -> list:
    top, users = queries.top_influencers(metrics, TOP_N)
    if top.empty:
        return [Text(not_available(_("{table} is empty for {day}").format(
            table=GRAPH_METRICS, day=fmt.fmt_date(snap))), "warning")]
    times_avg = top["pagerank"] * users  # PageRank sums to 1: the average user has 1 / users
    labels = [_text(u) for u in top["user_id"]]
    rows = [[str(i + 1), _text(r["user_id"]), fmt.fmt_num(times_avg[i], 1) + "×",
             fmt.fmt_num(r.get("influence_percentile"), 1), _text(r.get("community_id")),
             fmt.fmt_int(r.get("in_degree"))] for i, (_idx, r) in enumerate(top.iterrows())]
    ranked = queries.top_by_centrality(metrics, TOP_N)
    blocks = []
    if len(ranked) > 1:
        names = {key: _(name) for key, name in queries.CENTRALITIES}
        cols = list(ranked)
        depth = max(len(v) for v in ranked.values())
        rows_by = [[str(i + 1), *[_text(ranked[c][i]) if i < len(ranked[c]) else ""
                                  for c in cols]] for i in range(depth)]
        blocks.append(Table([_("rank"), *[names[c] for c in cols]], rows_by,
                            id="top-by-centrality", numeric={0}, size="half",
                            title=_("Top users by each centrality"),
                            note=_("PageRank: reached by following links, weighted by who "
                                   "links; eigenvector: connected to well-connected users (the "
                                   "graph taken as undirected); betweenness: on the shortest "
                                   "paths between others (bridges between communities); "
                                   "closeness: few steps from everyone else; incoming links: "
                                   "followers plus users who interacted with their videos.")))
    return [
        charts.hbars("top-influencers", _("Top {n} users by influence (PageRank), as a multiple "
                                          "of the average user's.").format(n=len(top)),
                     labels, times_avg.tolist(), _("influence (× average user)"),
                     color=charts.TEAL, value_fmt=lambda v: fmt.fmt_num(v, 1) + "×"),
        Table([_("rank"), _("user"), _("influence"), _("percentile"), _("community"),
               _("incoming links")], rows,
              id="top-influencers", numeric={0, 2, 3, 5}, size="half",
              note=_("Among {n} users. Incoming links: followers plus users who liked, "
                     "commented on or shared their videos.").format(n=fmt.fmt_int(users))),
        *blocks,
    ]


def _community_blocks(communities, snap: dt.date) -> list:
    top, totals = queries.top_communities(communities, TOP_N)
    if top.empty:
        return [Text(not_available(_("{table} is empty for {day}").format(
            table=COMMUNITIES, day=fmt.fmt_date(snap))), "warning")]
    q = totals.get("modularity")
    intro = _("{communities} communities among {users} users; modularity {q} (above 0.3 means "
              "clearly separated communities).").format(
        communities=fmt.fmt_int(totals.get("communities")), users=fmt.fmt_int(totals.get("users")),
        q=fmt.fmt_num(q, 2))
    if totals.get("lpa_modularity") is not None:
        intro += " " + _("Label propagation, a cheaper method used as a baseline, finds {n} "
                         "communities with modularity {lpa} (Louvain's: {q}).").format(
            n=fmt.fmt_int(totals.get("lpa_communities")),
            lpa=fmt.fmt_num(totals["lpa_modularity"], 2), q=fmt.fmt_num(q, 2))

    def label(community, category) -> str:
        name = f"#{community}" if str(community).isdigit() else _text(community)
        return f"{name} · {value_label('category', category) if category else _('mixed')}"

    labels = [label(r["community_id"], r.get("dominant_category")) for _idx, r in top.iterrows()]

    def creators(value) -> str:
        return ", ".join(str(v) for v in list(value)[:3]) if value is not None else ""

    rows = [[_text(r["community_id"]), fmt.fmt_int(r["size"]),
             value_label("category", r.get("dominant_category")),
             fmt.fmt_pct(r.get("internal_density")), creators(r.get("top_creators"))]
            for _idx, r in top.iterrows()]
    return [
        Text(intro),
        charts.hbars("communities", _("The {n} largest communities (users), labelled with "
                                      "their most viewed content category.").format(n=len(top)),
                     labels, top["size"].tolist(), _("users"), color=charts.NAVY),
        Table([_("community"), _("users"), _("top category"), _("link density"),
               _("top creators")], rows, id="communities", numeric={1, 3}, size="half"),
    ]


def influencers_section(ctx: ReportContext) -> Section:
    section = Section("influencers", _("Influencers and communities"), _(
        "Influence is PageRank on the follow and interaction graph; communities are groups of "
        "users who mostly follow and interact with each other."))
    metrics, snap = _graph_snapshot(ctx, GRAPH_METRICS)
    communities, csnap = _graph_snapshot(ctx, COMMUNITIES)
    if metrics is None and communities is None:
        section.missing = not_available(
            _("no graph results ({metrics}, {communities}) on or before {day}").format(
                metrics=GRAPH_METRICS, communities=COMMUNITIES, day=fmt.fmt_date(ctx.snapshot)),
            _("Run the graph stage (`mktpipe graph`) first."))
        return section
    if snap and snap != ctx.snapshot:
        section.note(_("The graph was last computed for {day}; that is what is shown.")
                     .format(day=fmt.fmt_date(snap)))
    section.add(Text(_("Top influencers"), "subheading"))
    section.add(*(_influencer_blocks(metrics, snap) if metrics is not None else
                  [Text(not_available(_("{table} on or before {day}").format(
                      table=GRAPH_METRICS, day=fmt.fmt_date(ctx.snapshot))), "warning")]))
    section.add(Text(_("Communities"), "subheading"))
    section.add(*(_community_blocks(communities, csnap) if communities is not None else
                  [Text(not_available(_("{table} on or before {day}").format(
                      table=COMMUNITIES, day=fmt.fmt_date(ctx.snapshot))), "warning")]))
    ctx.details["graph_snapshot"] = str(snap or csnap)
    return section
