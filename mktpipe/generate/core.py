"""``generate``: the synthetic landing zone plus its truth side folder."""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import logging
import time
from pathlib import Path

import numpy as np
import pandas as pd

from mktpipe import schemas
from mktpipe.generate import bots
from mktpipe.generate.activity import active_users, draw_views
from mktpipe.generate.fmt import date_of, epoch_day, format_ids
from mktpipe.generate.graph import FollowEdges, FollowLedger, initial_follows
from mktpipe.generate.interactions import Counters, build_day
from mktpipe.generate.population import Population, build_population, truth_frame, users_frame
from mktpipe.generate.videos import Catalogue, build_catalogue, videos_frame
from mktpipe.generate.writer import LandingWriter
from mktpipe.storage import files

log = logging.getLogger(__name__)

MAX_USERS = 9_999_999  # user ids have seven digits
REASONS = (*schemas.REASON_CODES, schemas.DUPLICATE)


@dataclasses.dataclass
class GenerateSummary:
    """What ``generate`` wrote: clean rows and injected bad records per source and date."""

    out: str
    truth_dir: str
    users: int
    days: int
    seed: int
    start_date: str
    dirty_rate: float
    rows: dict[str, dict[str, int]]  # clean rows per source per date
    injected: dict[str, dict[str, dict[str, int]]]  # injected lines per source, date, reason
    total_rows: int
    total_injected: int
    bytes_written: int
    elapsed_s: float

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def injected_by_source(self) -> dict[str, int]:
        return {s: sum(sum(r.values()) for r in d.values()) for s, d in self.injected.items()}


def generate(out: str | Path, users: int, days: int, seed: int, start_date: dt.date | str,
             dirty_rate: float = 0.0, truth_dir: str | Path | None = None) -> GenerateSummary:
    """Write a synthetic TikTok engagement landing zone and its truth.

    Writes ``<out>/<source>/date=YYYY-MM-DD/part-00000.<json|csv>`` for every source in
    ``schemas.SOURCES`` and each of ``days`` dates from ``start_date``, with about
    ``dirty_rate`` x rows extra bad records per file; and ``truth_dir`` (default
    ``<out>/_truth``): ``users.parquet`` (latent user truth), ``anomalies.csv`` (the planted
    bot-like users: ``mktpipe.generate.bots``), ``dirty.json`` (injected counts per
    source, date and reason code) and ``summary.json``. Byte-identical for the same arguments.
    ``out`` and ``truth_dir`` may be URIs (``s3://...``): every file goes through the file
    door (mktpipe.storage.files).
    """
    start = _check_args(users, days, seed, start_date, dirty_rate)
    began = time.perf_counter()
    out = files.normalize(out)
    truth = files.normalize(truth_dir) if truth_dir is not None else files.join(out, "_truth")
    log.info("generate: out=%s users=%d days=%d seed=%d start=%s dirty_rate=%s", out, users,
             days, seed, start, dirty_rate)
    streams = [np.random.Generator(np.random.PCG64(s))
               for s in np.random.SeedSequence(seed).spawn(6)]  # the 6th: planted bots
    pop = build_population(users, epoch_day(start), days, streams[0])
    cat = build_catalogue(pop, streams[1])
    initial = initial_follows(pop, streams[2])
    log.info("population: %d users (%d creators), %d videos, %d initial follows", pop.n,
             int(pop.is_creator.sum()), cat.n, len(initial.follower))
    writer = LandingWriter(out, dirty_rate, streams[4])
    planted = bots.choose_bots(pop, streams[5])
    written = _simulate(pop, cat, initial, writer, streams[3], planted, streams[5])
    summary = GenerateSummary(
        out=str(out), truth_dir=str(truth), users=users, days=days, seed=seed,
        start_date=start.isoformat(), dirty_rate=dirty_rate, rows=writer.rows,
        injected=writer.injected,
        total_rows=sum(sum(d.values()) for d in writer.rows.values()),
        total_injected=sum(sum(sum(r.values()) for r in d.values())
                           for d in writer.injected.values()),
        bytes_written=written, elapsed_s=0.0)
    _write_truth(truth, pop, summary)
    bots.write_truth(truth, planted, pop)
    summary.elapsed_s = round(time.perf_counter() - began, 3)
    files.write_json(files.join(truth, "summary.json"), summary.to_dict())
    log.info("generate: %d rows + %d injected in %.1f s", summary.total_rows,
             summary.total_injected, summary.elapsed_s)
    return summary


