"""Events that follow a view (like, comment, share, follow, profile visit, shopping funnel) and
the day's landing frames for events, comments, follows and orders.

Each secondary event copies its parent view's user, video, creator and session and happens a
little after it. The funnel is product_click -> add_to_cart -> purchase; every purchase is also
an order, every comment event a comments row and every follow event a follows row.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from mktpipe import schemas
from mktpipe.generate import params as P
from mktpipe.generate import text
from mktpipe.generate.activity import Active, Views
from mktpipe.generate.fmt import day_seconds, format_ids
from mktpipe.generate.graph import FollowLedger
from mktpipe.generate.population import Population
from mktpipe.generate.videos import Catalogue

TYPE = {name: i for i, name in enumerate(schemas.EVENT_TYPES)}
# delay after the parent event: (seconds after the watch ends?, low, high)
DELAYS = {
    "like": (False, 1, 8),
    "comment": (True, 2, 40),
    "share": (True, 1, 10),
    "follow": (False, 1, 6),
    "profile_visit": (True, 1, 8),
    "product_click": (True, 1, 20),
    "add_to_cart": (False, 5, 120),
    "purchase": (False, 10, 300),
}


@dataclass
class Counters:
    """Running id numbers, carried from day to day."""

    event: int = 0
    comment: int = 0
    order: int = 0
    session: int = 0


@dataclass(frozen=True)
class DayFrames:
    """Typed landing frames of one day (timestamps as epoch seconds)."""

    events: pd.DataFrame
    comments: pd.DataFrame
    follows: pd.DataFrame
    orders: pd.DataFrame


def view_probabilities(pop: Population, views: Views, day: int) -> dict[str, np.ndarray]:
    """Per-view probability of each secondary event that hangs directly off a view."""
    eng = pop.engagement[views.user]
    done = np.minimum(views.completion, 1.0)
    newness = np.exp(-(day - pop.signup_day[views.user]) / 7.0)
    same = pop.community[views.creator] == pop.community[views.user]
    expected_views = 1.0 + P.VIEWS_BASE * np.sqrt(eng)
    click = P.CLICK_FLOOR + pop.purchase_propensity[views.user] / (
        expected_views * P.CART_RATE * P.BUY_RATE)
    return {
        "like": np.minimum(P.LIKE_RATE * eng**0.3 * (0.5 + done), 0.9),
        "comment": np.minimum(P.COMMENT_RATE * eng**0.3, 0.5),
        "share": P.SHARE_RATE * (0.5 + done),
        "follow": P.FOLLOW_RATE * (1.0 + P.FOLLOW_NEWNESS_BOOST * newness)
        * np.where(same, P.FOLLOW_IN_COMMUNITY_FACTOR, P.FOLLOW_OUT_COMMUNITY_FACTOR),
        "profile_visit": np.full(views.n, P.PROFILE_VISIT_RATE),
        "product_click": np.minimum(click, 0.5),
    }


def secondary_events(pop: Population, views: Views, day: int,
                     rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(parent view index, event type code, ts) of every non-view event of the day."""
    parents, types, times = [], [], []
    for name, p in view_probabilities(pop, views, day).items():  # a loop per event type
        idx = np.flatnonzero(rng.random(views.n) < p)
        parents.append(idx)
        types.append(np.full(len(idx), TYPE[name]))
        times.append(_after(views.ts[idx], views.watch[idx], name, rng))
    clicks, click_ts = parents[-1], times[-1]
    for name, rate in (("add_to_cart", P.CART_RATE), ("purchase", P.BUY_RATE)):
        keep = rng.random(len(clicks)) < rate
        clicks, click_ts = clicks[keep], _after(click_ts[keep], 0.0, name, rng)
        parents.append(clicks)
        types.append(np.full(len(clicks), TYPE[name]))
        times.append(click_ts)
    last = day_seconds(day) + P.SECONDS_PER_DAY - 1
    return np.concatenate(parents), np.concatenate(types), np.minimum(np.concatenate(times), last)


def _after(ts: np.ndarray, watch, name: str, rng: np.random.Generator) -> np.ndarray:
    after_watch, low, high = DELAYS[name]
    base = ts + (np.floor(watch).astype(np.int64) if after_watch else 0)
    return base + rng.integers(low, high + 1, size=len(ts))


