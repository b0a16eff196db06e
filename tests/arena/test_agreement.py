"""Agreement figures against scikit-learn / statsmodels / krippendorff on fixed examples, the export
policies, and overlap k + gold items on a real DuckDB file."""

import random
from types import SimpleNamespace

import krippendorff
import numpy as np
import pytest
from sklearn.metrics import cohen_kappa_score
from statsmodels.stats.inter_rater import aggregate_raters
from statsmodels.stats.inter_rater import fleiss_kappa as sm_fleiss

from alignui.arena.agreement import (CATEGORIES, Rating, agreement_report, apply_export_policy, cohen_kappa,
                               disputed_pairs, fleiss_kappa, krippendorff_alpha, ratings_of, report_for_store)
from alignui.db import NewGeneration, Store
from alignui.errors import UserError
from alignui.annotation.overlap import next_shared_pair


def table_ratings(table: dict[str, list[str]]) -> list[Rating]:
    """{annotator: [verdict per item]} -> ratings ('' = did not rate that item)."""
    return [Rating(f"item{i}", who, v) for who, verdicts in table.items() for i, v in enumerate(verdicts) if v]


def test_cohen_kappa_matches_the_textbook_and_sklearn():
    # Wikipedia's worked example: 50 proposals, yes/yes 20, no/no 15, yes/no 5, no/yes 10 -> kappa = 0.4
    r1 = ["a"] * 20 + ["b"] * 15 + ["a"] * 5 + ["b"] * 10
    r2 = ["a"] * 20 + ["b"] * 15 + ["b"] * 5 + ["a"] * 10
    assert cohen_kappa(r1, r2) == pytest.approx(0.4)
    report = agreement_report(table_ratings({"ann": r1, "bob": r2}))
    assert report.method == "cohen" and report.value == pytest.approx(cohen_kappa_score(r1, r2))
    assert report.shared_pairs == 50 and report.annotators == 2


def test_fleiss_kappa_matches_statsmodels_on_a_fixed_example():
    table = {  # 8 pairs, each judged by the same 3 people
        "ann": ["a", "a", "b", "tie", "a", "b", "both_bad", "a"],
        "bob": ["a", "b", "b", "tie", "a", "b", "b", "a"],
        "cat": ["a", "a", "b", "a", "tie", "b", "both_bad", "b"],
    }
    codes = np.array([[CATEGORIES.index(v) for v in table[who]] for who in table]).T  # items x raters
    counts, _ = aggregate_raters(codes, n_cat=len(CATEGORIES))
    expected = sm_fleiss(counts)
    got = fleiss_kappa(table_ratings(table))
    assert got == pytest.approx(expected) and 0.3 < got < 0.6
    report = agreement_report(table_ratings(table))
    assert report.method == "fleiss" and report.value == pytest.approx(expected)


def test_krippendorff_alpha_matches_the_package_with_missing_ratings():
    table = {  # uneven coverage: Fleiss' kappa does not apply, alpha does
        "ann": ["a", "a", "b", "tie", "", "b", "both_bad", "a", "b"],
        "bob": ["a", "b", "b", "", "a", "b", "b", "a", ""],
        "cat": ["a", "a", "", "a", "a", "b", "both_bad", "", "b"],
        "dan": ["", "a", "b", "tie", "a", "", "both_bad", "a", "b"],
    }
    matrix = [[CATEGORIES.index(v) if v else np.nan for v in table[who]] for who in sorted(table)]
    expected = krippendorff.alpha(reliability_data=matrix, level_of_measurement="nominal")
    ratings = table_ratings(table)
    assert krippendorff_alpha(ratings) == pytest.approx(expected)
    assert fleiss_kappa(ratings) is None  # pairs have 3 or 4 judges
    report = agreement_report(ratings)
    assert report.method == "krippendorff" and report.value == pytest.approx(expected)


def test_undefined_figures_are_none_not_nan():
    same = table_ratings({"ann": ["a", "a", "a"], "bob": ["a", "a", "a"]})
    report = agreement_report(same)
    assert report.value is None and report.cohen is None and "too few" in report.describe()
    assert agreement_report([]).value is None
    assert agreement_report(table_ratings({"ann": ["a", "b"]})).shared_pairs == 0


def test_per_annotator_agreement_with_the_others_majority_and_gold_accuracy():
    table = {
        "ann": ["a", "b", "a", "tie"],
        "bob": ["a", "b", "a", "tie"],
        "cat": ["a", "b", "a", "b"],
        "eve": ["b", "a", "b", "a"],  # contrarian
    }
    gold = {"item0": "a", "item1": "b"}
    stats = {s.name: s for s in agreement_report(table_ratings(table), gold).per_annotator}
    assert stats["ann"].agreement == 1.0 and stats["eve"].agreement == 0.0
    assert stats["cat"].compared == 4 and stats["cat"].agreement == 0.75  # item3: others ann/bob say tie
    assert (stats["ann"].gold_seen, stats["ann"].gold_accuracy) == (2, 1.0)
    assert stats["eve"].gold_accuracy == 0.0


