"""Planted anomalies with labels: a few bot-like users, so that anomaly detectors can be measured.

Two kinds, alternating over a seeded choice of about ``BOT_SHARE`` of the users (none below
``MIN_USERS`` users), each on one seeded day of the window (from day ``FIRST_DAY`` on, so that
a detector has some normal history first):

* ``burst``: ``BURST_VIEWS`` short views (5-20 s) within one hour: a script replaying videos;
* ``impossible_watch``: ``WATCH_VIEWS`` views of ``WATCH_SECONDS`` each (every one valid on
  its own: under ingest's 3-hour limit per view) adding up to more than 20 hours in one day.

The extra rows are ordinary, valid events (fresh event and session ids, real videos already
viewable that day), appended to the day's events in time order; they go through the same
writer, so the summary's row counts include them. Labels: ``<truth>/anomalies.csv``
(user_id, kind, date). The bots draw from their own random stream, so every other draw is
unchanged; only the event and session ids after a bot's day are shifted by the rows planted.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
import pandas as pd

from mktpipe import schemas
from mktpipe.generate.fmt import date_of, format_ids
from mktpipe.generate.interactions import Counters
from mktpipe.generate.population import Population
from mktpipe.generate.videos import Catalogue
from mktpipe.storage import files

BOT_SHARE = 0.005
MIN_USERS = 100
FIRST_DAY = 7
BURST_VIEWS = 400
WATCH_VIEWS, WATCH_SECONDS = 14, 6_000.0  # 14 x 100 min = 23.3 h
KINDS = ("burst", "impossible_watch")
TRUTH_FILE = "anomalies.csv"


@dataclass(frozen=True)
class Bots:
    user: np.ndarray  # user index
    kind: np.ndarray  # object array of KINDS
    day: np.ndarray  # window day index of the anomaly

    def truth(self, pop: Population) -> pd.DataFrame:
        return pd.DataFrame({"user_id": format_ids("user", self.user + 1),
                             "kind": self.kind,
                             "date": [date_of(pop.start_day + int(d)) for d in self.day]})


def choose_bots(pop: Population, rng: np.random.Generator) -> Bots:
    """About BOT_SHARE of the users (at least one from MIN_USERS users on), among users signed
    up before the window starts and not churning before their day; none for a window shorter
    than FIRST_DAY + 1 days."""
    n = int(round(pop.n * BOT_SHARE)) if pop.n >= MIN_USERS else 0
    n = max(n, 1) if pop.n >= MIN_USERS else 0
    if pop.days <= FIRST_DAY or n == 0:
        return Bots(np.empty(0, np.int64), np.empty(0, object), np.empty(0, np.int64))
    days = rng.integers(FIRST_DAY, pop.days, size=4 * n)
    eligible = np.flatnonzero((pop.signup_day <= pop.start_day) & ~pop.is_creator)
    users = rng.choice(eligible, size=min(4 * n, len(eligible)), replace=False)
    keep = [i for i in range(len(users))  # still a user on that day (churn_day: epoch day)
            if pop.churn_day[users[i]] > pop.start_day + days[i]][:n]
    return Bots(users[keep].astype(np.int64),
                np.array([KINDS[i % 2] for i in range(len(keep))], dtype=object),
                days[keep].astype(np.int64))


def plant(events: pd.DataFrame, bots: Bots, window_day: int, epoch_day: int,
          pop: Population, cat: Catalogue, counters: Counters,
          rng: np.random.Generator) -> pd.DataFrame:
    """``events`` of one day plus the rows of the bots planted on that day, in time order."""
    today = np.flatnonzero(bots.day == window_day)
    if len(today) == 0:
        return events
    viewable = np.flatnonzero(cat.viewable_from <= window_day)
    if len(viewable) == 0:
        return events
    parts = [events]
    for i in today:
        user, kind = int(bots.user[i]), bots.kind[i]
        if kind == "burst":
            n = BURST_VIEWS
            start = epoch_day * 86_400 + int(rng.integers(0, 86_400 - 3_600))
            ts = np.sort(start + rng.integers(0, 3_600, size=n))
            watch = rng.uniform(5.0, 20.0, size=n).round(1)
        else:
            n = WATCH_VIEWS
            ts = epoch_day * 86_400 + np.sort(rng.integers(0, 86_400 - 7_200, size=n))
            watch = np.full(n, WATCH_SECONDS)
        video = rng.choice(viewable, size=n)
        numbers = counters.event + 1 + np.arange(n)
        counters.event += n
        counters.session += 1
        parts.append(pd.DataFrame({
            "event_id": format_ids("event", numbers),
            "user_id": format_ids("user", np.full(n, user + 1)),
            "event_type": "view",
            "ts": ts.astype(events["ts"].dtype if len(events) else np.int64),
            "video_id": format_ids("video", video + 1),
            "creator_id": format_ids("user", cat.creator[video] + 1),
            "session_id": format_ids("session", np.full(n, counters.session)),
            "watch_time_s": watch,
            "device": schemas.DEVICES[pop.device[user]],
            "app_version": pop.app_version[user],
        }))
    return (pd.concat(parts, ignore_index=True).sort_values("ts", kind="stable")
            .reset_index(drop=True))


def write_truth(truth_dir: str, bots: Bots, pop: Population) -> None:
    text = io.StringIO()
    bots.truth(pop).to_csv(text, index=False)
    files.write_text(files.join(truth_dir, TRUTH_FILE), text.getvalue())


def read_truth(truth_dir: str) -> pd.DataFrame:
    """The planted anomalies (user_id, kind, date); empty when the generator planted none."""
    path = files.join(truth_dir, TRUTH_FILE)
    if not files.exists(path):
        return pd.DataFrame({"user_id": [], "kind": [], "date": []})
    return pd.read_csv(io.StringIO(files.read_text(path)), dtype=str)
