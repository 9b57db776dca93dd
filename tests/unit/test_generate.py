"""Tests of the synthetic landing-zone generator (no Spark: files are read with json/csv/pandas).

Three small runs are shared by the module: ``dirty`` (300 users x 10 days, 5 % bad records),
``clean`` (the same seed without bad records) and ``stats`` (3000 users x 28 days, clean) for the
statistical shape. ``reference_reason`` is an independent re-statement of ingest's rules, used to
check that every injected record has exactly the defect dirty.json says.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import random
import re
from collections import Counter
from pathlib import Path

import igraph
import numpy as np
import pandas as pd
import pytest

from mktpipe import schemas
from mktpipe.generate import GenerateSummary, generate
from mktpipe.generate.text import NEGATIVE, PHRASES

START = dt.date(2024, 3, 1)  # a Friday
SMALL = dict(users=300, days=10, seed=11, start_date=START)
ISO_TS = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
ID_PATTERNS = {
    "user_id": r"^u\d{7}$", "follower_id": r"^u\d{7}$", "followee_id": r"^u\d{7}$",
    "creator_id": r"^u\d{7}$", "video_id": r"^v\d{8}$", "source_video_id": r"^v\d{8}$",
    "event_id": r"^e\d{10}$", "comment_id": r"^cm\d{9}$", "order_id": r"^o\d{9}$",
    "session_id": r"^s\d{10}$",
}
ENUMS = {
    ("events", "event_type"): schemas.EVENT_TYPES,
    ("orders", "currency"): schemas.CURRENCIES,
    ("orders", "category"): schemas.CATEGORIES,
    ("videos", "category"): schemas.CATEGORIES,
    ("users", "device"): schemas.DEVICES,
    ("users", "gender"): schemas.GENDERS,
    ("users", "age_band"): schemas.AGE_BANDS,
    ("users", "language"): schemas.LANGUAGES,
    ("users", "acquisition_channel"): schemas.ACQUISITION_CHANNELS,
}
POSITIVE_FIELDS = {("videos", "duration_s"), ("orders", "amount")}
NON_NEGATIVE_FIELDS = {("events", "watch_time_s")}


# --- fixtures --------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def dirty(tmp_path_factory) -> tuple[Path, GenerateSummary]:
    out = tmp_path_factory.mktemp("dirty")
    return out, generate(out, dirty_rate=0.05, **SMALL)


@pytest.fixture(scope="module")
def clean(tmp_path_factory) -> tuple[Path, GenerateSummary]:
    out = tmp_path_factory.mktemp("clean")
    return out, generate(out, **SMALL)


@pytest.fixture(scope="module")
def stats(tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("stats")
    generate(out, users=3000, days=28, seed=5, start_date=START)
    tables = {source: read_clean(out, source) for source in schemas.SOURCES}
    tables["truth"] = pd.read_parquet(out / "_truth" / "users.parquet")
    tables["anomalies"] = pd.read_csv(out / "_truth" / "anomalies.csv", dtype=str)
    return tables


# --- helpers ---------------------------------------------------------------------------------

def field_names(source: str) -> list[str]:
    return [name for name, _ in schemas.RAW_FIELDS[source]]


def part_files(root: Path, source: str) -> list[Path]:
    return sorted((root / source).glob("date=*/part-00000.*"))


def file_date(path: Path) -> dt.date:
    return dt.date.fromisoformat(path.parent.name.removeprefix("date="))


def raw_lines(path: Path) -> list[bytes]:
    lines = path.read_bytes().split(b"\n")
    assert lines[-1] == b"", f"{path} must end with a newline"
    lines = lines[:-1]
    return lines[1:] if path.suffix == ".csv" else lines


def parse_record(source: str, text: str) -> dict | None:
    """The record as a dict of raw values, or None if the line is malformed."""
    if source in schemas.CSV_SOURCES:
        values = next(csv.reader([text]))
        names = field_names(source)
        return dict(zip(names, values)) if len(values) == len(names) else None
    try:
        record = json.loads(text)
    except json.JSONDecodeError:
        return None
    return record if isinstance(record, dict) else None


def read_clean(root: Path, source: str) -> pd.DataFrame:
    """Every record of a clean run, with the landing date in column ``_date``."""
    rows = []
    for path in part_files(root, source):
        for line in raw_lines(path):
            record = parse_record(source, line.decode("utf-8"))
            record["_date"] = file_date(path)
            rows.append(record)
    return pd.DataFrame(rows, columns=[*field_names(source), "_date"])


def parse_ts(value) -> dt.datetime | None:
    if not isinstance(value, str) or not ISO_TS.match(value):
        return None
    try:
        return dt.datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ")
    except ValueError:
        return None


def parse_date(value) -> dt.date | None:
    if not isinstance(value, str) or not ISO_DATE.match(value):
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        return None


def type_ok(kind: str, value, csv_source: bool) -> bool:
    if kind == "timestamp":
        return parse_ts(value) is not None
    if kind == "date":
        return parse_date(value) is not None
    if kind == "boolean":
        return value in ("true", "false") if csv_source else isinstance(value, bool)
    if kind == "double":
        if csv_source:
            return re.fullmatch(r"-?\d+(\.\d+)?", value) is not None
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind == "array<string>":
        return isinstance(value, list) and all(isinstance(v, str) for v in value)
    return isinstance(value, str)


def reference_reason(source: str, raw: bytes, day: dt.date, seen: set) -> str | None:
    """Ingest's rules in precedence order; None for a good, new record."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return schemas.REASON_BAD_ENCODING
    record = parse_record(source, text)
    if record is None:
        return schemas.REASON_MALFORMED
    if any(record.get(f) in (None, "") for f in schemas.REQUIRED_FIELDS[source]):
        return schemas.REASON_MISSING_REQUIRED
    csv_source = source in schemas.CSV_SOURCES
    for name, kind in schemas.RAW_FIELDS[source]:
        value = record.get(name)
        if value not in (None, "") and not type_ok(kind, value, csv_source):
            return schemas.REASON_WRONG_TYPE
    for (src, name), allowed in ENUMS.items():
        if src == source and record.get(name) not in (None, "") and record[name] not in allowed:
            return schemas.REASON_UNKNOWN_ENUM
    for src, name in POSITIVE_FIELDS | NON_NEGATIVE_FIELDS:
        value = record.get(name) if src == source else None
        if value not in (None, "") and float(value) < (0 if (src, name) in
                                                       NON_NEGATIVE_FIELDS else 1e-12):
            return schemas.REASON_OUT_OF_RANGE
    when = record[schemas.EVENT_TIME[source]]
    event_day = parse_date(when) or parse_ts(when).date()
    if event_day >= day + dt.timedelta(days=2):
        return schemas.REASON_FUTURE_TIMESTAMP
    key = tuple(record[k] for k in schemas.NATURAL_KEYS[source])
    if key in seen:
        return schemas.DUPLICATE
    seen.add(key)
    return None


