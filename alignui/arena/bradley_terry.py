"""Bradley-Terry ratings on the Elo scale, fitted by direct maximum likelihood, with bootstrap intervals.

Owns: turning battles into counts per (pair, outcome), the maximum-likelihood fit, and the
vectorised bootstrap over those counts.

Model: P(i beats j) = 1 / (1 + 10 ** ((R_j - R_i) / 400)), i.e. R = 400 * log10(e) * theta where
theta are natural-log strengths of a logistic (Bradley-Terry) model. A tie counts as half a win for
each side (it enters the likelihood as 0.5 of a win for i and 0.5 for j, as in Chatbot Arena).

Anchoring (mean-free): ratings are only defined up to a common shift, so every fit (the point fit and
each bootstrap round) is shifted to mean 0 over the models that played: a rating says how many Elo
points a model sits above (+) or below (-) the average model. A weak ridge prior (`l2`, default 1e-3
on theta, the same as scikit-learn's LogisticRegression with C = 1 / l2) keeps ratings finite
when a model won or lost every battle; its optimum is already mean-free, and beyond a few dozen
battles its effect is far below the bootstrap interval.

Invariants: the point fit is scipy's exact-Hessian trust-region minimiser on the aggregated counts;
bootstrap rounds resample battles by a multinomial draw over the counts (the same distribution as
resampling the battle rows) and are fitted together by one batched Newton iteration (same objective,
checked against scipy in the tests).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.optimize import minimize
from scipy.special import expit

#: Elo points per unit of natural-log strength: 400 * log10(e).
ELO_PER_NAT = 400.0 / math.log(10.0)
DEFAULT_L2 = 1e-3


@dataclass(frozen=True)
class PairCounts:
    """Battles aggregated per unordered pair (i < j by model index): wins of i, wins of j, ties."""

    models: tuple[str, ...]
    i: np.ndarray
    j: np.ndarray
    wins_i: np.ndarray
    wins_j: np.ndarray
    ties: np.ndarray

    @property
    def n(self) -> np.ndarray:
        return self.wins_i + self.wins_j + self.ties

    @property
    def cells(self) -> np.ndarray:
        """Counts as a (3 * pairs,) vector: wins_i of every pair, then wins_j, then ties."""
        return np.concatenate([self.wins_i, self.wins_j, self.ties])

    def battles_per_model(self) -> np.ndarray:
        out = np.zeros(len(self.models))
        np.add.at(out, self.i, self.n)
        np.add.at(out, self.j, self.n)
        return out


def count_battles(model_a, model_b, score_a) -> PairCounts:
    """Aggregate battles (names of both sides and A's score: 1 win, 0 loss, 0.5 tie) into PairCounts."""
    a, b = np.asarray(model_a, dtype=object), np.asarray(model_b, dtype=object)
    score = np.asarray(score_a, dtype=float)
    keep = a != b  # a model against itself says nothing about its rating
    a, b, score = a[keep], b[keep], score[keep]
    codes, uniques = pd.factorize(np.concatenate([a, b]), sort=True)
    models = tuple(str(m) for m in uniques)
    ia, ib = codes[:len(a)].astype(np.int64), codes[len(a):].astype(np.int64)
    lo, hi = np.minimum(ia, ib), np.maximum(ia, ib)
    lo_score = np.where(ia == lo, score, 1.0 - score)  # the score from the lower index's side
    outcome = np.where(lo_score == 0.5, 2, np.where(lo_score > 0.5, 0, 1))  # 0: lo won, 1: hi won, 2: tie
    k = len(models)
    flat = np.bincount((lo * k + hi) * 3 + outcome, minlength=k * k * 3).reshape(k * k, 3)
    pair_ids = np.flatnonzero(flat.sum(1))
    return PairCounts(models, pair_ids // k, pair_ids % k, flat[pair_ids, 0].astype(float),
                      flat[pair_ids, 1].astype(float), flat[pair_ids, 2].astype(float))


def _objective(theta: np.ndarray, counts: PairCounts, l2: float):
    """Negative log-likelihood (ties as half wins) + ridge, with its gradient and Hessian."""
    w_i = counts.wins_i + 0.5 * counts.ties
    n = counts.n
    d = theta[counts.i] - theta[counts.j]
    p = expit(d)
    nll = -(w_i * np.log(np.clip(p, 1e-300, None)) + (n - w_i) * np.log(np.clip(1 - p, 1e-300, None))).sum()
    r = n * p - w_i  # d nll / d d
    grad = np.zeros_like(theta)
    np.add.at(grad, counts.i, r)
    np.add.at(grad, counts.j, -r)
    h = n * p * (1 - p)
    hess = np.zeros((len(theta), len(theta)))
    np.add.at(hess, (counts.i, counts.i), h)
    np.add.at(hess, (counts.j, counts.j), h)
    np.add.at(hess, (counts.i, counts.j), -h)
    np.add.at(hess, (counts.j, counts.i), -h)
    return nll + 0.5 * l2 * theta @ theta, grad + l2 * theta, hess + l2 * np.eye(len(theta))


def fit_theta(counts: PairCounts, l2: float = DEFAULT_L2) -> np.ndarray:
    """Maximum-likelihood natural-log strengths (mean 0), by scipy's trust-region Newton method."""
    k = len(counts.models)
    if k == 0:
        return np.zeros(0)
    res = minimize(lambda t: _objective(t, counts, l2)[:2], np.zeros(k), jac=True, method="trust-exact",
                   hess=lambda t: _objective(t, counts, l2)[2], options={"gtol": 1e-9})
    return res.x - res.x.mean()


def fit_theta_batch(counts: PairCounts, cells: np.ndarray, l2: float = DEFAULT_L2, iters: int = 50) -> np.ndarray:
    """Fit many count vectors (rows of `cells`, shaped like PairCounts.cells) at once; (rounds, models).

    Hand-written batched Newton: scipy minimises one problem per call, and 1,000 calls cost ~100x more
    than one vectorised solve (see bench/stats.py). Same objective as `fit_theta`.
    """
    rounds, pairs, k = cells.shape[0], len(counts.i), len(counts.models)
    w_i = cells[:, :pairs] + 0.5 * cells[:, 2 * pairs:]
    n = cells[:, :pairs] + cells[:, pairs:2 * pairs] + cells[:, 2 * pairs:]
    incidence = np.zeros((pairs, k))
    incidence[np.arange(pairs), counts.i] = 1.0
    incidence[np.arange(pairs), counts.j] = -1.0
    theta = np.zeros((rounds, k))
    eye = l2 * np.eye(k)
    for _ in range(iters):
        p = expit(theta @ incidence.T)
        grad = (n * p - w_i) @ incidence + l2 * theta
        hess = np.einsum("pk,bp,pl->bkl", incidence, n * p * (1 - p), incidence) + eye
        step = np.linalg.solve(hess, grad[..., None])[..., 0]
        # damp huge steps (a model that won everything in a resample): Newton stays on the convex bowl
        scale = np.minimum(1.0, 5.0 / np.maximum(np.abs(step).max(axis=1, keepdims=True), 1e-300))
        theta -= scale * step
        if np.abs(step).max() < 1e-10:
            break
    return theta - theta.mean(axis=1, keepdims=True)


@dataclass(frozen=True)
class Ratings:
    """Elo-scale ratings (mean 0) with bootstrap percentile intervals, one entry per model."""

    models: tuple[str, ...]
    rating: np.ndarray
    ci_low: np.ndarray
    ci_high: np.ndarray
    battles: np.ndarray
    rounds: int

    def rows(self) -> list[dict]:
        order = np.argsort(-self.rating, kind="stable")
        num = lambda v: None if math.isnan(v) else round(float(v), 1)  # noqa: E731  (JSON has no NaN)
        return [{"model": self.models[k], "rating": num(self.rating[k]), "ci_low": num(self.ci_low[k]),
                 "ci_high": num(self.ci_high[k]), "battles": int(self.battles[k])} for k in order]


def bootstrap_cells(counts: PairCounts, rounds: int, rng: np.random.Generator) -> np.ndarray:
    """`rounds` resamples of the battles, as multinomial draws over the count cells; (rounds, cells)."""
    cells = counts.cells
    total = int(cells.sum())
    return rng.multinomial(total, cells / total, size=rounds).astype(float)


def bradley_terry(counts: PairCounts, *, rounds: int = 1000, rng: np.random.Generator | None = None,
                  confidence: float = 0.95, l2: float = DEFAULT_L2) -> Ratings:
    """Point ratings by maximum likelihood and percentile bootstrap intervals from `rounds` resamples."""
    rng = rng if rng is not None else np.random.default_rng(0)
    point = fit_theta(counts, l2) * ELO_PER_NAT
    if rounds > 0 and len(counts.models) > 1:
        boot = fit_theta_batch(counts, bootstrap_cells(counts, rounds, rng), l2) * ELO_PER_NAT
        alpha = (1 - confidence) / 2
        low, high = np.quantile(boot, [alpha, 1 - alpha], axis=0)
    else:
        low, high = np.full_like(point, np.nan), np.full_like(point, np.nan)
    return Ratings(counts.models, point, low, high, counts.battles_per_model(), rounds)


def expected_score(rating_a: float, rating_b: float) -> float:
    """P(A beats B) (ties as half) implied by two Elo-scale ratings."""
    return 1.0 / (1.0 + 10 ** ((rating_b - rating_a) / 400.0))
