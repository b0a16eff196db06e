"""The statistics against independent computations, known truths and repeated simulations (all seeded)."""

import math

import numpy as np
import pandas as pd
import pytest
from scipy.stats import binom, binomtest
from sklearn.linear_model import LogisticRegression

from alignui.arena.bradley_terry import (DEFAULT_L2, ELO_PER_NAT, PairCounts, bootstrap_cells, bradley_terry, count_battles,
                                   expected_score, fit_theta, fit_theta_batch)
from alignui.arena.stats import (VerdictRules, length_controlled_win_rate, scores_of, summarize, verdict,
                           votes_to_tell, win_rate)

TRUE = {"base": 0.0, "dpo-1": 80.0, "dpo-2": 40.0, "rlhf-1": -60.0, "sft-1": 120.0, "old": -180.0}


def simulate(n: int, rng: np.random.Generator, tie_rate: float = 0.0, strengths=TRUE) -> pd.DataFrame:
    """Battles among `strengths` (Elo scale) drawn from the Bradley-Terry model, uniform random pairs."""
    names = np.array(list(strengths))
    r = np.array(list(strengths.values()))
    a = rng.integers(0, len(names), n)
    b = (a + rng.integers(1, len(names), n)) % len(names)
    p = 1 / (1 + 10 ** ((r[b] - r[a]) / 400))
    tie = rng.random(n) < tie_rate
    winner = np.where(tie, "tie", np.where(rng.random(n) < p, "model_a", "model_b"))
    return pd.DataFrame({"model_a": names[a], "model_b": names[b], "winner": winner})


def centred(strengths=TRUE) -> dict:
    mean = np.mean(list(strengths.values()))
    return {m: v - mean for m, v in strengths.items()}


def counts_of(df):
    return count_battles(df["model_a"], df["model_b"], scores_of(df["winner"]))


def test_ties_count_half_and_pairs_are_unordered():
    df = pd.DataFrame({"model_a": ["x", "y", "x", "y"], "model_b": ["y", "x", "y", "x"],
                       "winner": ["model_a", "model_a", "tie", "tie (bothbad)"]})
    c = counts_of(df)
    assert c.models == ("x", "y")
    assert (c.wins_i.tolist(), c.wins_j.tolist(), c.ties.tolist()) == ([1.0], [1.0], [2.0])
    wr = win_rate(1, 1, 2)
    assert wr.rate == 0.5 and wr.n == 4


def test_bradley_terry_matches_sklearn_logistic_regression_on_the_raw_battles():
    df = simulate(3000, np.random.default_rng(1), tie_rate=0.15)
    ours = fit_theta(counts_of(df))
    # independent: FastChat's formulation on un-aggregated rows (a tie = half a win for each side)
    c = counts_of(df)
    models = list(c.models)
    ia, ib = df["model_a"].map(models.index).to_numpy(), df["model_b"].map(models.index).to_numpy()
    x = np.zeros((len(df), len(models)))
    x[np.arange(len(df)), ia], x[np.arange(len(df)), ib] = 1.0, -1.0
    s = scores_of(df["winner"])
    rows, y = np.vstack([x, x]), np.r_[np.ones(len(df)), np.zeros(len(df))]
    weights = np.r_[s, 1 - s]
    lr = LogisticRegression(C=1 / DEFAULT_L2, fit_intercept=False, tol=1e-12, max_iter=10_000)
    lr.fit(rows, y, sample_weight=weights)
    theirs = lr.coef_[0] - lr.coef_[0].mean()
    assert np.allclose(ours, theirs, atol=1e-4)


def test_ratings_recover_known_strengths_on_the_elo_scale():
    df = simulate(60_000, np.random.default_rng(2))
    ratings = bradley_terry(counts_of(df), rounds=200, rng=np.random.default_rng(0))
    truth = centred()
    for model, rating, low, high in zip(ratings.models, ratings.rating, ratings.ci_low, ratings.ci_high):
        assert abs(rating - truth[model]) < 12, (model, rating, truth[model])
        assert low < rating < high and high - low < 30
    assert abs(ratings.rating.mean()) < 1e-6  # mean-free anchoring
    assert expected_score(100, 0) == pytest.approx(1 / (1 + 10 ** -0.25))


def test_batched_bootstrap_fit_equals_scipy_fit_round_by_round():
    df = simulate(800, np.random.default_rng(3), tie_rate=0.1)
    c = counts_of(df)
    cells = bootstrap_cells(c, 5, np.random.default_rng(4))
    batch = fit_theta_batch(c, cells)
    pairs = len(c.i)
    for row, theta in zip(cells, batch):
        resampled = type(c)(c.models, c.i, c.j, row[:pairs], row[pairs:2 * pairs], row[2 * pairs:])
        assert np.allclose(theta, fit_theta(resampled), atol=1e-6)


