"""Inter-annotator agreement on shared pairs, gold-item accuracy, and the export policies built on them.

Owns: turning decided comparisons into ratings (one per annotator and pair,
where a pair is its two generations, gen_a|gen_b), the agreement figures,
per-annotator agreement with the others' majority and accuracy on gold items,
and the three export policies (keep all votes / one majority verdict per pair /
majority verdicts of pairs with enough agreement).

The statistics come from the libraries the field uses, not from hand-written
formulas: Cohen's kappa from scikit-learn (two raters), Fleiss' kappa from
statsmodels (every pair judged by the same number of people) and
Krippendorff's alpha from the `krippendorff` package (any number of raters,
missing ratings allowed). Categories are nominal: a, b, tie, both_bad; 'skip'
is not an opinion and is left out of every figure.

Invariants: pure functions of their inputs (no database, no randomness); a
figure that is undefined (too few shared pairs, everybody always said the same
thing) is None, never NaN.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from alignui.vocab import ARENA_VERDICTS

CATEGORIES = ARENA_VERDICTS
EXPORT_POLICIES = ("keep_all", "majority", "drop_low_agreement")
POLICY_HELP = {
    "keep_all": "every vote is a row (pairs judged by several people appear several times)",
    "majority": "one row per pair with the majority verdict; pairs whose vote is split evenly are dropped",
    "drop_low_agreement": "like majority, and pairs where fewer than min_agreement of the judges agree are dropped",
}


@dataclass(frozen=True)
class Rating:
    item: str
    annotator: str
    verdict: str


def item_key(comparison: Any) -> str:
    """The pair a comparison judged: its two generations (shared copies of one pair have the same key)."""
    return f"{comparison.gen_a}|{comparison.gen_b}"


def ratings_of(comparisons: Iterable[Any]) -> list[Rating]:
    """One rating per (pair, annotator) from decided comparisons; skips and undecided rows are left out,
    and an annotator's later decision on the same pair replaces the earlier one."""
    latest: dict[tuple[str, str], Rating] = {}
    for c in comparisons:
        if c.verdict in CATEGORIES:
            who = c.annotator or "anonymous"
            latest[(item_key(c), who)] = Rating(item_key(c), who, c.verdict)
    return list(latest.values())


def _none_if_nan(value: float) -> float | None:
    return None if value is None or math.isnan(value) else float(value)


def cohen_kappa(labels_1: Sequence[str], labels_2: Sequence[str]) -> float | None:
    """Cohen's kappa of two raters over the same items (scikit-learn); None when undefined."""
    from sklearn.metrics import cohen_kappa_score

    if len(labels_1) != len(labels_2):
        raise ValueError("both raters must label the same items")
    if len(labels_1) < 2 or len(set(labels_1) | set(labels_2)) < 2:
        return None  # one category only: chance agreement is 1 and kappa is 0/0
    return _none_if_nan(cohen_kappa_score(list(labels_1), list(labels_2), labels=list(CATEGORIES)))


def _by_item(ratings: Iterable[Rating]) -> dict[str, dict[str, str]]:
    items: dict[str, dict[str, str]] = defaultdict(dict)
    for r in ratings:
        items[r.item][r.annotator] = r.verdict
    return items


def fleiss_kappa(ratings: Iterable[Rating]) -> float | None:
    """Fleiss' kappa (statsmodels) over pairs judged by several people; None unless every such pair was
    judged by the same number of people (Fleiss' assumption), or with fewer than two such pairs."""
    from statsmodels.stats.inter_rater import fleiss_kappa as sm_fleiss

    shared = [votes for votes in _by_item(ratings).values() if len(votes) >= 2]
    if len(shared) < 2 or len({len(v) for v in shared}) != 1:
        return None
    table = [[Counter(v.values())[c] for c in CATEGORIES] for v in shared]
    if sum(1 for c in range(len(CATEGORIES)) if any(row[c] for row in table)) < 2:
        return None
    return _none_if_nan(sm_fleiss(table, method="fleiss"))


def krippendorff_alpha(ratings: Iterable[Rating]) -> float | None:
    """Krippendorff's alpha, nominal, any number of raters with gaps (the `krippendorff` package)."""
    import krippendorff
    import numpy as np

    items = {k: v for k, v in _by_item(ratings).items() if len(v) >= 2}
    if len(items) < 2:
        return None
    raters = sorted({a for votes in items.values() for a in votes})
    code = {c: i for i, c in enumerate(CATEGORIES)}
    data = np.full((len(raters), len(items)), np.nan)
    for j, votes in enumerate(items.values()):
        for a, verdict in votes.items():
            data[raters.index(a), j] = code[verdict]
    if len(set(data[~np.isnan(data)].tolist())) < 2:
        return None
    return _none_if_nan(krippendorff.alpha(reliability_data=data, level_of_measurement="nominal"))


@dataclass(frozen=True)
class AnnotatorStats:
    name: str
    rated: int
    compared: int  # pairs where the others' majority was clear
    agreement: float | None  # share of those where this annotator sided with the others' majority
    gold_seen: int
    gold_accuracy: float | None


@dataclass(frozen=True)
class AgreementReport:
    ratings: int
    annotators: int
    shared_pairs: int  # pairs judged by two or more people
    method: str | None  # which figure is the headline: 'cohen', 'fleiss' or 'krippendorff'
    value: float | None
    cohen: float | None = None
    fleiss: float | None = None
    alpha: float | None = None
    per_annotator: list[AnnotatorStats] = field(default_factory=list)

    def describe(self) -> str:
        if self.value is None:
            return (f"{self.ratings} votes by {self.annotators} annotators; {self.shared_pairs} "
                    f"pair{'s' if self.shared_pairs != 1 else ''} judged by several people: too few (or too "
                    "uniform) for an agreement figure; raise the overlap k to have more pairs judged twice")
        names = {"cohen": "Cohen's kappa", "fleiss": "Fleiss' kappa", "krippendorff": "Krippendorff's alpha"}
        return (f"{names[self.method]} = {self.value:.3f} over {self.shared_pairs} shared pairs "
                f"({self.ratings} votes by {self.annotators} annotators)")


