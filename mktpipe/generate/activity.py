"""One simulated day: who is active, their sessions and the videos they watch.

Everything is vectorised over the day's active users and views; the only loop is the caller's
loop over days. Secondary events (likes, follows, purchases, ...) hang off the views, see
``interactions``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mktpipe.generate import params as P
from mktpipe.generate.fmt import day_seconds
from mktpipe.generate.graph import CreatorSampler
from mktpipe.generate.population import Population
from mktpipe.generate.timing import times_of_day, weekday_factor
from mktpipe.generate.videos import Catalogue

MAX_SESSIONS = 63


@dataclass(frozen=True)
class Active:
    """The day's active users and how close each is to churning (0 far .. 1 at churn)."""

    day: int  # epoch day
    window_day: int
    users: np.ndarray
    closeness: np.ndarray


@dataclass(frozen=True)
class Views:
    """The day's view events, grouped by session (per-view arrays)."""

    owner: np.ndarray  # position in Active.users
    user: np.ndarray
    session: np.ndarray  # dense session number within the day
    video: np.ndarray
    creator: np.ndarray
    ts: np.ndarray  # epoch seconds
    watch: np.ndarray  # seconds
    completion: np.ndarray

    @property
    def n(self) -> int:
        return len(self.user)

    @property
    def n_sessions(self) -> int:
        return int(self.session.max()) + 1 if len(self.session) else 0


def churn_closeness(pop: Population, day: int) -> np.ndarray:
    """Per user, 0 when churn is over PRE_CHURN_WINDOW days away, rising to 1 at churn."""
    left = (pop.churn_day - day).astype(np.float64)
    return np.clip(1.0 - left / P.PRE_CHURN_WINDOW, 0.0, 1.0)


def active_users(pop: Population, window_day: int, rng: np.random.Generator) -> Active:
    """Users alive on the day who show up: engagement x weekday x pre-churn decline."""
    day = pop.start_day + window_day
    alive = (pop.signup_day <= day) & (day < pop.churn_day)
    closeness = churn_closeness(pop, day)
    p = np.clip(P.ACTIVE_BASE * pop.engagement * weekday_factor(day), P.ACTIVE_MIN, P.ACTIVE_MAX)
    p = p * (1.0 - P.PRE_CHURN_ACTIVE_DROP * closeness)
    p = np.where(pop.signup_day == day, P.SIGNUP_DAY_ACTIVE, p)
    users = np.flatnonzero(alive & (rng.random(pop.n) < p))
    return Active(day=day, window_day=window_day, users=users, closeness=closeness[users])


def draw_views(pop: Population, cat: Catalogue, act: Active, rng: np.random.Generator) -> Views:
    """Views per active user, split into sessions, on popularity-weighted creators' videos."""
    eng = pop.engagement[act.users]
    lam = (P.VIEWS_BASE * np.sqrt(eng) * np.sqrt(weekday_factor(act.day))
           * (1.0 - P.PRE_CHURN_VIEWS_DROP * act.closeness))
    viewable = cat.viewable_counts(act.window_day, pop.n)
    sampler = CreatorSampler(np.where(viewable > 0, pop.attractiveness, 0.0), pop.community,
                             len(P.COMMUNITIES))
    n_views = np.zeros(len(lam), dtype=np.int64) if sampler.empty else 1 + rng.poisson(lam)
    n_sess = np.minimum(1 + rng.poisson(P.SESSIONS_BASE * np.sqrt(eng)), MAX_SESSIONS)
    owner, session = _split_sessions(n_views, np.minimum(n_sess, n_views), rng)
    if len(owner) == 0:
        return _no_views()
    user = act.users[owner]
    in_community = rng.random(len(user)) < P.IN_COMMUNITY_VIEW_SHARE
    creator = sampler.sample(pop.community[user], in_community, rng)
    video = _recent_video(cat, creator, viewable, rng)
    completion = rng.beta(0.8 + 0.8 * np.sqrt(pop.engagement[user]), 1.6)
    replay = rng.random(len(user)) < P.REPLAY_SHARE
    completion = np.where(replay, 1.0 + rng.random(len(user)), completion)
    watch = np.maximum(np.round(cat.duration[video] * completion, 1), 0.5)
    starts = times_of_day(int(session[-1]) + 1, rng)
    ts = _session_times(session, starts, watch + rng.exponential(4.0, len(user)), act.day)
    return Views(owner, user, session, video, creator, ts, watch, completion)


def _split_sessions(n_views: np.ndarray, n_sess: np.ndarray,
                    rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(owner, dense session number) per view, views grouped by session; each view joins
    one of its owner's sessions at random."""
    owner = np.repeat(np.arange(len(n_views)), n_views)
    local = np.floor(rng.random(len(owner)) * n_sess[owner]).astype(np.int64)
    key = owner * (MAX_SESSIONS + 1) + local
    order = np.argsort(key, kind="stable")
    owner, key = owner[order], key[order]
    session = np.cumsum(np.r_[False, key[1:] != key[:-1]]) if len(key) else key
    return owner, session


def _no_views() -> Views:
    empty_i, empty_f = np.zeros(0, dtype=np.int64), np.zeros(0)
    return Views(empty_i, empty_i, empty_i, empty_i, empty_i, empty_i, empty_f, empty_f)


def _recent_video(cat: Catalogue, creator: np.ndarray, viewable: np.ndarray,
                  rng: np.random.Generator) -> np.ndarray:
    """One of the creator's viewable videos, the most recent ones likeliest."""
    count = viewable[creator]
    back = np.floor(count * rng.random(len(creator)) ** 3).astype(np.int64)
    return cat.by_creator[cat.creator_start[creator] + count - 1 - back]


def _session_times(session: np.ndarray, starts: np.ndarray, gaps: np.ndarray,
                   day: int) -> np.ndarray:
    """Timestamps of views laid one after another from their session's start (same day)."""
    before = np.cumsum(gaps) - gaps
    first = np.flatnonzero(np.r_[True, session[1:] != session[:-1]])
    offset = before - before[first][session]
    within = np.minimum(starts[session] + np.floor(offset).astype(np.int64),
                        P.SECONDS_PER_DAY - 1)
    return day_seconds(day) + within
