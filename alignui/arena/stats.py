"""The statistics that say whether training worked: win rates, intervals, tests, ratings, verdicts.

Owns: pairwise win rates (ties count half), Wilson 95% intervals (statsmodels), the exact sign test
against 50% (scipy's binomtest on decisive battles; ties carry no sign), the length-controlled win
rate (AlpacaEval-style GLM, statsmodels), the plain-language verdict of an adapter against the base,
and `summarize`, which builds the stats summary of DESIGN.md's contract from a battles table.

Battles tables have columns model_a, model_b, winner in WINNERS (Chatbot Arena's form) and optional
length_a / length_b (response lengths, tokens where known).

Verdict thresholds (the project's definition of success): a win rate above 55% against the base
means training is working, below 50% means it made the model worse; the 95% interval decides
whether the votes are enough to say either (see `verdict`).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from alignui.arena.bradley_terry import bradley_terry, count_battles

WINNERS = ("model_a", "model_b", "tie", "tie (bothbad)")
SCORES = {"model_a": 1.0, "model_b": 0.0, "tie": 0.5, "tie (bothbad)": 0.5}
BASELINE = "base"


def scores_of(winner: pd.Series) -> np.ndarray:
    """Model A's score per battle: 1 win, 0 loss, 0.5 for either kind of tie."""
    return winner.map(SCORES).to_numpy(dtype=float)


@dataclass(frozen=True)
class WinRate:
    """A's record against B: wins, losses, ties, the win rate with ties as half, its interval and p."""

    wins: float
    losses: float
    ties: float
    ci_low: float
    ci_high: float
    p_value: float

    @property
    def n(self) -> float:
        return self.wins + self.losses + self.ties

    @property
    def rate(self) -> float:
        return (self.wins + 0.5 * self.ties) / self.n if self.n else float("nan")


def win_rate(wins: float, losses: float, ties: float = 0.0, confidence: float = 0.95) -> WinRate:
    """Wilson interval on the tie-as-half score and the exact two-sided sign test against 50%.

    With ties the score varies less than a Bernoulli variable, so Wilson on the half-counted score is
    slightly conservative (wider than needed); the sign test drops ties, as a sign test does.
    """
    from scipy.stats import binomtest  # imported where used: scipy.stats costs seconds at app start
    from statsmodels.stats.proportion import proportion_confint

    n = wins + losses + ties
    if n == 0:
        return WinRate(0, 0, 0, 0.0, 1.0, 1.0)
    low, high = proportion_confint(wins + 0.5 * ties, n, alpha=1 - confidence, method="wilson")
    decisive = int(round(wins + losses))
    p = binomtest(int(round(wins)), decisive, 0.5).pvalue if decisive else 1.0
    return WinRate(wins, losses, ties, float(low), float(high), float(p))


@dataclass(frozen=True)
class LengthControlled:
    """Win rate predicted at equal response length (AlpacaEval 2's idea), with its 95% interval."""

    rate: float
    ci_low: float
    ci_high: float
    length_coef: float


def length_controlled_win_rate(score: np.ndarray, length_model: np.ndarray, length_other: np.ndarray
                               ) -> LengthControlled | None:
    """Fit logit P(model wins) = b0 + b1 * tanh(length difference / its sd) and report sigmoid(b0).

    AlpacaEval's length-controlled GLM without its per-instruction term (arena prompts rarely repeat).
    None when it cannot be estimated: fewer than 10 battles, no variation in the outcome, or a fit
    that does not converge. No variation in length: the raw win rate stands (b1 is 0).
    """
    score, diff = np.asarray(score, float), np.asarray(length_model, float) - np.asarray(length_other, float)
    ok = ~(np.isnan(score) | np.isnan(diff))
    score, diff = score[ok], diff[ok]
    if len(score) < 10 or score.min() == score.max():
        return None
    from statsmodels.genmod.families import Binomial
    from statsmodels.genmod.generalized_linear_model import GLM
    from statsmodels.tools.sm_exceptions import PerfectSeparationError

    sd = diff.std()
    x = np.tanh(diff / sd) if sd > 0 else np.zeros_like(diff)
    exog = np.column_stack([np.ones_like(x), x]) if sd > 0 else np.ones((len(x), 1))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fit = GLM(score, exog, family=Binomial()).fit()
    except (ValueError, np.linalg.LinAlgError, PerfectSeparationError):
        return None
    b0, se = float(fit.params[0]), float(fit.bse[0])
    if not (math.isfinite(b0) and math.isfinite(se)):
        return None
    from scipy.stats import norm

    z = norm.ppf(0.975)
    sig = lambda v: 1.0 / (1.0 + math.exp(-v))  # noqa: E731
    return LengthControlled(sig(b0), sig(b0 - z * se), sig(b0 + z * se), float(fit.params[1]) if sd > 0 else 0.0)