def test_a_model_that_won_everything_gets_a_finite_rating():
    df = pd.DataFrame({"model_a": ["x"] * 5, "model_b": ["base"] * 5, "winner": ["model_a"] * 5})
    r = bradley_terry(counts_of(df), rounds=100, rng=np.random.default_rng(0))
    assert np.isfinite(r.rating).all() and r.rating[r.models.index("x")] > 200


def test_bootstrap_intervals_cover_the_truth_at_about_the_nominal_rate():
    rng = np.random.default_rng(5)
    target = _tie_adjusted(TRUE, 0.1)
    hits, total = 0, 0
    for _ in range(150):
        ratings = bradley_terry(counts_of(simulate(1500, rng, tie_rate=0.1)), rounds=300, rng=rng)
        # random ties shrink observed differences: the target is what tie-as-half converges to
        for model, low, high in zip(ratings.models, ratings.ci_low, ratings.ci_high):
            hits += low <= target[model] <= high
            total += 1
    coverage = hits / total
    print(f"Bradley-Terry bootstrap 95% interval coverage: {coverage:.3f} over {total} intervals")
    assert 0.91 <= coverage <= 0.985


def _tie_adjusted(truth: dict, tie_rate: float) -> dict:
    """The ratings the tie-as-half likelihood converges to when ties replace outcomes at random."""
    models = tuple(sorted(truth))
    pairs = [(i, j) for i in range(len(models)) for j in range(i + 1, len(models))]
    n = 1e6  # expected counts of a very large sample
    score = np.array([(1 - tie_rate) * expected_score(truth[models[i]], truth[models[j]]) + tie_rate / 2
                      for i, j in pairs])
    expected = PairCounts(models, np.array([i for i, _ in pairs]), np.array([j for _, j in pairs]),
                          n * score, n * (1 - score), np.zeros(len(pairs)))
    return dict(zip(models, fit_theta(expected, l2=0.0) * ELO_PER_NAT))


def test_wilson_intervals_cover_at_about_the_nominal_rate():
    rng = np.random.default_rng(6)
    for p_win, p_tie, n in [(0.6, 0.0, 80), (0.5, 0.0, 200), (0.45, 0.2, 120)]:
        truth = p_win + p_tie / 2
        draws = rng.multinomial(n, [p_win, 1 - p_win - p_tie, p_tie], size=20_000)
        triples, freq = np.unique(draws, axis=0, return_counts=True)  # one win_rate call per distinct record
        covered = sum(f for (w, l, t), f in zip(triples, freq)
                      if (wr := win_rate(float(w), float(l), float(t))).ci_low <= truth <= wr.ci_high)
        coverage = covered / len(draws)
        print(f"Wilson coverage p_win={p_win} p_tie={p_tie} n={n}: {coverage:.3f}")
        assert 0.93 <= coverage <= (0.995 if p_tie else 0.97)


def test_sign_test_is_the_exact_binomial_test_without_ties():
    wr = win_rate(30, 18, 7)
    assert wr.p_value == pytest.approx(binomtest(30, 48, 0.5).pvalue)
    assert wr.p_value == pytest.approx(2 * binom.cdf(18, 48, 0.5))
    assert win_rate(0, 0, 5).p_value == 1.0


@pytest.mark.parametrize("wins,losses,ties,code", [
    (130, 70, 0, "working"),        # 65% [58%, 71%]
    (60, 100, 0, "worse"),          # 37.5% [30%, 45%]
    (5200, 4800, 0, "no_gain"),     # 52% [51%, 53%]: better than base but the 55% bar is ruled out
    (11, 9, 0, "undecided"),        # 55% [34%, 74%]
    (4, 1, 0, "undecided"),         # under the minimum number of votes
    (56, 44, 0, "undecided"),       # 56% [46%, 65%]
])
def test_verdict_follows_the_thresholds(wins, losses, ties, code):
    wr = win_rate(wins, losses, ties)
    v = verdict(wr)
    assert v.code == code, v.text
    pct = f"{100 * wr.rate:.0f}% [{100 * wr.ci_low:.0f}%, {100 * wr.ci_high:.0f}%], n={int(wr.n)}"
    assert pct in v.text
    prefix = {"working": "working: ", "worse": "made it worse than base: ", "no_gain": "not working: ",
              "undecided": "not enough votes yet: need about "}[code]
    assert v.text.startswith(prefix)
    if code == "undecided":
        question = "beats base (50%)" if wr.rate > 0.55 else "reaches 55%"
        assert v.more_votes > 0 and f"more to tell whether it {question}" in v.text