# --- determinism and layout ------------------------------------------------------------------

def landing_bytes(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for source in schemas.SOURCES
            for p in part_files(root, source)}


def test_same_seed_gives_identical_bytes(dirty, tmp_path):
    root, _ = dirty
    generate(tmp_path, dirty_rate=0.05, **SMALL)
    assert landing_bytes(tmp_path) == landing_bytes(root)
    for name in ("users.parquet", "dirty.json", "anomalies.csv"):
        assert (tmp_path / "_truth" / name).read_bytes() == (root / "_truth" / name).read_bytes()


def test_different_seed_gives_different_data(dirty, tmp_path):
    root, _ = dirty
    generate(tmp_path, dirty_rate=0.05, **{**SMALL, "seed": 12})
    ours, theirs = landing_bytes(tmp_path), landing_bytes(root)
    assert ours.keys() == theirs.keys()
    assert sum(ours[k] != theirs[k] for k in ours) >= len(ours) - 2


def test_layout_one_file_per_source_and_date(clean):
    root, summary = clean
    dates = [(START + dt.timedelta(days=i)).isoformat() for i in range(SMALL["days"])]
    for source in schemas.SOURCES:
        ext = "csv" if source in schemas.CSV_SOURCES else "json"
        files = part_files(root, source)
        assert [p.parent.name for p in files] == [f"date={d}" for d in dates]
        assert all(p.suffix == f".{ext}" for p in files)
        assert list(summary.rows[source]) == dates
        assert [len(raw_lines(p)) for p in files] == [summary.rows[source][d] for d in dates]
    assert sorted(p.name for p in (root / "_truth").iterdir()) == [
        "anomalies.csv", "dirty.json", "summary.json", "users.parquet"]


