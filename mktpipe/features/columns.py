"""Column names of silver.user_daily, gold.user_features, gold.purchase_summary and
gold.user_labels.

Conventions for every feature below: ``S`` is the snapshot date; "before S" means
``activity_date < S`` (event timestamps ``ts < S 00:00 UTC``); a ``w``-day window is the ``w``
calendar days ``S-w .. S-1`` (an event exactly ``w`` days before ``S`` is inside, ``w+1`` days
before is outside). Counts are 0 and sums 0.0 when there is nothing to count; a ratio is null
when its denominator is 0 (never NaN, never a made-up 0). ``A`` = ``features.active_window_days``
(90), ``W`` = the windows in ``features.windows_days`` (7, 30, 90), ``L`` = the largest window.

Feature table (gold.user_features, one row per user per snapshot, partitioned by snapshot_date):

=============================  ==============  ===========  =======================================
column                         unit            window       definition / source
=============================  ==============  ===========  =======================================
user_id                        id              -            users active (any event or order) in A
snapshot_date                  date            -            S (partition column)
recency_days                   days            all < S      S - date of the last order; null: none
order_count                    orders          all < S      bronze.orders; 0 when none
monetary_total                 USD             all < S      sum of amount_usd; 0.0 when none
monetary_mean                  USD / order     all < S      monetary_total / order_count; null: none
first_order_days               days            all < S      S - date of the first order; null: none
tenure_days                    days            -            S - signup_date (users signed up < S)
{m}_{w}d for m in:                             each w in W  silver.user_daily sums over the window
  views, likes, comments,      events                       event counts by type
  shares, product_clicks,
  cart_adds, purchases
  watch_seconds                seconds                      watch time of views
  sessions                     sessions                     distinct session ids, summed per day
  active_days                  days                         days with any event or order
{m}_trend_{a}_{b}              ratio           a < b in W   (m_{a}d / a) / (m_{b}d / b), consecutive
  for m in views,                                           windows (7/30, 30/90); 1 = steady,
  watch_seconds, active_days                                < 1 slowing down; null when m_{b}d = 0
engagement_rate_{w}d           per view        each w       (likes + comments + shares) / views
completion_rate_{w}d           share [0, 1]    each w       mean over views of min(watch/duration,1)
days_since_last_active         days            A            S - last active date (>= 1)
weekend_share                  share [0, 1]    A            events on Saturday/Sunday / events
night_share, morning_share,    share [0, 1]    A            events in UTC hours 0-5, 6-11, 12-17,
afternoon_share, evening_share                              18-23 / events
weekday_concentration          [0, 1]          A            1 - entropy(events by weekday) / ln 7
category_entropy               nats            A            entropy of views by video category
top_category                   category        A            most viewed category (ties: first A-Z)
creator_loyalty                share [0, 1]    A            views of the top creator / views
followers                      users           all < S      follows with followed_at < S
following                      users           all < S
follow_back_ratio              share [0, 1]    all < S      followers the user follows back
pagerank                       probability     graph's      silver.graph_metrics at snapshot S
influence_percentile           percent 0-100   graph's      (users with a lower PageRank); all four
community_id                   id              graph's      null when that table (or the snapshot)
community_size                 users           graph's      is missing
sentiment_mean_{L}d            score [-1, 1]   L            silver.comment_sentiment; mean score
sentiment_last                 score [-1, 1]   L            score of the latest comment before S
negative_share_{L}d            share [0, 1]    L            comments labelled negative / comments
comment_count_{L}d             comments        L            0 when none; all four null when the
                                                            sentiment table does not exist
country, language, age_band,   category        -            bronze.users (signup_date < S); null
gender, device,                                             for users not (yet) in bronze.users
acquisition_channel,
is_creator                     boolean
_run_id                        id              -            the run that wrote the row
=============================  ==============  ===========  =======================================

Purchase summary (gold.purchase_summary, one row per buyer per snapshot, partitioned by
snapshot_date): every user with an order before S, however long ago (the BG/NBD and
Gamma-Gamma models need the customers who stopped buying too, whom gold.user_features leaves
out), in lifetimes' conventions with days as the unit and S - 1 as the end of observation
(orders bucketed by UTC day, as ``summary_data_from_transaction_data(freq="D")``):

=============================  ==============  =============================================
frequency                      days            repeat purchase days: distinct order days - 1
recency                        days            last order day - first order day
T                              days            (S - 1) - first order day
monetary_value                 USD             mean spend per repeat day (first day left out);
                                               0.0 when frequency is 0
=============================  ==============  =============================================

Label table (gold.user_labels; see mktpipe.features.labels): user_id, snapshot_date, churned,
clv_90d, will_purchase_7d.
"""