def test_verdict_thresholds_are_the_rules_and_the_vote_estimate_is_sane():
    assert votes_to_tell() == 783  # one-sample z-test, 55% vs 50%, alpha 0.05, power 0.8
    assert verdict(win_rate(0, 0)).text.startswith("not enough votes yet: need about 783 more")
    strict = VerdictRules(working=0.6)
    assert verdict(win_rate(130, 70), strict).code == "working"
    assert verdict(win_rate(116, 84), strict).code == "undecided"  # 58%: above 55% but not above 60%
    # once the interval is wide, the estimate shrinks as the observed effect grows
    assert verdict(win_rate(14, 6)).more_votes < verdict(win_rate(12, 8)).more_votes
    with pytest.raises(ValueError):
        VerdictRules(working=0.4)


@pytest.mark.parametrize("wins,losses", [(3, 6), (4, 8), (6, 12)])
def test_a_rate_below_base_asks_whether_it_is_worse_and_enough_votes_say_so(wins, losses):
    """At an observed 33% the question is "worse than base?", not "55% or 50%?"; the votes it asks for are what
    it takes for the interval to clear 50% at that rate: that many more votes at the same rate say "worse"."""
    v = verdict(win_rate(wins, losses))
    assert v.code == "undecided" and "more to tell whether it is worse than base (below 50%)" in v.text, v.text
    assert "55% from 50%" not in v.text
    n = wins + losses + v.more_votes
    after = verdict(win_rate(n / 3, n - n / 3))  # the same 33%, fractional counts are allowed
    assert after.code == "worse" and after.text.startswith("made it worse than base"), after.text


def test_length_controlled_win_rate_removes_a_pure_length_effect():
    rng = np.random.default_rng(7)
    n = 3000
    len_model, len_base = rng.normal(300, 80, n), rng.normal(200, 80, n)
    diff = (len_model - len_base) / (len_model - len_base).std()
    p = 1 / (1 + np.exp(-1.5 * np.tanh(diff)))  # equal quality: only length decides
    score = (rng.random(n) < p).astype(float)
    lc = length_controlled_win_rate(score, len_model, len_base)
    raw = score.mean()
    assert raw > 0.6 and lc.ci_low < 0.5 < lc.ci_high and abs(lc.rate - 0.5) < 0.04 and lc.length_coef > 1
    assert length_controlled_win_rate(score[:5], len_model[:5], len_base[:5]) is None
    same = length_controlled_win_rate(score, np.full(n, 5.0), np.full(n, 5.0))
    assert same.rate == pytest.approx(raw, abs=1e-6)


def test_summary_has_the_contract_shape_and_orients_pairs_against_the_base():
    df = simulate(4000, np.random.default_rng(8), tie_rate=0.1)
    df["length_a"], df["length_b"] = 100, 120
    out = summarize(df, bootstrap=200, seed=1)
    assert [m["model"] for m in out["models"]][:2] == ["sft-1", "dpo-1"]
    for m in out["models"]:
        assert {"model", "rating", "ci_low", "ci_high", "battles"} <= set(m) and m["ci_low"] < m["rating"] < m["ci_high"]
    assert len(out["pairs"]) == 15
    for p in out["pairs"]:
        assert {"model_a", "model_b", "n", "win_rate_a", "ci_low", "ci_high", "p_value"} <= set(p)
        assert 0 <= p["ci_low"] <= p["win_rate_a"] <= p["ci_high"] <= 1 and 0 <= p["p_value"] <= 1
    against_base = [p for p in out["pairs"] if p["model_b"] == "base"]
    assert {p["model_a"] for p in against_base} == set(TRUE) - {"base"}
    by_model = {p["model_a"]: p for p in against_base}
    assert by_model["sft-1"]["verdict"].startswith("working") and by_model["old"]["verdict"].startswith("made it worse")
    assert out == summarize(df, bootstrap=200, seed=1)  # seeded: the same battles give the same summary
    assert math.isclose(sum(m["battles"] for m in out["models"]), 2 * len(df))


def test_summary_of_nothing_is_empty_not_an_error():
    out = summarize(pd.DataFrame({"model_a": [], "model_b": [], "winner": []}), bootstrap=10)
    assert out["models"] == [] and out["pairs"] == [] and out["verdicts"] == []