def test_csv_header_and_json_keys_follow_raw_fields(clean):
    root, _ = clean
    for source in schemas.SOURCES:
        for path in part_files(root, source):
            if source in schemas.CSV_SOURCES:
                header = path.read_bytes().split(b"\n")[0].decode()
                assert header.split(",") == field_names(source)
            for line in raw_lines(path):
                record = parse_record(source, line.decode("utf-8"))
                assert list(record) == field_names(source), (path, line)


def test_values_have_their_formats(clean):
    root, _ = clean
    for source in schemas.SOURCES:
        df = read_clean(root, source)
        assert len(df) > 0, source
        for name, kind in schemas.RAW_FIELDS[source]:
            values = df[name].dropna()
            if name in ID_PATTERNS:
                assert values.str.match(ID_PATTERNS[name]).all(), (source, name)
            assert all(type_ok(kind, v, source in schemas.CSV_SOURCES) for v in values), \
                (source, name)
        for (src, name), allowed in ENUMS.items():
            if src == source:
                assert set(df[name]) <= set(allowed), (source, name)
    events = read_clean(root, "events")
    is_view = events["event_type"] == "view"
    assert events.loc[is_view, "watch_time_s"].notna().all()
    assert events.loc[~is_view, "watch_time_s"].isna().all()
    assert (events.loc[is_view, "watch_time_s"] >= 0).all()


# --- referential integrity of clean data ------------------------------------------------------

def landed_by(df: pd.DataFrame, key: str) -> dict[str, dt.date]:
    return df.groupby(key)["_date"].min().to_dict()


def test_ids_refer_to_rows_landed_on_or_before(clean):
    root, _ = clean
    t = {source: read_clean(root, source) for source in schemas.SOURCES}
    user_day, video_day = landed_by(t["users"], "user_id"), landed_by(t["videos"], "video_id")
    checks = [("videos", "creator_id", user_day), ("events", "user_id", user_day),
              ("events", "creator_id", user_day), ("events", "video_id", video_day),
              ("comments", "user_id", user_day), ("comments", "video_id", video_day),
              ("follows", "follower_id", user_day), ("follows", "followee_id", user_day),
              ("orders", "user_id", user_day), ("orders", "source_video_id", video_day)]
    for source, column, landed in checks:
        df = t[source].dropna(subset=[column])
        first = df[column].map(landed)
        assert first.notna().all(), f"{source}.{column} refers to ids that never land"
        assert (first <= df["_date"]).all(), f"{source}.{column} refers to later rows"
    creators = set(t["users"].loc[t["users"]["is_creator"] == "true", "user_id"])
    assert set(t["videos"]["creator_id"]) <= creators
    video_creator = t["videos"].set_index("video_id")["creator_id"]
    views = t["events"].dropna(subset=["video_id"])
    assert (views["video_id"].map(video_creator) == views["creator_id"]).all()


def test_natural_keys_unique_and_event_times_on_their_date(clean):
    root, _ = clean
    for source in schemas.SOURCES:
        df = read_clean(root, source)
        assert not df.duplicated(list(schemas.NATURAL_KEYS[source])).any(), source
        when = df[schemas.EVENT_TIME[source]].str[:10].map(dt.date.fromisoformat)
        if source in ("events", "comments", "orders"):
            assert (when == df["_date"]).all(), source
        else:  # users, videos, follows: history lands on the first date
            assert (when <= df["_date"]).all() and ((when == df["_date"]) | (
                df["_date"] == START)).all(), source
    follows = read_clean(root, "follows")
    assert (follows["follower_id"] != follows["followee_id"]).all()


