"""Follow graph: popularity-weighted creator sampling with planted interest communities.

Most follows (and views) go to creators of the user's own community, chosen proportional to
attractiveness (Pareto), so in-degree is heavy-tailed and Louvain can recover the communities.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mktpipe.generate import params as P
from mktpipe.generate.fmt import day_seconds
from mktpipe.generate.population import Population


class CreatorSampler:
    """Draw creators proportional to ``weights``, either within a community or among all."""

    def __init__(self, weights: np.ndarray, community: np.ndarray, n_communities: int):
        self._global = np.flatnonzero(weights > 0)
        w = weights[self._global]
        self._global_cdf = np.cumsum(w) / w.sum() if len(w) else np.zeros(0)
        comm = community[self._global]
        order = np.lexsort((self._global, comm))
        self._members = self._global[order]
        sorted_comm, sorted_w = comm[order], w[order]
        totals = np.bincount(sorted_comm, weights=sorted_w, minlength=n_communities)
        within = np.cumsum(sorted_w) - np.concatenate([[0.0], np.cumsum(totals)])[sorted_comm]
        # monotone key: community + cumulative share within it, in (c, c + 1]
        self._keys = sorted_comm + within / totals[sorted_comm]
        last = np.zeros(len(sorted_comm), dtype=bool)
        last[:-1] = sorted_comm[1:] != sorted_comm[:-1]
        last[-1:] = True
        self._keys[last] = sorted_comm[last] + 1.0  # no rounding gap at a community's end
        self._has = totals > 0

    @property
    def empty(self) -> bool:
        return len(self._global) == 0

    def sample(self, community: np.ndarray, in_community: np.ndarray,
               rng: np.random.Generator) -> np.ndarray:
        """One creator (user index) per draw; communities with no creator fall back to all."""
        u = rng.random(len(community))
        local = in_community & self._has[community]
        out = np.empty(len(community), dtype=np.int64)
        g = np.minimum(np.searchsorted(self._global_cdf, u[~local], side="right"),
                       len(self._global) - 1)
        out[~local] = self._global[g]
        key = community[local] + np.maximum(u[local], 1e-12)
        pos = np.minimum(np.searchsorted(self._keys, key, side="left"), len(self._members) - 1)
        out[local] = self._members[pos]
        return out


def pair_keys(follower: np.ndarray, followee: np.ndarray) -> np.ndarray:
    """An int64 key per (follower, followee) pair (user indices < 2**31)."""
    return follower.astype(np.int64) << 31 | followee.astype(np.int64)


@dataclass
class FollowEdges:
    follower: np.ndarray
    followee: np.ndarray
    followed_at: np.ndarray  # epoch seconds


def initial_follows(pop: Population, rng: np.random.Generator) -> FollowEdges:
    """The follow graph of users who signed up before the window (lands on the first date)."""
    old = np.flatnonzero(pop.signup_day < pop.start_day)
    tenure = np.minimum((pop.start_day - pop.signup_day[old]) / 180.0, 1.0)
    degree = rng.poisson(
        P.FOLLOW_DEGREE_BASE
        + P.FOLLOW_DEGREE_ENGAGEMENT * pop.engagement[old] ** 0.7 * np.sqrt(tenure)
    )
    follower = np.repeat(old, degree)
    followee = _draw_followees(pop, old, follower, rng)
    keep = follower != followee
    follower, followee = follower[keep], followee[keep]
    first = first_occurrences(pair_keys(follower, followee))
    follower, followee = follower[first], followee[first]
    lo = np.maximum(pop.signup_day[follower], pop.signup_day[followee]) + 1
    hi = np.minimum(pop.start_day, pop.churn_day[follower])
    ok = hi > lo
    follower, followee, lo, hi = follower[ok], followee[ok], lo[ok], hi[ok]
    span = day_seconds(hi - lo)
    when = day_seconds(lo) + np.floor(rng.random(len(lo)) * span).astype(np.int64)
    order = np.lexsort((followee, follower, when))
    return FollowEdges(follower[order], followee[order], when[order])


def _draw_followees(pop, old, follower, rng):
    """Mix of in-community creators, in-community friends and creators of any community."""
    creators = pop.is_creator & (pop.signup_day < pop.start_day)
    sampler = CreatorSampler(np.where(creators, pop.attractiveness, 0.0), pop.community,
                             len(P.COMMUNITIES))
    kind = rng.random(len(follower))
    to_creator_in = kind < P.FOLLOW_COMMUNITY_CREATOR_SHARE
    to_friend = (~to_creator_in) & (
        kind < P.FOLLOW_COMMUNITY_CREATOR_SHARE + P.FOLLOW_COMMUNITY_FRIEND_SHARE
    )
    comm = pop.community[follower]
    followee = sampler.sample(comm, to_creator_in, rng)
    members = old[np.argsort(pop.community[old], kind="stable")]
    sizes = np.bincount(pop.community[old], minlength=len(P.COMMUNITIES))
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    pick = starts[comm] + np.floor(rng.random(len(follower)) * sizes[comm]).astype(np.int64)
    followee[to_friend] = members[pick[to_friend]]
    return followee


class FollowLedger:
    """Every (follower, followee) pair already followed, to keep follows unique."""

    def __init__(self, edges: FollowEdges):
        self._keys = sorted_unique(pair_keys(edges.follower, edges.followee))

    def __len__(self) -> int:
        return len(self._keys)

    def admit(self, follower: np.ndarray, followee: np.ndarray) -> np.ndarray:
        """Mask of candidate follows to keep (new pair, not self, first of the batch).

        The candidates must be in time order; kept pairs are recorded.
        """
        keys = pair_keys(follower, followee)
        known = np.zeros(len(keys), dtype=bool)
        if len(self._keys):
            pos = np.minimum(np.searchsorted(self._keys, keys), len(self._keys) - 1)
            known = self._keys[pos] == keys
        first = np.zeros(len(keys), dtype=bool)
        first[first_occurrences(keys)] = True
        keep = (follower != followee) & ~known & first
        new = np.sort(keys[keep])
        self._keys = np.insert(self._keys, np.searchsorted(self._keys, new), new)
        return keep


def sorted_unique(values: np.ndarray) -> np.ndarray:
    """np.unique by sorting (numpy 2.3's hash-based unique is slow on large int arrays)."""
    s = np.sort(values)
    return s[np.r_[True, s[1:] != s[:-1]]] if len(s) else s


def first_occurrences(values: np.ndarray) -> np.ndarray:
    """Indices of the first occurrence of each distinct value, in value order."""
    order = np.argsort(values, kind="stable")
    s = values[order]
    return order[np.r_[True, s[1:] != s[:-1]]] if len(s) else order
