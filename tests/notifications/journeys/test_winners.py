"""Auto-winner splits: after the window the best arm by the ledger takes everyone after, once."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError

from notifications.journeys import winners as winners_module
from notifications.journeys.engine import journeys_tick
from notifications.journeys.services import journey_enter, journey_publish
from notifications.journeys.winners import split_winners_decide
from notifications.models import AuditEntry, Delivery, JourneyEnrollment, JourneyStepRun, JourneyVersion

from .conftest import T0, make_people

pytestmark = pytest.mark.django_db


def ab_graph(metric="clicks", hours=24) -> dict:
    return {
        "start": "ab",
        "steps": [
            {"id": "ab", "type": "split", "auto_winner": {"metric": metric, "hours": hours},
             "arms": [{"name": "A", "percent": 50, "next": "send-a"}, {"name": "B", "percent": 50, "next": "send-b"}]},
            {"id": "send-a", "type": "send", "template": "j-tip", "channels": ["email"]},
            {"id": "send-b", "type": "send", "template": "j-reminder", "channels": ["email"]},
        ],
    }


def _arms(version) -> Counter:
    return Counter(JourneyStepRun.objects.filter(version=version, step_id="ab").values_list("outcome", flat=True))


def test_after_the_window_the_rest_take_the_winner_by_clicks_and_counts_match_the_ledger(make_journey):
    journey = make_journey(graph=ab_graph())
    version = journey.current_version
    tested = make_people(400, prefix="t")
    journey_enter(journey=journey, user_ids=tested, now=T0)
    journeys_tick(now=T0)
    split = _arms(version)
    assert split["A"] > 150 and split["B"] > 150
    # B's message gets clicked by half its people, A's by a tenth.
    b_keys = Delivery.objects.filter(idempotency_key__contains=":send-b:").order_by("pk")
    a_keys = Delivery.objects.filter(idempotency_key__contains=":send-a:").order_by("pk")
    Delivery.objects.update(status="sent")
    Delivery.objects.filter(pk__in=list(b_keys.values_list("pk", flat=True)[::2])).update(
        status="clicked", opened_at=T0 + timedelta(hours=1), clicked_at=T0 + timedelta(hours=1))
    Delivery.objects.filter(pk__in=list(a_keys.values_list("pk", flat=True)[::10])).update(
        status="clicked", opened_at=T0 + timedelta(hours=1), clicked_at=T0 + timedelta(hours=1))

    # Within the window: still split.
    early = make_people(100, prefix="e")
    journey_enter(journey=journey, user_ids=early, now=T0 + timedelta(hours=2))
    journeys_tick(now=T0 + timedelta(hours=2))
    version.refresh_from_db()
    assert version.winners == {}
    assert _arms(version)["A"] > split["A"]

    # After it: B wins, and the rest all go to B.
    before = _arms(version)
    rest = make_people(300, prefix="r")
    journey_enter(journey=journey, user_ids=rest, now=T0 + timedelta(hours=25))
    journeys_tick(now=T0 + timedelta(hours=25))
    version.refresh_from_db()
    chosen = version.winners["ab"]
    assert chosen["arm"] == "B" and chosen["significant"]
    after = _arms(version)
    assert after["A"] == before["A"] and after["B"] == before["B"] + 300
    rest_keys = Delivery.objects.filter(recipient_id__in=rest).values_list("idempotency_key", flat=True)
    assert len(rest_keys) == 300 and all(":send-b:" in key for key in rest_keys)
    # The stored counts are the ledger's: the early people's messages were still only planned (not
    # reached), so the trials are the tested people's sent ones.
    ledger = Delivery.objects.exclude(recipient_id__in=rest).exclude(status="planned")
    assert ledger.exists() and Delivery.objects.filter(recipient_id__in=early, status="planned").exists()
    assert chosen["counts"]["B"] == {"trials": ledger.filter(idempotency_key__contains=":send-b:").count(),
                                     "opens": ledger.filter(idempotency_key__contains=":send-b:",
                                                            opened_at__isnull=False).count(),
                                     "clicks": ledger.filter(idempotency_key__contains=":send-b:",
                                                             clicked_at__isnull=False).count()}
    assert AuditEntry.objects.filter(action="journey.split_winner").count() == 1
    # The tick again: nothing is decided twice.
    journeys_tick(now=T0 + timedelta(hours=30))
    assert AuditEntry.objects.filter(action="journey.split_winner").count() == 1


def test_a_racing_tick_keeps_the_first_choice(make_journey, monkeypatch):
    journey = make_journey(graph=ab_graph(metric="goal", hours=1))
    version = journey.current_version
    journey_enter(journey=journey, user_ids=make_people(50), now=T0)
    journeys_tick(now=T0)
    b_people = JourneyStepRun.objects.filter(version=version, step_id="ab", outcome="B").values("enrollment_id")
    JourneyEnrollment.objects.filter(pk__in=b_people).update(state="converted")

    counts = winners_module.arm_counts

    def another_tick_wins_meanwhile(version_, split):
        # Another tick decided "A" between this one's read and its write.
        JourneyVersion.objects.filter(pk=version_.pk).update(winners={"ab": {"arm": "A", "metric": "goal"}})
        return counts(version_, split)

    monkeypatch.setattr(winners_module, "arm_counts", another_tick_wins_meanwhile)
    assert split_winners_decide(now=T0 + timedelta(hours=2)) == 0
    version.refresh_from_db()
    assert version.winners["ab"]["arm"] == "A"
    assert not AuditEntry.objects.filter(action="journey.split_winner").exists()


def test_goal_metric_picks_the_converting_arm(make_journey):
    journey = make_journey(graph=ab_graph(metric="goal", hours=1))
    version = journey.current_version
    journey_enter(journey=journey, user_ids=make_people(80), now=T0)
    journeys_tick(now=T0)
    a_people = JourneyStepRun.objects.filter(version=version, step_id="ab", outcome="A").values("enrollment_id")
    JourneyEnrollment.objects.filter(pk__in=a_people).update(state="converted")
    assert split_winners_decide(now=T0 + timedelta(minutes=30)) == 0  # window not over
    assert split_winners_decide(now=T0 + timedelta(hours=1)) == 1
    version.refresh_from_db()
    assert version.winners["ab"]["arm"] == "A"
    assert version.winners["ab"]["counts"]["A"]["opens"] == _arms(version)["A"]


def test_an_arm_that_sends_nothing_cannot_be_measured_by_clicks(make_journey):
    graph = ab_graph()
    graph["steps"][0]["arms"][1]["next"] = "stop"
    graph["steps"] = [s for s in graph["steps"] if s["id"] != "send-b"] + [{"id": "stop", "type": "exit"}]
    journey = make_journey(graph=graph, publish=False)
    with pytest.raises(ValidationError, match="cannot be counted"):
        journey_publish(journey=journey, actor=None)
