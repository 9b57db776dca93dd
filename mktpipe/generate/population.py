"""The synthetic user base: attributes that land in users.csv and the latent truth behind them.

Users are numbered in signup order (index i has id ``u{i+1:07d}``). Days are epoch day numbers;
``NEVER`` stands for "does not churn".
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from mktpipe import schemas
from mktpipe.generate import params as P
from mktpipe.generate.fmt import format_ids

NEVER = np.int64(2**40)


@dataclass(frozen=True)
class Population:
    """Per-user arrays (length n), indexed by user number."""

    start_day: int
    days: int
    signup_day: np.ndarray
    country: np.ndarray  # index into params.COUNTRIES
    language: np.ndarray  # index into schemas.LANGUAGES
    age_band: np.ndarray
    gender: np.ndarray
    device: np.ndarray
    channel: np.ndarray
    app_version: np.ndarray  # object array of str
    is_creator: np.ndarray
    community: np.ndarray  # index into params.COMMUNITIES
    attractiveness: np.ndarray  # 0 for non-creators, Pareto for creators
    engagement: np.ndarray
    churn_hazard: np.ndarray  # daily hazard
    churn_day: np.ndarray  # first day with no activity (NEVER if none)
    purchase_propensity: np.ndarray  # expected purchases per active day
    grumpiness: np.ndarray  # base share of negative comments

    @property
    def n(self) -> int:
        return len(self.signup_day)

    @property
    def comment_language(self) -> np.ndarray:
        """0 = English, 1 = Spanish: pt speakers comment in English."""
        return (self.language == schemas.LANGUAGES.index("es")).astype(np.int8)


def build_population(n: int, start_day: int, days: int, rng: np.random.Generator) -> Population:
    """Draw ``n`` users: signups, demographics, communities, creators and latent behaviour."""
    signup = _signup_days(n, start_day, days, rng)
    country = rng.choice(len(P.COUNTRIES), size=n, p=_norm(P.COUNTRY_WEIGHTS))
    language = _pick_rows(P.COUNTRY_LANGUAGE_WEIGHTS[country], rng)
    device = rng.choice(len(schemas.DEVICES), size=n, p=_norm(P.DEVICE_WEIGHTS))
    community = rng.choice(len(P.COMMUNITIES), size=n, p=_norm(P.COMMUNITY_WEIGHTS))
    is_creator = _pick_creators(community, rng)
    attractiveness = np.where(
        is_creator, (1.0 - rng.random(n)) ** (-1.0 / P.CREATOR_PARETO_ALPHA), 0.0
    )
    engagement = rng.lognormal(*P.ENGAGEMENT_LOGNORMAL, size=n) * np.where(is_creator, 1.5, 1.0)
    hazard, churn = _churn(signup, engagement, is_creator, start_day, rng)
    shape, scale = P.PURCHASE_GAMMA
    return Population(
        start_day=start_day,
        days=days,
        signup_day=signup,
        country=country,
        language=language,
        age_band=rng.choice(len(schemas.AGE_BANDS), size=n, p=_norm(P.AGE_BAND_WEIGHTS)),
        gender=rng.choice(len(schemas.GENDERS), size=n, p=_norm(P.GENDER_WEIGHTS)),
        device=device,
        channel=rng.choice(
            len(schemas.ACQUISITION_CHANNELS), size=n, p=_norm(P.CHANNEL_WEIGHTS)
        ),
        app_version=_app_versions(device, rng),
        is_creator=is_creator,
        community=community,
        attractiveness=attractiveness,
        engagement=engagement,
        churn_hazard=hazard,
        churn_day=churn,
        purchase_propensity=np.minimum(rng.gamma(shape, scale, size=n), 1.5),
        grumpiness=rng.beta(*P.GRUMPINESS_BETA, size=n),
    )


def _norm(weights: np.ndarray) -> np.ndarray:
    return weights / weights.sum()


def _pick_rows(prob_rows: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One categorical draw per row of a probability matrix."""
    cdf = np.cumsum(prob_rows, axis=1)
    u = rng.random(len(prob_rows))[:, None] * cdf[:, -1:]
    return np.minimum((u >= cdf).sum(axis=1), prob_rows.shape[1] - 1)


def _signup_days(n: int, start_day: int, days: int, rng: np.random.Generator) -> np.ndarray:
    """Sorted signup days: most users before the window (recent ones likelier), some during."""
    new_share = P.NEW_USER_DAILY_RATE * days / (1.0 + P.NEW_USER_DAILY_RATE * days)
    n_new = int(round(n * new_share))
    back = 1 + np.floor((P.HISTORY_DAYS - 1) * rng.random(n - n_new) ** 1.3).astype(np.int64)
    new = rng.integers(0, days, size=n_new)
    return np.sort(np.concatenate([start_day - back, start_day + new])).astype(np.int64)