# -- verdicts ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class VerdictRules:
    """The thresholds of a verdict; defaults are the project's definition of success."""

    working: float = 0.55
    worse: float = 0.50
    confidence: float = 0.95
    power: float = 0.80
    min_votes: int = 10
    cap: int = 100_000

    def __post_init__(self):
        if not 0 < self.worse < self.working < 1:
            raise ValueError(f"need 0 < worse ({self.worse}) < working ({self.working}) < 1")


@dataclass(frozen=True)
class Verdict:
    code: str  # 'working' | 'worse' | 'no_gain' | 'undecided'
    text: str
    more_votes: int = 0


def votes_to_tell(rules: VerdictRules = VerdictRules()) -> int:
    """Votes needed to tell `working` from `worse` (one-sample test, alpha 1 - confidence, the given power)."""
    from statsmodels.stats.power import NormalIndPower
    from statsmodels.stats.proportion import proportion_effectsize

    effect = proportion_effectsize(rules.working, rules.worse)
    return math.ceil(NormalIndPower().solve_power(effect_size=effect, alpha=1 - rules.confidence,
                                                  power=rules.power, ratio=0))


def _question(wr: WinRate, rules: VerdictRules) -> tuple[str, float]:
    """What more votes would settle at the observed rate, and the distance to the bar that settles it: above
    `working`, whether it beats `worse` at all; between the bars, whether it reaches `working`; below `worse`,
    whether it is worse than base. (A fixed "tell 55% from 50%" read as nonsense at an observed 33%.)"""
    pct = lambda v: f"{100 * v:.0f}%"  # noqa: E731
    if not wr.n:
        return f"to tell {pct(rules.working)} from {pct(rules.worse)}", rules.working - rules.worse
    if wr.rate > rules.working:
        return f"to tell whether it beats base ({pct(rules.worse)})", wr.rate - rules.worse
    if wr.rate >= rules.worse:
        return f"to tell whether it reaches {pct(rules.working)}", rules.working - wr.rate
    return f"to tell whether it is worse than base (below {pct(rules.worse)})", rules.worse - wr.rate


def _more_votes(wr: WinRate, rules: VerdictRules) -> int:
    """About how many more votes until the interval clears the bar in question (`_question`), if the observed
    rate holds: the smallest total n whose Wilson interval (the one `win_rate` reports) at that rate clears
    the bar, by bisection (the interval narrows as n grows); never fewer than `min_votes` in all."""
    if not wr.n:
        return max(votes_to_tell(rules), rules.min_votes)
    from statsmodels.stats.proportion import proportion_confint

    def clears(n: int) -> bool:
        low, high = proportion_confint(wr.rate * n, n, alpha=1 - rules.confidence, method="wilson")
        if wr.rate > rules.working:
            return low > rules.worse
        return high < (rules.working if wr.rate >= rules.worse else rules.worse)

    lo, hi = max(int(wr.n), rules.min_votes), int(wr.n) + rules.cap
    if not clears(hi):
        needed = hi
    else:
        while lo < hi:
            mid = (lo + hi) // 2
            lo, hi = (lo, mid) if clears(mid) else (mid + 1, hi)
        needed = lo
    if wr.n < votes_to_tell(rules):  # near a bar the projection explodes; the planned size still holds
        needed = min(needed, votes_to_tell(rules))
    return int(min(max(needed - int(wr.n), 1), rules.cap))


def verdict(wr: WinRate, rules: VerdictRules = VerdictRules()) -> Verdict:
    """Plain-language verdict for an adapter's record against the base.

    working: rate above `working` and the interval above `worse` (better than base, clearly).
    made it worse: the interval lies wholly below `worse`.
    not working: the interval lies below `working` (the bar is ruled out) but not wholly below `worse`.
    otherwise, or under `min_votes` votes: not enough votes yet, with about how many more are needed.
    """
    pct = lambda v: f"{100 * v:.0f}%"  # noqa: E731
    facts = f"{pct(wr.rate)} [{pct(wr.ci_low)}, {pct(wr.ci_high)}], n={int(wr.n)}" if wr.n else "no votes yet"
    if wr.n >= rules.min_votes:
        if wr.rate > rules.working and wr.ci_low > rules.worse:
            return Verdict("working", f"working: {facts}")
        if wr.ci_high < rules.worse:
            return Verdict("worse", f"made it worse than base: {facts}")
        if wr.ci_high < rules.working:
            return Verdict("no_gain", f"not working: {facts} (the interval rules out {pct(rules.working)})")
    more, question = _more_votes(wr, rules), _question(wr, rules)[0]
    amount = f"more than {rules.cap:,}" if more >= rules.cap else f"about {more:,}"
    return Verdict("undecided", f"not enough votes yet: need {amount} more {question} ({facts})", more)


