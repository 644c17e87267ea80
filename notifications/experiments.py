"""A/B experiments without a database: who gets which variant, which variant won, and whether
the difference is more than chance.

Campaigns use it today and journeys' A/B splits will: nothing here knows about either. Assignment
is a pure function of (experiment key, user id), so every process, retry and re-plan puts a
person in the same bucket without storing anything; the test is the two-proportion z-test
(normal approximation, pooled variance), computed with ``math.erfc`` so no SciPy is needed.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

BUCKETS = 10_000  # assignment resolution: shares are honoured to 0.01 %
METRIC_NAMES = {"opens": gettext_lazy("opens"), "clicks": gettext_lazy("clicks")}


def bucket(*, key: str, user_id: int) -> int:
    """A stable number in ``0..BUCKETS-1`` for this person in this experiment.

    SHA-256 rather than ``hash()``: Python's string hash changes per process.
    """
    digest = hashlib.sha256(f"{key}:{user_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % BUCKETS


def assign(*, key: str, user_id: int, shares: Sequence[tuple[str, float]]) -> str | None:
    """The variant of ``shares`` (label, percent) this person falls in, or None for the rest.

    Shares are percentages of everyone and are laid end to end (A: 0–10 %, B: 10–20 %, ...), so
    the same person keeps their variant when only the rest's size changes.
    """
    point = bucket(key=key, user_id=user_id)
    edge = 0.0
    for label, percent in shares:
        edge += percent * BUCKETS / 100
        if point < edge:
            return label
    return None


def even_shares(*, labels: Sequence[str], test_percent: float) -> list[tuple[str, float]]:
    """``test_percent`` of everyone split evenly among ``labels``."""
    if not labels:
        return []
    each = test_percent / len(labels)
    return [(label, each) for label in labels]


@dataclass(frozen=True)
class ZTest:
    """Two proportions compared: ``p_value`` is two-sided; None when either side has no trials."""

    z: float | None
    p_value: float | None

    def significant(self, level: float = 0.95) -> bool:
        return self.p_value is not None and self.p_value < 1 - level


def two_proportion_z_test(*, successes_a: int, trials_a: int, successes_b: int, trials_b: int) -> ZTest:
    """Is rate B different from rate A? The pooled two-proportion z-test.

    With no trials on a side, or no variance at all (both 0 % or both 100 %), there is nothing
    to test: ``z`` and ``p_value`` are None (or z 0, p 1 when both rates are equal and extreme).
    """
    if trials_a <= 0 or trials_b <= 0:
        return ZTest(z=None, p_value=None)
    rate_a, rate_b = successes_a / trials_a, successes_b / trials_b
    pooled = (successes_a + successes_b) / (trials_a + trials_b)
    variance = pooled * (1 - pooled) * (1 / trials_a + 1 / trials_b)
    if variance <= 0:
        return ZTest(z=0.0, p_value=1.0)
    z = (rate_b - rate_a) / math.sqrt(variance)
    return ZTest(z=z, p_value=math.erfc(abs(z) / math.sqrt(2)))


@dataclass(frozen=True)
class VariantCounts:
    """One variant's figures for the test: ``trials`` reached (sent), ``opens``, ``clicks``."""

    label: str
    trials: int
    opens: int
    clicks: int

    def successes(self, metric: str) -> int:
        if metric not in METRIC_NAMES:
            raise ValueError(f"Unknown metric: {metric!r}.")
        return self.opens if metric == "opens" else self.clicks

    def rate(self, metric: str) -> float | None:
        return self.successes(metric) / self.trials if self.trials else None


@dataclass(frozen=True)
class Verdict:
    """The leader by ``metric`` and how sure we are: the leader against the runner-up."""

    metric: str
    leader: str | None
    runner_up: str | None
    test: ZTest
    level: float = 0.95

    @property
    def significant(self) -> bool:
        return self.test.significant(self.level)

    @property
    def note(self) -> str:
        """One sentence for a marketer: "B beats A on clicks, significant at 95 %"."""
        metric = str(METRIC_NAMES.get(self.metric, self.metric))
        if self.leader is None or self.runner_up is None or self.test.p_value is None:
            return _("Not enough data yet to compare the variants.")
        words = {"leader": self.leader, "other": self.runner_up, "metric": metric,
                 "level": f"{self.level * 100:g}", "p": f"{self.test.p_value:.3f}"}
        if self.test.z == 0:
            return _("%(leader)s and %(other)s are level on %(metric)s.") % words
        if self.significant:
            return _("%(leader)s beats %(other)s on %(metric)s, significant at %(level)s %% (p = %(p)s).") % words
        return _("%(leader)s leads %(other)s on %(metric)s, not significant yet (p = %(p)s).") % words


def verdict(*, counts: Sequence[VariantCounts], metric: str, level: float = 0.95) -> Verdict:
    """The leading variant by ``metric`` rate (ties go to the earlier label, so a tie keeps the
    first variant, usually the control) and the test of it against the runner-up."""
    ranked = sorted(
        (c for c in counts if c.trials), key=lambda c: (-(c.rate(metric) or 0.0), c.label)
    )
    if len(ranked) < 2:
        return Verdict(metric=metric, leader=ranked[0].label if ranked else None, runner_up=None,
                       test=ZTest(None, None), level=level)
    best, second = ranked[0], ranked[1]
    test = two_proportion_z_test(successes_a=second.successes(metric), trials_a=second.trials,
                                 successes_b=best.successes(metric), trials_b=best.trials)
    return Verdict(metric=metric, leader=best.label, runner_up=second.label, test=test, level=level)


def winner(*, counts: Sequence[VariantCounts], metric: str) -> str | None:
    """The variant to send the rest: the leader by ``metric``, significant or not (the window
    ended; the note says how sure). None when no variant reached anyone."""
    return verdict(counts=counts, metric=metric).leader


def counts_from(rows: Mapping[str, Mapping[str, int]]) -> list[VariantCounts]:
    """``VariantCounts`` from ``{label: {"trials", "opens", "clicks"}}``, in label order."""
    return [VariantCounts(label=label, trials=row.get("trials", 0), opens=row.get("opens", 0),
                          clicks=row.get("clicks", 0)) for label, row in sorted(rows.items())]