from __future__ import annotations

from mktpipe import schemas as S

USER_ID = S.USER_ID
SNAPSHOT_DATE = S.SNAPSHOT_DATE
RUN_ID = S.RUN_ID

# --- silver.user_daily ---------------------------------------------------------------------
ACTIVITY_DATE = S.ACTIVITY_DATE
EVENTS = "events"
# output column -> bronze event_type
EVENT_COUNTS: dict[str, str] = {
    "views": "view",
    "likes": "like",
    "comments": "comment",
    "shares": "share",
    "follows": "follow",
    "profile_visits": "profile_visit",
    "product_clicks": "product_click",
    "cart_adds": "add_to_cart",
    "purchases": "purchase",
}
VIEWS = "views"
WATCH_SECONDS = "watch_seconds"
COMPLETION_SUM = "completion_sum"  # sum over views of min(watch / duration, 1)
COMPLETION_VIEWS = "completion_views"  # views whose video duration is known
COMPLETION_RATE = "completion_rate"
SESSIONS = "sessions"
ORDERS = "orders"
SPEND_USD = "spend_usd"
CATEGORIES_TOUCHED = "categories_touched"
# (name, first hour, end hour) in UTC; events_<name> counts the day's events in those hours
DAYPARTS: tuple[tuple[str, int, int], ...] = (
    ("night", 0, 6),
    ("morning", 6, 12),
    ("afternoon", 12, 18),
    ("evening", 18, 24),
)
VIEWS_BY_CATEGORY = "views_by_category"  # map<category, views>
VIEWS_BY_CREATOR = "views_by_creator"  # map<creator_id, views>


# --- gold.purchase_summary (lifetimes' names; mktpipe.models.clv reads them) ----------------
FREQUENCY = "frequency"
RECENCY = "recency"
AGE = "T"
MONETARY_VALUE = "monetary_value"
PURCHASE_SUMMARY_COLUMNS = (USER_ID, SNAPSHOT_DATE, FREQUENCY, RECENCY, AGE, MONETARY_VALUE,
                            RUN_ID)


def daypart_events(name: str) -> str:
    return f"events_{name}"


DAILY_COLUMNS: tuple[str, ...] = (
    USER_ID,
    ACTIVITY_DATE,
    EVENTS,
    *EVENT_COUNTS,
    WATCH_SECONDS,
    COMPLETION_SUM,
    COMPLETION_VIEWS,
    COMPLETION_RATE,
    SESSIONS,
    ORDERS,
    SPEND_USD,
    CATEGORIES_TOUCHED,
    *(daypart_events(name) for name, _, _ in DAYPARTS),
    VIEWS_BY_CATEGORY,
    VIEWS_BY_CREATOR,
    RUN_ID,
)

# --- gold.user_features --------------------------------------------------------------------
RFM = (
    "recency_days",
    "order_count",
    "monetary_total",
    "monetary_mean",
    "first_order_days",
    "tenure_days",
)
ACTIVE_DAYS = "active_days"
WINDOW_METRICS = (
    "views",
    "likes",
    "comments",
    "shares",
    WATCH_SECONDS,
    SESSIONS,
    ACTIVE_DAYS,
    "product_clicks",
    "cart_adds",
    "purchases",
)
TREND_METRICS = ("views", WATCH_SECONDS, ACTIVE_DAYS)
DAYS_SINCE_LAST_ACTIVE = "days_since_last_active"
WEEKEND_SHARE = "weekend_share"
WEEKDAY_CONCENTRATION = "weekday_concentration"
CATEGORY_ENTROPY = "category_entropy"
TOP_CATEGORY = "top_category"
CREATOR_LOYALTY = "creator_loyalty"
SOCIAL = ("followers", "following", "follow_back_ratio")
GRAPH = ("pagerank", "influence_percentile", "community_id", "community_size")
GRAPH_TYPES = {
    "pagerank": "double",
    "influence_percentile": "double",
    "community_id": "string",
    "community_size": "long",
}
SENTIMENT_LAST = "sentiment_last"
DEMOGRAPHICS = (
    "country",
    "language",
    "age_band",
    "gender",
    "device",
    "acquisition_channel",
    "is_creator",
)