# -- the summary of the stats contract --------------------------------------------------------------
def validate_battles(battles: pd.DataFrame) -> pd.DataFrame:
    """The battles with known winners and two different models; lengths as floats (NaN when unknown)."""
    df = battles.copy()
    for col in ("length_a", "length_b"):
        df[col] = pd.to_numeric(df[col], errors="coerce") if col in df else np.nan
    df = df[(df["model_a"] != df["model_b"]) & df["winner"].isin(WINNERS)]
    return df.reset_index(drop=True)


def _pair_row(a: str, b: str, sub: pd.DataFrame, baseline: str) -> dict:
    """One pair's row, oriented so that `a` is model_a (the baseline, if present, is model_b)."""
    flip = sub["model_a"] != a
    score = np.where(flip, 1 - scores_of(sub["winner"]), scores_of(sub["winner"]))
    len_a = np.where(flip, sub["length_b"], sub["length_a"])
    len_b = np.where(flip, sub["length_a"], sub["length_b"])
    wr = win_rate(float((score == 1).sum()), float((score == 0).sum()), float((score == 0.5).sum()))
    lc = length_controlled_win_rate(score, len_a, len_b)
    return {"model_a": a, "model_b": b, "n": int(wr.n), "win_rate_a": round(wr.rate, 4),
            "ci_low": round(wr.ci_low, 4), "ci_high": round(wr.ci_high, 4), "p_value": float(f"{wr.p_value:.4g}"),
            "wins_a": int(wr.wins), "wins_b": int(wr.losses), "ties": int(wr.ties),
            "lc_win_rate_a": None if lc is None else round(lc.rate, 4),
            "lc_ci_low": None if lc is None else round(lc.ci_low, 4),
            "lc_ci_high": None if lc is None else round(lc.ci_high, 4),
            **({"verdict": verdict(wr).text} if b == baseline else {})}


def pair_rows(df: pd.DataFrame, order: list[str], baseline: str = BASELINE) -> list[dict]:
    """Every pair that met, model_a first in `order` (best first), except that the baseline is model_b."""
    rank = {m: k for k, m in enumerate(order)}
    rows = []
    a_col, b_col = df["model_a"].astype(str), df["model_b"].astype(str)
    low, high = np.minimum(a_col, b_col), np.maximum(a_col, b_col)
    for (x, y), sub in df.groupby([low, high], sort=True) if len(df) else []:
        a, b = (x, y) if rank.get(x, 0) <= rank.get(y, 0) else (y, x)
        if a == baseline:
            a, b = b, a
        rows.append(_pair_row(a, b, sub, baseline))
    return sorted(rows, key=lambda r: (r["model_b"] != baseline, rank.get(r["model_a"], 0), rank.get(r["model_b"], 0)))


def mean_lengths(df: pd.DataFrame) -> dict[str, float]:
    both = pd.concat([df[["model_a", "length_a"]].set_axis(["model", "length"], axis=1),
                      df[["model_b", "length_b"]].set_axis(["model", "length"], axis=1)])
    means = both.dropna().groupby("model")["length"].mean()
    return {m: round(float(v), 1) for m, v in means.items()}


def summarize(battles: pd.DataFrame, *, bootstrap: int = 1000, seed: int = 0, baseline: str = BASELINE) -> dict:
    """The stats summary: {"models": [...], "pairs": [...]} as in DESIGN.md, plus verdicts vs the baseline.

    Extra keys beyond the contract: per model `mean_length`; per pair wins/ties, the length-controlled
    win rate (lc_*) and, for pairs against the baseline, the verdict text; `verdicts` lists those.
    """
    if bootstrap < 0:
        raise ValueError("--bootstrap must be 0 or more rounds")
    df = validate_battles(battles)
    counts = count_battles(df["model_a"], df["model_b"], scores_of(df["winner"]))
    ratings = bradley_terry(counts, rounds=bootstrap, rng=np.random.default_rng(seed))
    lengths = mean_lengths(df)
    models = [{**row, "mean_length": lengths.get(row["model"])} for row in ratings.rows()]
    pairs = pair_rows(df, [m["model"] for m in models], baseline)
    verdicts = [{"model": p["model_a"], "verdict": p["verdict"]} for p in pairs if "verdict" in p]
    return {"models": models, "pairs": pairs, "verdicts": verdicts, "battles": int(len(df)),
            "bootstrap": bootstrap, "anchoring": "mean-free: ratings average 0 over the models listed"}
