"""Arena seating as a voter would attack it: after each reveal, guess the next battle's seats. The seats are
a fresh draw per battle (no better than chance from the previous battle), and left/right stays balanced."""

import random
from collections import Counter

import pytest

from alignui.arena import battle as arena
from alignui.arena.battle import assign_sides

PAIR = ("base", "dpo-new")
N = 1000


class Pairings:
    """The one Store method assign_sides reads, counting the seats it hands out (as saving battles would)."""

    def __init__(self):
        self.served = Counter()

    def arena_pairings(self):
        return dict(self.served)

    def seat(self, rng) -> str:
        left, right = assign_sides(self, PAIR, rng)
        self.served[(left, right)] += 1
        return left


def seatings(seed: int, n: int = N) -> list[str]:
    store, rng = Pairings(), random.Random(seed)
    return [store.seat(rng) for _ in range(n)]


@pytest.mark.parametrize("seed", range(5))
def test_left_and_right_stay_balanced_over_1000_battles(seed):
    lefts = seatings(seed)
    share = lefts.count("base") / N
    assert abs(share - 0.5) <= 0.05, share  # within a few percent
    worst = max(abs(lefts[:k].count("base") - k / 2) for k in range(1, N + 1))
    assert worst <= max(arena.SEATING_DRIFT_MIN, arena.SEATING_DRIFT * N) / 2 + 1  # the hard bound holds all along


def test_the_previous_battle_does_not_predict_the_next_seating():
    """Every guess a voter could make from the last reveal (same seats again, the other way round, the balancing
    rule 'the model that sat left less often goes left') is right about half the time, over 5 x 1,000 battles."""
    same = swapped = rule = total = 0
    for seed in range(5):
        lefts = seatings(seed)
        count = Counter()
        for previous, current in zip(lefts, lefts[1:]):
            count[previous] += 1
            same += current == previous
            swapped += current != previous
            if count["base"] != count["dpo-new"]:
                rule += current == min(PAIR, key=lambda m: count[m])
                total += 1
            else:
                rule, total = rule + 0.5, total + 1
    pairs = 5 * (N - 1)
    for name, right in (("same", same / pairs), ("swapped", swapped / pairs), ("rule", rule / total)):
        assert 0.46 <= right <= 0.54, (name, right)


def test_seats_come_from_the_rng_passed_in():
    assert seatings(7, 50) == seatings(7, 50) and seatings(7, 50) != seatings(8, 50)