def test_dependent_rows_match_their_events(clean):
    root, _ = clean
    events, comments = read_clean(root, "events"), read_clean(root, "comments")
    follows, orders = read_clean(root, "follows"), read_clean(root, "orders")
    users = read_clean(root, "users").set_index("user_id")

    def keys(df, cols):
        return Counter(map(tuple, df[cols].to_numpy().tolist()))

    of = events[events["event_type"] == "comment"]
    assert keys(of, ["user_id", "video_id", "ts"]) == keys(comments, ["user_id", "video_id", "ts"])
    of = events[events["event_type"] == "follow"]
    window = follows[follows["followed_at"] >= START.isoformat()]
    assert keys(of, ["user_id", "creator_id", "ts"]) == keys(
        window, ["follower_id", "followee_id", "followed_at"])
    of = events[events["event_type"] == "purchase"]
    assert keys(of, ["user_id", "video_id", "ts"]) == keys(
        orders, ["user_id", "source_video_id", "ts"])
    assert (orders["amount"] > 0).all()
    currency = dict(zip(("US", "GB", "MX", "CO", "AR", "ES", "BR"),
                        ("USD", "GBP", "MXN", "COP", "ARS", "EUR", "BRL")))
    assert (orders["user_id"].map(users["country"]).map(currency) == orders["currency"]).all()
    device = events["user_id"].map(users["device"])
    assert (device == events["device"]).all()
    assert events.groupby("session_id")["user_id"].nunique().max() == 1


def test_no_activity_before_signup_or_after_churn(clean):
    root, _ = clean
    truth = pd.read_parquet(root / "_truth" / "users.parquet").set_index("user_id")
    users = read_clean(root, "users").set_index("user_id")
    events = read_clean(root, "events")
    day = events["_date"]
    signup = events["user_id"].map(users["signup_date"]).map(dt.date.fromisoformat)
    assert (signup <= day).all()
    churn = events["user_id"].map(truth["churn_date"])
    assert (churn.isna() | (day < churn)).all()


def test_truth_users_parquet(clean):
    root, summary = clean
    truth = pd.read_parquet(root / "_truth" / "users.parquet")
    assert len(truth) == SMALL["users"] and truth["user_id"].is_unique
    for column in ("user_id", "community", "engagement_level", "churn_hazard", "churn_date",
                   "purchase_propensity", "is_creator", "language"):
        assert column in truth.columns
    assert set(truth["community"]) <= set(schemas.CATEGORIES)
    assert set(truth["language"]) <= set(schemas.LANGUAGES)
    assert (truth["engagement_level"] > 0).all() and (truth["churn_hazard"] >= 0).all()
    assert truth["churn_date"].isna().any() and truth["churn_date"].notna().any()
    users = read_clean(root, "users")
    flags = dict(zip(users["user_id"], users["is_creator"] == "true"))
    assert (truth["user_id"].map(flags) == truth["is_creator"]).all()
    saved = json.loads((root / "_truth" / "summary.json").read_text())
    assert saved["total_rows"] == summary.total_rows and saved["total_injected"] == 0


# --- statistical shape -----------------------------------------------------------------------

