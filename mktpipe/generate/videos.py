"""The video catalogue: what creators posted before and during the window.

Videos are numbered in posting order (index j has id ``v{j+1:08d}``). A video posted before the
window lands in the first date's file and is viewable from day 0; one posted on window day d
lands on d and is viewable from d + 1, so a view never precedes the post.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import pandas as pd

from mktpipe.generate import params as P
from mktpipe.generate.fmt import day_seconds, format_ids
from mktpipe.generate.population import Population
from mktpipe.generate.timing import times_of_day


@dataclass(frozen=True)
class Catalogue:
    """Per-video arrays in posting order, plus a by-creator index for view sampling."""

    creator: np.ndarray  # user index of the creator
    posted_at: np.ndarray  # epoch seconds
    land_day: np.ndarray  # window day index of the file it lands in
    viewable_from: np.ndarray  # first window day index it can be viewed
    duration: np.ndarray
    category: np.ndarray  # index into params.COMMUNITIES
    hashtags: np.ndarray  # object array of lists
    sound: np.ndarray
    by_creator: np.ndarray  # video indices sorted by (creator, posted_at)
    creator_start: np.ndarray  # per user: offset of its first video in by_creator

    @property
    def n(self) -> int:
        return len(self.creator)

    def viewable_counts(self, day: int, n_users: int) -> np.ndarray:
        """Per user: how many of its videos can be viewed on window day ``day``."""
        return np.bincount(self.creator[self.viewable_from <= day], minlength=n_users)


def build_catalogue(pop: Population, rng: np.random.Generator) -> Catalogue:
    """Draw every video of the run: a posting history before start and daily posts after."""
    creators = np.flatnonzero(pop.is_creator)
    rate = np.minimum(P.VIDEO_POST_RATE * pop.attractiveness[creators] ** P.VIDEO_POST_EXPONENT,
                      1.5)
    hist_creator, hist_time = _history(pop, creators, rate, rng)
    new_creator, new_time = _window_posts(pop, creators, rate, rng)
    creator = np.concatenate([hist_creator, new_creator])
    posted = np.concatenate([hist_time, new_time])
    order = np.lexsort((creator, posted))
    creator, posted = creator[order], posted[order]
    n = len(creator)
    window_day = (posted // P.SECONDS_PER_DAY) - pop.start_day
    own = rng.random(n) < P.VIDEO_CATEGORY_FIDELITY
    other = rng.integers(0, len(P.COMMUNITIES), size=n)
    category = np.where(own, pop.community[creator], other)
    duration = np.round(np.clip(rng.lognormal(*P.DURATION_LOGNORMAL, size=n), 3.0, 600.0), 1)
    sound = np.minimum(rng.zipf(1.4, size=n), P.N_SOUNDS) - 1
    by_creator = np.lexsort((posted, creator))
    counts = np.bincount(creator, minlength=pop.n)
    return Catalogue(
        creator=creator,
        posted_at=posted,
        land_day=np.maximum(window_day, 0),
        viewable_from=np.where(window_day < 0, 0, window_day + 1),
        duration=duration,
        category=category,
        hashtags=_hashtags(category, rng),
        sound=sound,
        by_creator=by_creator,
        creator_start=np.concatenate([[0], np.cumsum(counts)[:-1]]),
    )


def _history(pop, creators, rate, rng):
    """Videos posted in the VIDEO_HISTORY_DAYS before start (at least one per old creator)."""
    lo = np.maximum(pop.signup_day[creators], pop.start_day - P.VIDEO_HISTORY_DAYS)
    hi = np.minimum(pop.start_day, pop.churn_day[creators])
    span = np.maximum(hi - lo, 0)
    counts = np.where(span > 0, 1 + rng.poisson(rate * span), 0)
    who = np.repeat(np.arange(len(creators)), counts)
    day = lo[who] + np.floor(rng.random(len(who)) * span[who]).astype(np.int64)
    return creators[who], day_seconds(day) + times_of_day(len(who), rng)


def _window_posts(pop, creators, rate, rng):
    """Daily Poisson posts of creators who are signed up and not churned."""
    days = pop.start_day + np.arange(pop.days)
    alive = (pop.signup_day[creators, None] <= days[None, :]) & (
        days[None, :] < pop.churn_day[creators, None]
    )
    counts = rng.poisson(rate[:, None] * np.ones(pop.days)) * alive
    who, day = np.nonzero(counts)
    reps = counts[who, day]
    who, day = np.repeat(who, reps), np.repeat(day, reps)
    return creators[who], day_seconds(days[day]) + times_of_day(len(who), rng)


def _hashtag_combos(category: str) -> list[list[str]]:
    own, generic = P.HASHTAGS[category], P.GENERIC_HASHTAGS
    combos = [[a] for a in own]
    combos += [[a, g] for a in own for g in generic]
    combos += [[a, b, g] for a, b in itertools.combinations(own, 2) for g in generic]
    return combos


_COMBOS = [_hashtag_combos(c) for c in P.COMMUNITIES]
_COMBO_FLAT = np.empty(sum(len(c) for c in _COMBOS), dtype=object)
_COMBO_FLAT[:] = [combo for combos in _COMBOS for combo in combos]
_COMBO_SIZE = np.array([len(c) for c in _COMBOS])
_COMBO_START = np.concatenate([[0], np.cumsum(_COMBO_SIZE)[:-1]])


def _hashtags(category: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A prebuilt tag list per video, drawn among its category's combinations."""
    pick = _COMBO_START[category] + np.floor(rng.random(len(category)) * _COMBO_SIZE[category])
    return _COMBO_FLAT[pick.astype(np.int64)]


def videos_frame(cat: Catalogue, index: np.ndarray) -> pd.DataFrame:
    """The videos rows (RAW_FIELDS columns; posted_at as epoch seconds) of ``index``."""
    return pd.DataFrame(
        {
            "video_id": format_ids("video", index + 1),
            "creator_id": format_ids("user", cat.creator[index] + 1),
            "posted_at": cat.posted_at[index],
            "duration_s": cat.duration[index],
            "category": np.array(P.COMMUNITIES, dtype=object)[cat.category[index]],
            "hashtags": cat.hashtags[index],
            "sound_id": format_ids("sound", cat.sound[index] + 1),
        }
    )