def _check_args(users, days, seed, start_date, dirty_rate) -> dt.date:
    if isinstance(start_date, str):
        start_date = dt.date.fromisoformat(start_date)
    if not isinstance(start_date, dt.date):
        raise ValueError(f"start_date must be a date or YYYY-MM-DD text, got {start_date!r}")
    if not 1 <= int(users) <= MAX_USERS:
        raise ValueError(f"users must be between 1 and {MAX_USERS}, got {users}")
    if int(days) < 1:
        raise ValueError(f"days must be at least 1, got {days}")
    if int(seed) < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed}")
    if not 0.0 <= float(dirty_rate) <= 1.0:
        raise ValueError(f"dirty_rate must be between 0 and 1, got {dirty_rate}")
    return start_date


def _simulate(pop: Population, cat: Catalogue, initial: FollowEdges, writer: LandingWriter,
              rng: np.random.Generator, planted: bots.Bots,
              bot_rng: np.random.Generator) -> int:
    """The day loop: simulate, then write every source's file for the day."""
    ledger, counters, written = FollowLedger(initial), Counters(), 0
    user_land = np.maximum(pop.signup_day - pop.start_day, 0)
    for d in range(pop.days):  # a loop per day
        act = active_users(pop, d, rng)
        views = draw_views(pop, cat, act, rng)
        day = build_day(pop, cat, act, views, ledger, counters, rng)
        follows = day.follows
        if d == 0:
            follows = pd.concat([_follows_frame(initial), follows], ignore_index=True)
        frames = {
            "users": users_frame(pop, np.flatnonzero(user_land == d)),
            "videos": videos_frame(cat, np.flatnonzero(cat.land_day == d)),
            "events": bots.plant(day.events, planted, d, act.day, pop, cat, counters,
                                 bot_rng),
            "comments": day.comments,
            "follows": follows,
            "orders": day.orders,
        }
        for source in schemas.SOURCES:  # a loop per source
            written += writer.write(source, act.day, frames[source], last=d == pop.days - 1)
        log.info("%s: %d active users, %d events, %d comments, %d follows, %d orders",
                 date_of(act.day), len(act.users), len(day.events), len(day.comments),
                 len(follows), len(day.orders))
    return written


def _follows_frame(edges: FollowEdges) -> pd.DataFrame:
    return pd.DataFrame({
        "follower_id": format_ids("user", edges.follower + 1),
        "followee_id": format_ids("user", edges.followee + 1),
        "followed_at": edges.followed_at,
    })


def _write_truth(truth: str, pop: Population, summary: GenerateSummary) -> None:
    """users.parquet and dirty.json (zeros included for every reason code)."""
    parquet = io.BytesIO()
    truth_frame(pop).to_parquet(parquet, index=False)
    files.write_bytes(files.join(truth, "users.parquet"), parquet.getvalue())
    counts = {
        source: {date: {r: by_reason.get(r, 0) for r in REASONS}
                 for date, by_reason in dates.items()}
        for source, dates in summary.injected.items()
    }
    totals = {source: {r: sum(c[r] for c in dates.values()) for r in REASONS}
              for source, dates in counts.items()}
    doc = {"seed": summary.seed, "dirty_rate": summary.dirty_rate,
           "total": summary.total_injected, "totals": totals, "counts": counts}
    files.write_json(files.join(truth, "dirty.json"), doc)