def test_follower_in_degree_is_heavy_tailed(stats):
    truth = stats["truth"]
    degree = stats["follows"].groupby("followee_id").size()
    assert degree.max() / degree.median() > 100
    creators = degree.reindex(truth.loc[truth["is_creator"], "user_id"]).fillna(0)
    assert creators.max() / creators.median() > 5
    top = np.sort(creators.to_numpy())[::-1]
    assert top[: len(top) // 10].sum() / top.sum() > 0.25  # top 10 % of creators hold > 25 %
    tail = top[: len(top) // 4]  # Hill estimate of the tail index: a power law, not a cliff
    alpha = 1.0 / np.mean(np.log(tail[:-1] / tail[-1]))
    assert 0.5 < alpha < 3.5


def nmi(a, b) -> float:
    return igraph.compare_communities(list(a), list(b), method="nmi")


def test_planted_communities_are_recoverable_by_louvain(stats):
    follows = stats["follows"]
    graph = igraph.Graph.TupleList(
        follows[["follower_id", "followee_id"]].itertuples(index=False), directed=False)
    graph.simplify()
    random.seed(0)  # igraph draws from Python's random module
    found = graph.community_multilevel().membership
    community = stats["truth"].set_index("user_id")["community"]
    planted = pd.factorize(community.reindex(graph.vs["name"]))[0]
    assert nmi(planted, found) > 0.5


def days_to_churn(df: pd.DataFrame, truth: pd.DataFrame) -> pd.Series:
    """Days from each row's landing date to its user's churn date (NaN if never)."""
    churn = pd.to_datetime(df["user_id"].map(truth.set_index("user_id")["churn_date"]))
    return (churn - pd.to_datetime(df["_date"])).dt.days


def test_thirty_day_churn_rate_is_plausible(stats):
    truth = stats["truth"]
    signup, churn = pd.to_datetime(truth["signup_date"]), pd.to_datetime(truth["churn_date"])
    start = pd.Timestamp(START)
    alive = (signup < start) & (churn.isna() | (churn > start))
    churned = churn[alive] < start + pd.Timedelta(days=30)
    assert 0.10 <= churned.mean() <= 0.40


def test_churn_is_announced_by_activity_and_sentiment(stats):
    truth, events, comments = stats["truth"], stats["events"], stats["comments"]
    per_user_day = events.assign(left=days_to_churn(events, truth)).groupby(
        ["user_id", "_date"]).agg(n=("event_id", "size"), left=("left", "first"))
    near = per_user_day.loc[per_user_day["left"].between(1, 7), "n"].mean()
    far = per_user_day.loc[per_user_day["left"].isna() | (per_user_day["left"] > 30), "n"].mean()
    assert near < 0.9 * far
    negative = comments["text"].map(comment_polarity) == NEGATIVE
    left = days_to_churn(comments, truth)
    assert negative[left.between(1, 10)].mean() > negative[left.isna() | (left > 30)].mean() + 0.1


def comment_polarity(text: str) -> int:
    """The polarity of the longest template phrase the comment contains."""
    hits = [(len(p), pol) for (lang, pol), phrases in PHRASES.items() for p in phrases
            if p in text]
    return max(hits)[1]


def test_weekends_and_evenings_are_busier(stats):
    events = stats["events"]
    per_day = events.groupby("_date").size()
    weekend = per_day[[d.weekday() >= 5 for d in per_day.index]].mean()
    weekday = per_day[[d.weekday() < 4 for d in per_day.index]].mean()
    assert weekend > 1.1 * weekday
    hour = events["ts"].str[11:13].astype(int)
    assert hour.between(18, 22).mean() / 5 > 2 * hour.between(2, 6).mean() / 5


def test_activity_volume_and_funnel(stats):
    events = stats["events"]
    per_active_day = events.groupby(["user_id", "_date"]).size()
    assert 8 <= per_active_day.mean() <= 60
    counts = events["event_type"].value_counts()
    assert counts["view"] > counts["like"] > counts["comment"]
    assert counts["product_click"] > counts["add_to_cart"] > counts["purchase"] > 0
    orders = stats["orders"].groupby("user_id").size()
    assert (orders > 1).sum() >= 5  # repeat buyers
    propensity = stats["truth"].set_index("user_id")["purchase_propensity"]
    buyers = propensity.index.isin(orders.index)
    assert propensity[buyers].median() > 2 * propensity[~buyers].median()


def test_comments_in_both_languages_with_negations(stats):
    texts = stats["comments"]["text"]
    english = {p for (lang, _), ps in PHRASES.items() if lang == 0 for p in ps}
    spanish = {p for (lang, _), ps in PHRASES.items() if lang == 1 for p in ps}
    assert texts.map(lambda t: any(p in t for p in english)).mean() > 0.2
    assert texts.map(lambda t: any(p in t for p in spanish)).mean() > 0.2
    for negation in ("not good", "not bad at all", "no me gustó", "no está mal"):
        assert texts.str.contains(negation, regex=False).any(), negation


# --- bad records -----------------------------------------------------------------------------

def test_injected_records_match_dirty_json_and_have_their_defect(dirty):
    root, summary = dirty
    expected = json.loads((root / "_truth" / "dirty.json").read_text())["counts"]
    for source in schemas.SOURCES:
        seen: set = set()
        for path in part_files(root, source):
            day = file_date(path)
            found = Counter(reference_reason(source, raw, day, seen) for raw in raw_lines(path))
            found.pop(None, None)
            want = {r: n for r, n in expected[source][day.isoformat()].items() if n}
            assert dict(found) == want, (source, day)
    assert summary.total_injected > 0.8 * 0.05 * summary.total_rows


def test_every_kind_of_defect_is_injected(dirty):
    root, _ = dirty
    totals = json.loads((root / "_truth" / "dirty.json").read_text())["totals"]
    for reason in (*schemas.REASON_CODES, schemas.DUPLICATE):
        if reason != schemas.REASON_UNKNOWN_USER:
            assert totals["events"][reason] > 0, reason
    assert totals["comments"][schemas.REASON_UNKNOWN_ENUM] == 0  # comments have no enum


def test_bad_records_are_extra_and_shuffled_in(dirty, clean):
    dirty_root, dirty_summary = dirty
    clean_root, _ = clean
    for source in schemas.SOURCES:
        for ours, theirs in zip(part_files(dirty_root, source), part_files(clean_root, source)):
            lines, good = raw_lines(ours), raw_lines(theirs)
            assert not Counter(good) - Counter(lines), f"{ours} lost clean lines"
            injected = sum(dirty_summary.injected[source][file_date(ours).isoformat()].values())
            assert len(lines) == len(good) + injected
    events = raw_lines(part_files(dirty_root, "events")[3])
    good = set(raw_lines(part_files(clean_root, "events")[3]))
    positions = [i for i, line in enumerate(events) if line not in good]
    assert positions and min(positions) < len(events) / 2


def test_rejects_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="users"):
        generate(tmp_path, users=0, days=1, seed=1, start_date=START)
    with pytest.raises(ValueError, match="dirty_rate"):
        generate(tmp_path, users=10, days=1, seed=1, start_date=START, dirty_rate=2.0)


def test_planted_bots_are_labelled_and_in_the_events(stats):
    """About 0.5 % of the users are bots with a label (kind, date) in _truth/anomalies.csv, and
    the landed events show it: 400 short views within an hour, or over 20 hours of watch time
    in a day made of views each valid on its own (ingest's 3-hour limit per view)."""
    planted = stats["anomalies"]
    assert len(planted) == 15 and planted["user_id"].is_unique
    assert list(planted["kind"]) == ["burst", "impossible_watch"] * 7 + ["burst"]
    events = stats["events"].assign(ts=lambda e: pd.to_datetime(e["ts"]),
                                    watch=lambda e: pd.to_numeric(e["watch_time_s"]))
    creators = set(stats["truth"].loc[stats["truth"]["is_creator"], "user_id"])
    for bot in planted.itertuples():
        day = pd.Timestamp(bot.date)
        assert START + dt.timedelta(days=7) <= day.date() < START + dt.timedelta(days=28)
        assert bot.user_id not in creators
        mine = events[(events.user_id == bot.user_id) & (events._date.astype(str) == bot.date)
                      & (events.event_type == "view")]
        if bot.kind == "burst":
            short = mine[mine.watch <= 20]
            assert len(short) >= 400
            assert (short.ts.max() - short.ts.min()) <= pd.Timedelta(hours=1)
        else:
            assert mine.watch.sum() > 20 * 3600 and mine.watch.max() <= 10_800
