"""Engagement conditions in audiences (issue 13, point 4): opened, clicked a link, was sent,
received / did not open a campaign or a run. Each test builds the ledger a marketer's people
would have (deliveries and receipts, some through the real open pixel and click redirect) and
checks exactly who the condition selects, in the count and the sample the editor shows."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse
from django.utils import timezone

from notifications.audiences import audience_builder_schema, audience_preview, audience_q, audience_rules_validate
from notifications.models import Audience, Campaign, CampaignRun, Delivery
from notifications.receipts import tracking
from tests.factories import CategoryFactory, DeliveryFactory, MessageTemplateFactory, UserFactory

pytestmark = pytest.mark.django_db
User = get_user_model()

SAFARI = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko)"
APPLE_PROXY = "Mozilla/5.0"  # Mail Privacy Protection's pre-fetch: a machine open


def ago(**delta):
    return timezone.now() - timedelta(**delta)


def matching(rules) -> list[str]:
    users = User.objects.filter(is_active=True).filter(audience_q(rules=rules))
    return sorted(users.values_list("username", flat=True))


def cond(field, op, value=None) -> dict:
    node = {"field": field, "op": op}
    if value is not None:
        node["value"] = value
    return {"all": [node]}


@pytest.fixture
def people():
    return {name: UserFactory(username=name) for name in ("ada", "bob", "cy", "dee", "eve")}


def campaign_with_runs(name: str, runs: int = 1) -> tuple[Campaign, list[CampaignRun]]:
    audience = Audience.objects.create(name=f"{name} audience", kind=Audience.Kind.STATIC)
    campaign = Campaign.objects.create(
        name=name, audience=audience, template=MessageTemplateFactory(), category=CategoryFactory(),
        channels=["email"], status=Campaign.Status.COMPLETED,
    )
    made = [
        CampaignRun.objects.create(campaign=campaign, occurrence=ago(days=10 - i), status=CampaignRun.Status.COMPLETED)
        for i in range(runs)
    ]
    return campaign, made


def sent(user, *, run=None, channel="email", when=None, **fields) -> Delivery:
    when = when or ago(days=3)
    defaults = {"status": "sent", "sent_at": when, "created_at": when}
    return DeliveryFactory(recipient=user, run=run, channel=channel, **{**defaults, **fields})


# --- Opened an email in the last N days ----------------------------------------------------


def test_opened_in_the_last_days_counts_real_opens_and_clicks_not_machine_opens(client, people):
    ada_mail = sent(people["ada"])
    assert client.get(tracking.open_pixel_url(ada_mail), HTTP_USER_AGENT=SAFARI).status_code == 200
    tracking.receipt_record(delivery=sent(people["bob"], when=ago(days=41)), kind="opened", source="pixel",
                            provider_event_id="open:bob", occurred_at=ago(days=40))  # opened, but long ago
    cy_mail = sent(people["cy"])  # images blocked: a click is an open
    tracking.receipt_record(delivery=cy_mail, kind="clicked", source="click", provider_event_id="click:cy",
                            occurred_at=ago(days=2))
    dee_mail = sent(people["dee"])
    assert client.get(tracking.open_pixel_url(dee_mail), HTTP_USER_AGENT=APPLE_PROXY).status_code == 200
    eve_note = sent(people["eve"], channel="inapp")  # an inbox read is not an email open
    tracking.receipt_record(delivery=eve_note, kind="read", source="inbox", occurred_at=ago(days=1))
    # ada's old mail, opened after she had clicked it: the open's own time counts.
    ada_old = sent(people["ada"], when=ago(days=50))
    tracking.receipt_record(delivery=ada_old, kind="clicked", source="click", provider_event_id="click:ada",
                            occurred_at=ago(days=45))
    tracking.receipt_record(delivery=ada_old, kind="opened", source="anymail:postmark", provider_event_id="pm-open",
                            occurred_at=ago(days=20))

    assert matching(cond("engagement.opened", "within_days", 30)) == ["ada", "cy"]
    assert matching(cond("engagement.opened", "not_within_days", 30)) == ["bob", "dee", "eve"]
    assert matching(cond("engagement.opened", "within_days", 60)) == ["ada", "bob", "cy"]
    people["ada"].deliveries.exclude(pk=ada_old.pk).delete()
    assert matching(cond("engagement.opened", "within_days", 30)) == ["ada", "cy"]  # the later open, by the ESP
    assert matching(cond("engagement.opened", "within_days", 10)) == ["cy"]


# --- Clicked a link containing Y in the last N days ----------------------------------------


def test_clicked_a_link_containing_text_through_the_real_click_redirect(client, people):
    html = '<a href="https://shop.example/Pricing?plan=pro">Plans</a> <a href="https://shop.example/blog">Blog</a>'
    ada_mail, bob_mail = sent(people["ada"]), sent(people["bob"])
    ada_links = re.findall(r'href="([^"]+)"', tracking.links_rewrite(delivery=ada_mail, html=html))
    bob_links = re.findall(r'href="([^"]+)"', tracking.links_rewrite(delivery=bob_mail, html=html))
    assert client.get(ada_links[0]).status_code == 302  # ada clicks the pricing link (twice)
    assert client.get(ada_links[0]).status_code == 302
    assert client.get(bob_links[1]).status_code == 302  # bob clicks only the blog, beside a pricing link
    # cy clicked pricing, but ten days ago.
    cy_mail = sent(people["cy"], when=ago(days=12))
    cy_link = cy_mail.links.create(url="https://shop.example/pricing", position=0)
    tracking.receipt_record(delivery=cy_mail, kind="clicked", source="click", provider_event_id=f"click:{cy_link.pk}",
                            occurred_at=ago(days=10))
    # dee's provider tracked the click and told us the address (anymail's click_url).
    tracking.receipt_record(delivery=sent(people["dee"]), kind="clicked", source="anymail:postmark",
                            provider_event_id="pm-1", data={"click_url": "https://shop.example/PRICING"})

    within_week = {"text": "pricing", "days": 7}
    assert matching(cond("engagement.clicked", "contains_within_days", within_week)) == ["ada", "dee"]
    assert matching(cond("engagement.clicked", "not_contains_within_days", within_week)) == ["bob", "cy", "eve"]
    assert matching(cond("engagement.clicked", "contains_within_days", {"text": "pricing", "days": 30})) == [
        "ada", "cy", "dee"]
    assert matching(cond("engagement.clicked", "contains_within_days", {"text": "/blog", "days": 7})) == ["bob"]


# --- Has not been sent anything for N days --------------------------------------------------


def test_not_sent_anything_for_days_on_any_channel_or_one(people):
    sent(people["ada"], when=ago(days=3))
    sent(people["bob"], when=ago(days=20))
    sent(people["bob"], channel="sms", when=ago(days=2))
    # dee's message was planned but suppressed: nothing was sent.
    DeliveryFactory(recipient=people["dee"], status="suppressed", created_at=ago(days=1))
    sent(people["eve"], when=ago(days=40))

    assert matching(cond("engagement.sent", "not_within_days", {"days": 14})) == ["cy", "dee", "eve"]
    assert matching(cond("engagement.sent", "not_within_days", {"days": 14, "channel": "email"})) == [
        "bob", "cy", "dee", "eve"]
    assert matching(cond("engagement.sent", "within_days", {"days": 14, "channel": "sms"})) == ["bob"]
    assert matching(cond("engagement.sent", "within_days", {"days": 60, "channel": ""})) == ["ada", "bob", "eve"]


# --- Received campaign X / did not open campaign X ------------------------------------------


def test_received_and_did_not_open_a_campaign(client, people):
    campaign, (run,) = campaign_with_runs("Spring sale")
    ada_mail = sent(people["ada"], run=run)
    client.get(tracking.open_pixel_url(ada_mail), HTTP_USER_AGENT=SAFARI)  # ada opened it
    sent(people["bob"], run=run, status="delivered", delivered_at=ago(days=3))  # bob did not
    sent(people["cy"], run=run, status="bounced")  # accepted, then bounced: not received
    sent(people["dee"], run=run, channel="sms")  # an SMS: nobody can tell whether dee "opened" it
    other, _runs = campaign_with_runs("Autumn sale")
    sent(people["eve"], run=_runs[0])
    ids = [campaign.pk]

    assert matching(cond("engagement.campaign", "received", ids)) == ["ada", "bob", "dee"]
    assert matching(cond("engagement.campaign", "opened", ids)) == ["ada"]
    assert matching(cond("engagement.campaign", "not_opened", ids)) == ["bob"]
    assert matching(cond("engagement.campaign", "not_received", ids)) == ["cy", "eve"]
    assert matching(cond("engagement.campaign", "received", [campaign.pk, other.pk])) == ["ada", "bob", "dee", "eve"]


def test_a_run_is_told_apart_from_the_other_runs_of_its_campaign(people):
    _campaign, (first, second) = campaign_with_runs("Weekly digest", runs=2)
    sent(people["ada"], run=first, status="opened", opened_at=ago(days=9))
    sent(people["ada"], run=second)
    sent(people["bob"], run=second, status="clicked", clicked_at=ago(days=1))

    assert matching(cond("engagement.campaign_run", "not_opened", [second.pk])) == ["ada"]
    assert matching(cond("engagement.campaign_run", "not_opened", [first.pk])) == []
    assert matching(cond("engagement.campaign_run", "received", [first.pk])) == ["ada"]
    assert matching(cond("engagement.campaign", "opened", [_campaign.pk])) == ["ada", "bob"]


def test_conditions_combine_without_duplicating_people(people):
    campaign, (run,) = campaign_with_runs("Spring sale")
    for _ in range(3):  # several deliveries each: the count stays one per person
        sent(people["ada"], run=run, idempotency_key=f"k{_}", status="opened", opened_at=ago(days=1))
    sent(people["bob"], run=run)
    rules = {"any": [
        {"field": "engagement.campaign", "op": "opened", "value": [campaign.pk]},
        {"field": "engagement.sent", "op": "within_days", "value": {"days": 7}},
    ]}
    preview = audience_preview(rules=rules)
    assert preview.count == 2
    assert [row["username"] for row in preview.sample] == ["ada", "bob"]


# --- Bad values are rule errors, never a 500 -------------------------------------------------


@pytest.mark.parametrize(("node", "says"), [
    ({"field": "engagement.opened", "op": "within_days", "value": -3}, "between 1 and 3650"),
    ({"field": "engagement.opened", "op": "within_days", "value": "30"}, "whole number"),
    ({"field": "engagement.clicked", "op": "contains_within_days", "value": {"text": "", "days": 7}}, "enter a value"),
    ({"field": "engagement.clicked", "op": "contains_within_days", "value": {"text": "x", "days": 0}}, "between 1"),
    ({"field": "engagement.clicked", "op": "contains_within_days", "value": "pricing"}, '{"text": text'),
    ({"field": "engagement.sent", "op": "not_within_days", "value": {"days": 14, "channel": "fax"}}, "not a channel"),
    ({"field": "engagement.sent", "op": "not_within_days", "value": {"days": 14, "zone": "x"}}, '{"days": number}'),
    ({"field": "engagement.campaign", "op": "not_opened", "value": [987654]}, "not one of the choices"),
    ({"field": "engagement.campaign_run", "op": "received", "value": []}, "choose at least one"),
    ({"field": "engagement.campaign", "op": "bounced", "value": [1]}, "not one of its operators"),
])
def test_bad_values_are_positioned_rule_errors(node, says):
    errors = audience_rules_validate(rules={"all": [node]})
    assert len(errors) == 1 and says in errors[0], errors
    assert errors[0].startswith("Condition 1")


def test_the_live_preview_and_the_form_answer_bad_values_with_sentences(admin_client):
    bad = cond("engagement.campaign", "not_opened", [987654])
    response = admin_client.post(reverse("admin:notifications_audience_preview"), {"rules": json.dumps(bad)},
                                 HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    assert "Condition 1 (Campaign): &#x27;987654&#x27; is not one of the choices" in response.content.decode()
    response = admin_client.post(reverse("admin:notifications_audience_add"), {
        "name": "Lapsed", "kind": "rules", "rules": json.dumps(cond("engagement.opened", "within_days", -1)),
    })
    assert response.status_code == 200
    assert "must be between 1 and 3650" in response.content.decode()
    assert not Audience.objects.filter(name="Lapsed").exists()


# --- The editor: builder schema, live count and sample, query count -------------------------


def test_builder_offers_the_conditions_with_their_inputs_and_choices(people):
    campaign, (run,) = campaign_with_runs("Spring sale")
    campaign_with_runs("Never run")[1][0].delete()  # a campaign without runs is not offered
    by_key = {f["key"]: f for f in audience_builder_schema()["fields"]}
    assert {op["type"] for op in by_key["engagement.opened"]["ops"]} == {"days"}
    assert {op["type"] for op in by_key["engagement.clicked"]["ops"]} == {"text_days"}
    assert {op["type"] for op in by_key["engagement.sent"]["ops"]} == {"days_channel"}
    assert ["email", "Email"] in [list(c) for c in by_key["engagement.sent"]["choices"]]
    assert by_key["engagement.campaign"]["choices"] == [(campaign.pk, "Spring sale")]
    assert [pk for pk, _label in by_key["engagement.campaign_run"]["choices"]] == [run.pk]
    assert by_key["engagement.campaign_run"]["choices"][0][1].startswith("Spring sale · ")
    assert by_key["engagement.campaign"]["group"] == "Engagement"


def test_the_builder_lists_the_newest_runs_and_an_older_run_stays_valid(monkeypatch, people):
    from notifications.audiences import engagement

    monkeypatch.setattr(engagement, "RUN_CHOICES", 2)
    _campaign, runs = campaign_with_runs("Daily tip", runs=3)  # the first is the oldest
    by_key = {f["key"]: f for f in audience_builder_schema()["fields"]}
    offered = [pk for pk, _label in by_key["engagement.campaign_run"]["choices"]]
    assert offered == [runs[2].pk, runs[1].pk]
    sent(people["ada"], run=runs[0])
    assert audience_rules_validate(rules=cond("engagement.campaign_run", "received", [runs[0].pk])) == []
    assert matching(cond("engagement.campaign_run", "received", [runs[0].pk])) == ["ada"]
    gone = runs[0].pk
    Delivery.objects.filter(run_id=gone).delete()
    runs[0].delete()
    assert "not one of the choices" in audience_rules_validate(rules=cond("engagement.campaign_run", "received", [gone]))[0]


def test_live_preview_of_engagement_rules_takes_a_fixed_number_of_queries(admin_client, people,
                                                                           django_assert_num_queries):
    campaign, (run,) = campaign_with_runs("Spring sale")
    for name in ("ada", "bob", "cy"):
        sent(people[name], run=run)
    rules = {"all": [
        {"field": "engagement.campaign", "op": "not_opened", "value": [campaign.pk]},
        {"field": "engagement.campaign_run", "op": "received", "value": [run.pk]},
        {"field": "engagement.opened", "op": "not_within_days", "value": 30},
        {"field": "engagement.clicked", "op": "not_contains_within_days", "value": {"text": "pricing", "days": 7}},
        {"field": "engagement.sent", "op": "within_days", "value": {"days": 14, "channel": "email"}},
    ]}
    url = reverse("admin:notifications_audience_preview")
    admin_client.post(url, {"rules": json.dumps(rules)})  # warm the session
    # Session and user (2), the named campaigns and runs (2), the count and the sample (2).
    with django_assert_num_queries(6):
        response = admin_client.post(url, {"rules": json.dumps(rules)}, HTTP_HX_REQUEST="true")
    assert 'data-count="3"' in response.content.decode()
    for name in ("dee", "eve"):  # more people, more ledger: the same queries
        sent(people[name], run=run)
    with django_assert_num_queries(6):
        response = admin_client.post(url, {"rules": json.dumps(rules)}, HTTP_HX_REQUEST="true")
    assert 'data-count="5"' in response.content.decode()


def test_validating_campaign_and_run_rules_looks_up_only_the_ids_given(people):
    # A rule naming two runs must not read every run or campaign id there is to check them.
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    campaign, runs = campaign_with_runs("Daily tip", runs=3)
    other, _other_runs = campaign_with_runs("Weekly", runs=1)
    rules = {"all": [{"field": "engagement.campaign_run", "op": "received", "value": [runs[0].pk, runs[2].pk]},
                     {"field": "engagement.campaign", "op": "opened", "value": [campaign.pk, other.pk]}]}
    with CaptureQueriesContext(connection) as ctx:
        assert audience_rules_validate(rules=rules) == []
    reads = [q["sql"] for q in ctx.captured_queries if "campaign" in q["sql"]]
    assert len(reads) == 2
    assert all(" IN (" in sql or "ANY(" in sql for sql in reads), reads
    draft = Campaign.objects.create(name="Never sent", audience=campaign.audience, template=campaign.template,
                                    category=campaign.category, channels=["email"])
    errors = audience_rules_validate(rules=cond("engagement.campaign", "received", [draft.pk]))
    assert "not one of the choices" in errors[0]