def window_col(metric: str, days: int) -> str:
    """``views`` over 7 days -> ``views_7d``."""
    return f"{metric}_{days}d"


def trend_col(metric: str, short: int, long: int) -> str:
    return f"{metric}_trend_{short}_{long}"


def daypart_share(name: str) -> str:
    return f"{name}_share"


def window_pairs(windows: list[int]) -> list[tuple[int, int]]:
    """Consecutive pairs of the sorted windows: [7, 30, 90] -> [(7, 30), (30, 90)]."""
    ordered = sorted(set(windows))
    return list(zip(ordered[:-1], ordered[1:]))


def sentiment_cols(days: int) -> tuple[str, str, str, str]:
    """(mean, last, negative share, count) column names for a ``days`` window."""
    return (
        window_col("sentiment_mean", days),
        SENTIMENT_LAST,
        window_col("negative_share", days),
        window_col("comment_count", days),
    )


def feature_columns(windows: list[int]) -> list[str]:
    """Every gold.user_features column, in table order, for the configured windows."""
    windows = sorted(set(windows))
    return [
        USER_ID,
        SNAPSHOT_DATE,
        *RFM,
        *(window_col(m, w) for w in windows for m in WINDOW_METRICS),
        *(trend_col(m, a, b) for a, b in window_pairs(windows) for m in TREND_METRICS),
        *(window_col("engagement_rate", w) for w in windows),
        *(window_col(COMPLETION_RATE, w) for w in windows),
        DAYS_SINCE_LAST_ACTIVE,
        WEEKEND_SHARE,
        *(daypart_share(name) for name, _, _ in DAYPARTS),
        WEEKDAY_CONCENTRATION,
        CATEGORY_ENTROPY,
        TOP_CATEGORY,
        CREATOR_LOYALTY,
        *SOCIAL,
        *GRAPH,
        *sentiment_cols(windows[-1]),
        *DEMOGRAPHICS,
        RUN_ID,
    ]


def share_columns(windows: list[int]) -> list[str]:
    """Features that are shares or rates in [0, 1] (checked before every write)."""
    windows = sorted(set(windows))
    return [
        *(window_col(COMPLETION_RATE, w) for w in windows),
        WEEKEND_SHARE,
        *(daypart_share(name) for name, _, _ in DAYPARTS),
        WEEKDAY_CONCENTRATION,
        CREATOR_LOYALTY,
        "follow_back_ratio",
        sentiment_cols(windows[-1])[2],
    ]


def non_negative_columns(windows: list[int]) -> list[str]:
    """Counts, amounts, durations and ratios that can never be negative."""
    windows = sorted(set(windows))
    return [
        *RFM,
        *(window_col(m, w) for w in windows for m in WINDOW_METRICS),
        *(trend_col(m, a, b) for a, b in window_pairs(windows) for m in TREND_METRICS),
        *(window_col("engagement_rate", w) for w in windows),
        DAYS_SINCE_LAST_ACTIVE,
        CATEGORY_ENTROPY,
        "followers",
        "following",
        "community_size",
        sentiment_cols(windows[-1])[3],
    ]


def score_columns(windows: list[int]) -> list[str]:
    """Sentiment scores, in [-1, 1]."""
    mean, last, _, _ = sentiment_cols(max(windows))
    return [mean, last]


# --- gold.user_labels ----------------------------------------------------------------------
CHURNED = "churned"
CLV_90D = "clv_90d"
WILL_PURCHASE_7D = "will_purchase_7d"
DATA_END = S.DATA_END  # the (exclusive) end of the data the labels were built from
LABEL_COLUMNS = (USER_ID, SNAPSHOT_DATE, CHURNED, CLV_90D, WILL_PURCHASE_7D, DATA_END)