def _majority(votes: Iterable[str]) -> str | None:
    """The most frequent verdict, or None when the top count is shared."""
    top = Counter(votes).most_common()
    if not top or (len(top) > 1 and top[0][1] == top[1][1]):
        return None
    return top[0][0]


def annotator_stats(ratings: Sequence[Rating], gold: Mapping[str, str]) -> list[AnnotatorStats]:
    """Per annotator: agreement with the majority of the *other* judges of each pair (leave-one-out, so an
    annotator's own vote never props up their score) and accuracy on gold items."""
    items = _by_item(ratings)
    rows = []
    for name in sorted({r.annotator for r in ratings}):
        mine = {r.item: r.verdict for r in ratings if r.annotator == name}
        agree = compared = 0
        for item, verdict in mine.items():
            others = _majority(v for a, v in items[item].items() if a != name)
            if others is not None:
                compared += 1
                agree += verdict == others
        gold_hits = [verdict == gold[item] for item, verdict in mine.items() if item in gold]
        rows.append(AnnotatorStats(name, len(mine), compared, agree / compared if compared else None,
                                   len(gold_hits), sum(gold_hits) / len(gold_hits) if gold_hits else None))
    return rows


def agreement_report(ratings: Sequence[Rating], gold: Mapping[str, str] | None = None) -> AgreementReport:
    """All figures; the headline is Cohen's kappa with two annotators, Fleiss' kappa with more when every
    shared pair has the same number of judges, else Krippendorff's alpha."""
    ratings = list(ratings)
    items = _by_item(ratings)
    shared = {k: v for k, v in items.items() if len(v) >= 2}
    raters = sorted({a for v in shared.values() for a in v})
    cohen = None
    if len(raters) == 2:
        both = [v for v in shared.values() if len(v) == 2]
        cohen = cohen_kappa([v[raters[0]] for v in both], [v[raters[1]] for v in both])
    fleiss, alpha = fleiss_kappa(ratings), krippendorff_alpha(ratings)
    if len(raters) == 2:
        method, value = "cohen", cohen
    elif fleiss is not None:
        method, value = "fleiss", fleiss
    else:
        method, value = "krippendorff", alpha
    return AgreementReport(ratings=len(ratings), annotators=len({r.annotator for r in ratings}),
                           shared_pairs=len(shared), method=method if value is not None else None, value=value,
                           cohen=cohen, fleiss=fleiss, alpha=alpha,
                           per_annotator=annotator_stats(ratings, gold or {}))


# -- pairs and export policies -------------------------------------------------------------------
@dataclass(frozen=True)
class PairVotes:
    """Every decided comparison of one pair, with its verdict counts."""

    item: str
    comparisons: tuple
    counts: dict[str, int]

    @property
    def judges(self) -> int:
        return sum(self.counts.values())

    @property
    def majority(self) -> str | None:
        return _majority(Counter(self.counts).elements())

    @property
    def share(self) -> float:
        """How many of the judges gave the most frequent verdict (1.0 for a pair judged once)."""
        return max(self.counts.values()) / self.judges if self.judges else 0.0


def group_pairs(comparisons: Iterable[Any]) -> list[PairVotes]:
    """Decided comparisons grouped by pair, in order of each pair's first decision."""
    groups: dict[str, list] = defaultdict(list)
    for c in comparisons:
        if c.verdict is not None:
            groups[item_key(c)].append(c)
    return [PairVotes(item, tuple(cs), {v: n for v, n in Counter(c.verdict for c in cs
                                                                    if c.verdict in CATEGORIES).items()})
            for item, cs in groups.items()]


def apply_export_policy(comparisons: Sequence[Any], policy: str = "keep_all",
                        min_agreement: float = 0.6) -> list[Any]:
    """The comparisons an export should turn into rows, under `policy` (see POLICY_HELP)."""
    if policy not in EXPORT_POLICIES:
        raise ValueError(f"export policy must be one of {', '.join(EXPORT_POLICIES)}, got {policy!r}")
    if not 0.0 <= min_agreement <= 1.0:
        raise ValueError(f"min_agreement is a share from 0 to 1, got {min_agreement!r}")
    if policy == "keep_all":
        return [c for c in comparisons if c.verdict is not None]
    kept = []
    for pair in group_pairs(comparisons):
        winner = pair.majority
        if winner is None or (policy == "drop_low_agreement" and pair.share < min_agreement):
            continue
        kept.append(next(c for c in pair.comparisons if c.verdict == winner))  # the first to say it
    return kept


def disputed_pairs(comparisons: Sequence[Any], min_agreement: float = 0.6) -> list[PairVotes]:
    """Pairs judged by two or more people whose agreement is below `min_agreement`, most split first."""
    pairs = [p for p in group_pairs(comparisons) if p.judges >= 2 and p.share < min_agreement]
    return sorted(pairs, key=lambda p: (p.share, -p.judges))


def report_for_store(store: Any) -> tuple[AgreementReport, list[Any]]:
    """The report for everything decided in `store` (and the comparisons it was computed on)."""
    comparisons = store.decided_annotations()
    gold = {g.item: g.verdict for g in store.gold_items()}
    return agreement_report(ratings_of(comparisons), gold), comparisons