def comparison(gen_a, gen_b, annotator, verdict, n):
    return SimpleNamespace(id=f"c{n}", gen_a=gen_a, gen_b=gen_b, annotator=annotator, verdict=verdict)


def test_export_policies_keep_all_majority_or_agreed_pairs_only():
    rows = [comparison("g1", "h1", "ann", "a", 1), comparison("g1", "h1", "bob", "a", 2),
            comparison("g1", "h1", "cat", "b", 3),  # 2/3 agree on a
            comparison("g2", "h2", "ann", "a", 4), comparison("g2", "h2", "bob", "b", 5),  # split: no majority
            comparison("g3", "h3", "ann", "b", 6),  # judged once
            comparison("g4", "h4", "ann", "skip", 7), comparison("g4", "h4", "bob", "a", 8),
            comparison("g5", "h5", "ann", None, 9)]  # pending
    assert [c.id for c in apply_export_policy(rows, "keep_all")] == [f"c{i}" for i in range(1, 9)]
    assert [c.id for c in apply_export_policy(rows, "majority")] == ["c1", "c6", "c8"]
    assert [c.id for c in apply_export_policy(rows, "drop_low_agreement", 0.7)] == ["c6", "c8"]
    assert [p.item for p in disputed_pairs(rows, 0.7)] == ["g2|h2", "g1|h1"]
    with pytest.raises(ValueError, match="export policy must be one of"):
        apply_export_policy(rows, "vote")
    assert len(ratings_of(rows)) == 7  # skip and pending are not opinions


# -- overlap k and gold items on a real store ------------------------------------------------------
@pytest.fixture
def store(tmp_path):
    with Store(tmp_path / "alignui.duckdb") as s:
        yield s


def make_pair(store, text="Q?", annotator="ann"):
    return store.save_pair([{"role": "user", "content": text}], NewGeneration("base", f"A to {text}"),
                           NewGeneration("base", f"B to {text}"), annotator=annotator)


def test_overlap_hands_the_same_generations_to_k_annotators_once_each(store):
    original = make_pair(store)
    assert store.claim_shared_pair("bob", store.overlap_k()) is None  # k = 1: nothing is shared
    assert store.set_overlap_k(3, by="admin") == 3 and store.overlap_k() == 3
    copies = [store.claim_shared_pair(who, 3) for who in ("bob", "cat")]
    assert all(c.gen_a == original.gen_a and c.gen_b == original.gen_b and c.verdict is None for c in copies)
    assert [c.annotator for c in copies] == ["bob", "cat"] and copies[0].text_a == original.text_a
    assert store.claim_shared_pair("dan", 3) is None  # three people have it now
    assert store.claim_shared_pair("ann", 5) is None and store.claim_shared_pair("bob", 5) is None  # seen
    for pair, verdict in zip([original, *copies], ["a", "a", "b"]):
        store.decide(pair.id, verdict)
    report, comparisons = report_for_store(store)
    assert len(comparisons) == 3 and report.shared_pairs == 1
    with pytest.raises(UserError, match="overlap must be from 1"):
        store.set_overlap_k(0)
    with pytest.raises(UserError, match="type your name"):
        store.claim_shared_pair("", 3)


def test_gold_items_are_served_once_per_annotator_and_scored(store):
    pair = make_pair(store, "What is 2+2?")
    store.decide(pair.id, "a")
    gold = store.add_gold(pair.id, "a", by="admin", note="A says 4")
    assert gold.item == f"{pair.gen_a}|{pair.gen_b}" and len(store.gold_items()) == 1
    rng = random.Random(0)
    served = next_shared_pair(store, "bob", rng, gold_rate=1.0)
    assert served.gen_a == pair.gen_a and served.annotator == "bob"
    assert next_shared_pair(store, "bob", rng, gold_rate=1.0) is None  # bob has seen the only gold item
    store.decide(served.id, "b")
    stats = {s.name: s for s in report_for_store(store)[0].per_annotator}
    assert (stats["bob"].gold_seen, stats["bob"].gold_accuracy) == (1, 0.0)
    with pytest.raises(UserError, match="a gold answer must be one of"):
        store.add_gold(pair.id, "skip")
    store.remove_gold(pair.id)
    assert store.gold_items() == []


def test_agreement_from_the_store_matches_sklearn(store):
    """Two annotators judge 12 shared pairs through overlap; the figure equals sklearn on the same votes."""
    store.set_overlap_k(2)
    rng = random.Random(7)
    ann, bob = [], []
    for i in range(12):
        original = make_pair(store, f"question {i}", annotator="ann")
        copy = store.claim_shared_pair("bob", 2)
        a = rng.choice(CATEGORIES)
        b = a if rng.random() < 0.7 else rng.choice(CATEGORIES)
        store.decide(original.id, a)
        store.decide(copy.id, b)
        ann.append(a)
        bob.append(b)
    report, _ = report_for_store(store)
    assert report.method == "cohen" and report.value == pytest.approx(cohen_kappa_score(ann, bob))
