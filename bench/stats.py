"""Bradley-Terry + 1,000 bootstrap rounds over 100,000 battles among 6 models, timed beside one fit.

    python bench/stats.py [--battles 100000] [--rounds 1000] [--repeats 5]

Prints (median of --repeats runs, one process):
- one fit: aggregate the battles into counts per (pair, outcome) + one maximum-likelihood fit (scipy);
- whole: the same plus `--rounds` bootstrap rounds (multinomial resampling of the counts, batched Newton);
- summary: the full `python -m alignui stats` computation (ratings, all pair win rates, tests, verdicts);
- for scale, the row-level approach (scikit-learn LogisticRegression on the un-aggregated battles, as
  FastChat's notebook does) for one fit, and what 1,000 rounds of it would cost.
Target: whole under 5 s on 2 CPU cores.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from alignui.arena.bradley_terry import bradley_terry, count_battles, fit_theta  # noqa: E402
from alignui.arena.stats import scores_of, summarize  # noqa: E402

STRENGTHS = {"base": 0.0, "dpo-a": 60.0, "dpo-b": 25.0, "rlhf-a": 90.0, "sft": -40.0, "old": -120.0}


def battles(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    names, r = np.array(list(STRENGTHS)), np.array(list(STRENGTHS.values()))
    a = rng.integers(0, len(names), n)
    b = (a + rng.integers(1, len(names), n)) % len(names)
    p = 1 / (1 + 10 ** ((r[b] - r[a]) / 400))
    tie = rng.random(n) < 0.15
    winner = np.where(tie, "tie", np.where(rng.random(n) < p, "model_a", "model_b"))
    return pd.DataFrame({"model_a": names[a], "model_b": names[b], "winner": winner})


def timed(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def row_level_fit(df: pd.DataFrame) -> None:
    from sklearn.linear_model import LogisticRegression

    models = sorted(set(df["model_a"]) | set(df["model_b"]))
    ia, ib = df["model_a"].map(models.index).to_numpy(), df["model_b"].map(models.index).to_numpy()
    x = np.zeros((len(df), len(models)))
    x[np.arange(len(df)), ia], x[np.arange(len(df)), ib] = 1.0, -1.0
    s = scores_of(df["winner"])
    LogisticRegression(C=1e3, fit_intercept=False).fit(np.vstack([x, x]), np.r_[np.ones(len(df)), np.zeros(len(df))],
                                                       sample_weight=np.r_[s, 1 - s])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--battles", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    df = battles(args.battles)

    def one_fit():
        fit_theta(count_battles(df["model_a"], df["model_b"], scores_of(df["winner"])))

    def whole():
        counts = count_battles(df["model_a"], df["model_b"], scores_of(df["winner"]))
        return bradley_terry(counts, rounds=args.rounds, rng=np.random.default_rng(0))

    t_fit, t_whole = timed(one_fit, args.repeats), timed(whole, args.repeats)
    t_summary = timed(lambda: summarize(df, bootstrap=args.rounds), max(1, args.repeats // 2))
    t_rows = timed(lambda: row_level_fit(df), 1)
    ratings = whole()
    print(f"{args.battles:,} battles, {len(STRENGTHS)} models, {args.rounds} bootstrap rounds "
          f"(median of {args.repeats})")
    print(f"  one fit (aggregate + MLE)           {t_fit * 1000:8.1f} ms")
    print(f"  whole (fit + {args.rounds} bootstrap rounds)  {t_whole * 1000:8.1f} ms   whole / one fit = "
          f"{t_whole / t_fit:.2f}")
    print(f"  full stats summary                  {t_summary * 1000:8.1f} ms")
    print(f"  row-level sklearn fit (FastChat way) {t_rows * 1000:7.1f} ms   x{args.rounds} rounds would be "
          f"~{t_rows * args.rounds:.0f} s = {t_rows * args.rounds / t_whole:.0f}x our whole")
    print(f"  target whole < 5 s: {'met' if t_whole < 5 else 'MISSED'}")
    for row in ratings.rows():
        print(f"    {row['model']:8s} {row['rating']:7.1f}  [{row['ci_low']:7.1f}, {row['ci_high']:7.1f}]  "
              f"n={row['battles']}")


if __name__ == "__main__":
    main()