def build_day(pop: Population, cat: Catalogue, act: Active, views: Views, ledger: FollowLedger,
              counters: Counters, rng: np.random.Generator) -> DayFrames:
    """Assemble the day's events (time order, follows de-duplicated) and dependent rows."""
    parent, kind, ts = secondary_events(pop, views, act.day, rng)
    parent = np.concatenate([np.arange(views.n), parent])
    kind = np.concatenate([np.full(views.n, TYPE["view"]), kind])
    ts = np.concatenate([views.ts, ts])
    order = np.lexsort((kind, views.user[parent], ts))
    parent, kind, ts = parent[order], kind[order], ts[order]
    is_follow = kind == TYPE["follow"]
    admitted = ledger.admit(views.user[parent[is_follow]], views.creator[parent[is_follow]])
    keep = ~is_follow
    keep[np.flatnonzero(is_follow)[admitted]] = True
    parent, kind, ts = parent[keep], kind[keep], ts[keep]
    events = _events_frame(pop, views, parent, kind, ts, counters)
    comments = _comments_frame(pop, act, views, parent, kind, ts, counters, rng)
    orders = _orders_frame(pop, cat, views, parent, kind, ts, counters, rng)
    follow = kind == TYPE["follow"]
    follows = pd.DataFrame({
        "follower_id": format_ids("user", views.user[parent[follow]] + 1),
        "followee_id": format_ids("user", views.creator[parent[follow]] + 1),
        "followed_at": ts[follow],
    })
    return DayFrames(events, comments, follows, orders)


def _events_frame(pop, views, parent, kind, ts, counters) -> pd.DataFrame:
    user = views.user[parent]
    is_view = kind == TYPE["view"]
    numbers = counters.event + 1 + np.arange(len(kind))
    counters.event += len(kind)
    frame = pd.DataFrame({
        "event_id": format_ids("event", numbers),
        "user_id": format_ids("user", user + 1),
        "event_type": np.array(schemas.EVENT_TYPES, dtype=object)[kind],
        "ts": ts,
        "video_id": format_ids("video", views.video[parent] + 1),
        "creator_id": format_ids("user", views.creator[parent] + 1),
        "session_id": format_ids("session", counters.session + 1 + views.session[parent]),
        "watch_time_s": np.where(is_view, views.watch[parent], np.nan),
        "device": np.array(schemas.DEVICES, dtype=object)[pop.device[user]],
        "app_version": pop.app_version[user],
    })
    counters.session += views.n_sessions
    return frame


def _comments_frame(pop, act, views, parent, kind, ts, counters, rng) -> pd.DataFrame:
    """One comments row per comment event; the closer to churn, the more negative."""
    is_comment = kind == TYPE["comment"]
    src = parent[is_comment]
    user = views.user[src]
    p_neg = np.clip(pop.grumpiness[user] + P.PRE_CHURN_NEGATIVE_BOOST
                    * act.closeness[views.owner[src]], 0.0, 0.9)
    polarity = text.draw_polarity(p_neg, rng)
    numbers = counters.comment + 1 + np.arange(len(src))
    counters.comment += len(src)
    return pd.DataFrame({
        "comment_id": format_ids("comment", numbers),
        "user_id": format_ids("user", user + 1),
        "video_id": format_ids("video", views.video[src] + 1),
        "ts": ts[is_comment],
        "text": text.build_comments(pop.comment_language[user], polarity, rng),
    })


_LOG_USD = np.array([P.ORDER_LOG_USD[c] for c in P.COMMUNITIES])
_FX = np.array([P.FX_PER_USD[c] for c in P.COUNTRY_CURRENCY])


def _orders_frame(pop, cat, views, parent, kind, ts, counters, rng) -> pd.DataFrame:
    """One order per purchase event: lognormal amount by category, in the user's currency."""
    is_buy = kind == TYPE["purchase"]
    src = parent[is_buy]
    user, video = views.user[src], views.video[src]
    category = cat.category[video]
    usd = rng.lognormal(_LOG_USD[category, 0], _LOG_USD[category, 1])
    amount = np.maximum(np.round(usd * _FX[pop.country[user]], 2), 0.01)
    numbers = counters.order + 1 + np.arange(len(src))
    counters.order += len(src)
    return pd.DataFrame({
        "order_id": format_ids("order", numbers),
        "user_id": format_ids("user", user + 1),
        "ts": ts[is_buy],
        "amount": amount,
        "currency": np.array(P.COUNTRY_CURRENCY, dtype=object)[pop.country[user]],
        "category": np.array(P.COMMUNITIES, dtype=object)[category],
        "source_video_id": format_ids("video", video + 1),
    })
