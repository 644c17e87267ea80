"""notifications.experiments: stable assignment, the two-proportion z-test against known values."""

from __future__ import annotations

import math
from collections import Counter

import pytest

from notifications import experiments
from notifications.experiments import VariantCounts, two_proportion_z_test, verdict


def test_assignment_is_stable_and_follows_the_shares():
    shares = experiments.even_shares(labels=["A", "B", "C"], test_percent=30)
    first = [experiments.assign(key="exp-1", user_id=uid, shares=shares) for uid in range(20_000)]
    again = [experiments.assign(key="exp-1", user_id=uid, shares=shares) for uid in range(20_000)]
    assert first == again
    counts = Counter(first)
    for label in "ABC":
        assert 1_800 < counts[label] < 2_200  # 10 % each of 20,000
    assert 13_500 < counts[None] < 14_500
    other = [experiments.assign(key="exp-2", user_id=uid, shares=shares) for uid in range(2_000)]
    assert other != first[:2_000]  # another experiment shuffles people differently


def test_z_test_matches_known_values():
    # R: prop.test(c(200, 250), c(1000, 1000), correct = FALSE) -> X-squared = 7.1685 (= z²),
    # p-value = 0.00742
    test = two_proportion_z_test(successes_a=200, trials_a=1000, successes_b=250, trials_b=1000)
    assert test.z**2 == pytest.approx(7.1685, abs=1e-4)
    assert test.p_value == pytest.approx(0.00742, abs=1e-5)
    # R: prop.test(c(45, 50), c(500, 500), correct = FALSE) -> X-squared = 0.29078, p-value = 0.5897
    small = two_proportion_z_test(successes_a=45, trials_a=500, successes_b=50, trials_b=500)
    assert small.z**2 == pytest.approx(0.29078, abs=1e-5)
    assert small.p_value == pytest.approx(0.5897, abs=1e-4)
    assert not small.significant() and test.significant() and not test.significant(level=0.999)
    assert two_proportion_z_test(successes_a=0, trials_a=0, successes_b=1, trials_b=10).p_value is None
    assert two_proportion_z_test(successes_a=0, trials_a=10, successes_b=0, trials_b=10).p_value == 1.0
    assert math.isclose(test.p_value, math.erfc(abs(test.z) / math.sqrt(2)))


def test_verdict_names_the_leader_and_says_how_sure():
    counts = [VariantCounts("A", 1000, 300, 200), VariantCounts("B", 1000, 310, 250)]
    clicks = verdict(counts=counts, metric="clicks")
    assert (clicks.leader, clicks.runner_up) == ("B", "A")
    assert clicks.note == "B beats A on clicks, significant at 95 % (p = 0.007)."
    opens = verdict(counts=counts, metric="opens")
    assert opens.leader == "B" and opens.note.startswith("B leads A on opens, not significant yet")
    assert verdict(counts=[VariantCounts("A", 0, 0, 0), VariantCounts("B", 0, 0, 0)], metric="clicks").note == (
        "Not enough data yet to compare the variants.")
    tie = verdict(counts=[VariantCounts("B", 100, 10, 5), VariantCounts("A", 100, 10, 5)], metric="clicks")
    assert tie.leader == "A"  # a tie keeps the earlier label
    assert experiments.winner(counts=counts + [VariantCounts("C", 1000, 100, 400)], metric="clicks") == "C"