def _pick_creators(community: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A few % of users, at least MIN_CREATORS_PER_COMMUNITY in every community."""
    n = len(community)
    is_creator = np.zeros(n, dtype=bool)
    ranks = rng.random(n)
    for c in range(len(P.COMMUNITIES)):  # a loop per community, not per user
        members = np.flatnonzero(community == c)
        k = min(len(members), max(P.MIN_CREATORS_PER_COMMUNITY,
                                  int(round(P.CREATOR_SHARE * len(members)))))
        is_creator[members[np.argsort(ranks[members])[:k]]] = True
    return is_creator


def _churn(signup, engagement, is_creator, start_day, rng):
    """Daily hazard and churn day: dormant users churned before start, loyal ones never."""
    n = len(signup)
    hazard = (
        P.CHURN_BASE_HAZARD
        * np.exp(rng.normal(0.0, P.CHURN_HAZARD_SIGMA, size=n))
        * engagement**P.CHURN_ENGAGEMENT_EXPONENT
    )
    is_new = signup >= start_day
    hazard = np.where(is_new, hazard * P.NEW_USER_HAZARD_FACTOR, hazard)
    loyal = rng.random(n) < P.LOYAL_SHARE
    hazard = np.where(loyal, 0.0, np.minimum(hazard, 0.5))
    lifetime = np.floor(rng.exponential(1.0, size=n) / np.maximum(hazard, 1e-12))
    origin = np.maximum(signup, start_day)
    churn = np.where(loyal, NEVER, origin + 1 + np.minimum(lifetime, 10**6).astype(np.int64))
    tenure = start_day - signup
    dormant = (~is_creator) & (tenure > 7) & (rng.random(n) < P.DORMANT_SHARE)
    past = signup + 1 + np.floor(rng.random(n) * np.maximum(tenure - 1, 1)).astype(np.int64)
    churn = np.where(dormant, past, churn).astype(np.int64)
    hazard = np.where(dormant & loyal, P.CHURN_BASE_HAZARD, hazard)
    return hazard, churn


def _app_versions(device: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    out = np.empty(len(device), dtype=object)
    for i, name in enumerate(schemas.DEVICES):  # a loop per device kind
        mask = device == i
        versions = np.array(P.APP_VERSIONS[name], dtype=object)
        out[mask] = versions[rng.integers(0, len(versions), size=mask.sum())]
    return out


def users_frame(pop: Population, index: np.ndarray) -> pd.DataFrame:
    """The users.csv rows (RAW_FIELDS columns; signup_date as epoch days) of ``index``."""
    return pd.DataFrame(
        {
            "user_id": format_ids("user", index + 1),
            "signup_date": pop.signup_day[index],
            "country": np.array(P.COUNTRIES, dtype=object)[pop.country[index]],
            "language": np.array(schemas.LANGUAGES, dtype=object)[pop.language[index]],
            "age_band": np.array(schemas.AGE_BANDS, dtype=object)[pop.age_band[index]],
            "gender": np.array(schemas.GENDERS, dtype=object)[pop.gender[index]],
            "device": np.array(schemas.DEVICES, dtype=object)[pop.device[index]],
            "acquisition_channel": np.array(schemas.ACQUISITION_CHANNELS, dtype=object)[
                pop.channel[index]
            ],
            "is_creator": pop.is_creator[index],
        }
    )


def truth_frame(pop: Population) -> pd.DataFrame:
    """The latent truth per user, for _truth/users.parquet."""
    index = np.arange(pop.n)
    churn = np.minimum(pop.churn_day, 10**6).astype("datetime64[D]").astype(object)
    churn[pop.churn_day >= NEVER] = None
    return pd.DataFrame(
        {
            "user_id": format_ids("user", index + 1),
            "community": np.array(P.COMMUNITIES, dtype=object)[pop.community],
            "engagement_level": pop.engagement,
            "churn_hazard": pop.churn_hazard,
            "churn_date": churn,
            "purchase_propensity": pop.purchase_propensity,
            "is_creator": pop.is_creator,
            "language": np.array(schemas.LANGUAGES, dtype=object)[pop.language],
            "signup_date": pop.signup_day.astype("datetime64[D]").astype(object),
            "attractiveness": pop.attractiveness,
            "grumpiness": pop.grumpiness,
        }
    )
