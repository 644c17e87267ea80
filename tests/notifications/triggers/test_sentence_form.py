"""The trigger form as a sentence: labels, lists narrowed to the model, condition rows, duplicate
warnings, the dry run on a real instance, and the one-message-per-template-per-event rule."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.urls import reverse

from accounts.roles import roles_ensure
from demo_shop.models import Order
from demo_shop.services import order_mark_paid
from notifications.models import Delivery, Notification, SignalTrigger

pytestmark = pytest.mark.django_db

ADD = reverse("admin:notifications_signaltrigger_add")
CHECK = reverse("admin:notifications_signaltrigger_check")


def dry_run_url(trigger) -> str:
    return reverse("admin:notifications_signaltrigger_test", args=[trigger.pk])


@pytest.fixture
def marketer(client):
    roles_ensure()
    user = get_user_model().objects.create_user("mia", "mia@example.com", "pw", is_staff=True)
    user.groups.add(Group.objects.get(name="Marketers"))
    client.force_login(user)
    return user


@pytest.fixture
def rows(paid_template, order_updates):
    """The form as the sentence posts it: conditions as field/op/value rows."""

    def data(conditions=(), **overrides) -> dict:
        values = {
            "name": "Paid orders", "is_active": "on", "signal": "model.post_save", "model": "demo_shop.order",
            "events": ["updated"], "changed_field": "status", "changed_to": "paid",
            "recipient_path": "customer.user", "audience": "", "template": paid_template.pk,
            "category": order_updates.pk, "channels": ["inapp", "email"], "dedupe_window": "0", "_save": "Save",
        }
        for n, (field, op, value) in enumerate(conditions):
            values.update({f"conditions-{n}-field": field, f"conditions-{n}-op": op, f"conditions-{n}-value": value})
        values.update(overrides)
        return {k: v for k, v in values.items() if v is not None}

    return data


def test_labels_are_capitalised_and_read_as_a_sentence(client, marketer):
    html = client.get(ADD).content.decode()
    for label in ("Signal", "Model", "Events", "Field that changes", "Changes to", "Conditions", "Recipients",
                  "Channels", "Template"):
        assert f">{label}" in html, label
    for word in (">When<", ">changes to<", ">send<", ">by<"):
        assert word in html
    assert "null" not in html.split('id="sb-trigger-schema"')[0].split("data-trigger-builder")[1]
    # Channels are checkboxes, not a JSON box.
    assert 'type="checkbox" name="channels" value="inapp"' in html


def test_lists_are_narrowed_to_the_chosen_model_without_duplicates(client, marketer):
    form = client.get(ADD + "?signal=model.post_save&model=demo_shop.order").context["adminform"].form
    fields = [value for value, _label in form.fields["changed_field"].widget.choices]
    assert fields == ["", "customer", "number", "status", "total", "currency", "created_at", "paid_at"]
    assert "vip" not in fields and fields.count("created_at") == 1
    labels = dict(form.fields["changed_field"].widget.choices)
    assert labels["status"] == "Status" and labels["paid_at"] == "Paid"
    assert [v for v, _ in form.fields["recipient_path"].widget.choices] == ["", "customer.user"]
    assert [v for v, _ in form.fields["conditions"].widget.field_choices] == fields
    customer = client.get(ADD + "?signal=model.post_save&model=demo_shop.customer").context["adminform"].form
    assert [v for v, _ in customer.fields["changed_field"].widget.choices] == ["", "user", "company", "vip",
                                                                              "created_at"]
    schema = client.get(ADD).context["trigger_schema"]
    status = next(f for f in schema["subjects"]["demo_shop.order"]["fields"] if f["name"] == "status")
    assert ["paid", "Paid"] in status["choices"]
    assert schema["subjects"]["demo_shop.order"]["paths"] == ["customer.user"]


def test_condition_rows_become_the_stored_json(client, marketer, rows):
    response = client.post(ADD, rows(conditions=[("total", "gte", "10"), ("currency", "in", "EUR, USD"),
                                                 ("paid_at", "is_empty", "false"), ("", "eq", "")]))
    assert response.status_code == 302, response.context["adminform"].form.errors
    trigger = SignalTrigger.objects.get()
    assert trigger.conditions == [
        {"field": "total", "op": "gte", "value": "10"},
        {"field": "currency", "op": "in", "value": ["EUR", "USD"]},
        {"field": "paid_at", "op": "is_empty", "value": False},
    ]
    html = client.get(reverse("admin:notifications_signaltrigger_change", args=[trigger.pk])).content.decode()
    assert 'name="conditions-1-value" value="EUR, USD"' in html


@pytest.mark.parametrize(
    ("conditions", "message"),
    [
        ([("total", "gte", "lots")], "Condition 1 (total)"),
        ([("status", "eq", "lost")], "is not one of"),
        ([("vip", "eq", "true")], "not a field you can test"),
        ([("", "eq", "5")], "choose a field"),
        ([("total", "like", "5")], "choose an operator"),
        ([("total", "in", "")], "non-empty list"),
        ([("total", "gte", "1")] * 21, "At most 20"),
    ],
)
def test_bad_rows_are_form_errors(client, marketer, rows, conditions, message):
    response = client.post(ADD, rows(conditions=conditions))
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert message.lower() in str(errors["conditions"]).lower(), errors
    assert not SignalTrigger.objects.exists()
    assert 'name="conditions-0-field"' in response.content.decode()  # the rows are shown again


def test_a_second_trigger_on_the_same_event_is_a_duplicate(client, marketer, rows, make_trigger):
    first = make_trigger(name="Order paid → customer", events=["updated"])
    live = client.post(CHECK, rows())
    assert live.status_code == 200
    assert "Order paid → customer" in live.content.decode() and 'data-testid="trigger-duplicate"' in live.content.decode()
    saved = client.post(ADD, rows(), follow=True)
    assert "Order paid → customer" in saved.content.decode()
    assert any("same template" in str(m) for m in saved.context["messages"])
    second = SignalTrigger.objects.exclude(pk=first.pk).get()
    page = client.get(reverse("admin:notifications_signaltrigger_change", args=[second.pk])).content.decode()
    assert 'data-testid="trigger-duplicate"' in page


@pytest.mark.parametrize(
    "overrides",
    [
        {"changed_to": "shipped"},
        {"events": ["created"]},
        {"model": "demo_shop.customer", "changed_field": "", "changed_to": "", "recipient_path": "user"},
        {"signal": "model.post_delete", "events": ["deleted"], "changed_field": "", "changed_to": ""},
    ],
)
def test_different_events_are_not_duplicates(client, marketer, rows, make_trigger, overrides):
    make_trigger(name="Order paid → customer", events=["updated"])
    live = client.post(CHECK, rows(**overrides))
    assert 'data-testid="trigger-duplicate"' not in live.content.decode()


def test_conditions_that_exclude_each_other_are_not_duplicates(client, marketer, rows, make_trigger):
    make_trigger(name="EUR orders", conditions=[{"field": "currency", "op": "eq", "value": "EUR"}])
    assert 'trigger-duplicate' not in client.post(CHECK, rows(conditions=[("currency", "eq", "USD")])).content.decode()
    assert "EUR orders" in client.post(CHECK, rows(conditions=[("total", "gte", "5")])).content.decode()


def test_same_template_on_one_event_is_sent_once(make_trigger, make_order, paid_template, django_capture_on_commit_callbacks):
    """The declared rule: two triggers sending one template for one event reach each person once."""
    make_trigger(name="A")
    make_trigger(name="B", events=["updated"])
    order = make_order()
    with django_capture_on_commit_callbacks(execute=True):
        order_mark_paid(order=order)
    recipient = order.customer.user
    assert Notification.objects.filter(recipient=recipient).count() == 1
    assert Delivery.objects.filter(recipient=recipient, channel="inapp").count() == 1
    assert SignalTrigger.objects.get(name="B").fired_count == 1


def test_different_templates_on_one_event_are_both_sent(make_trigger, make_order, paid_template, order_updates,
                                                         django_capture_on_commit_callbacks):
    other = type(paid_template).objects.create(key="other", name="Other", category=order_updates,
                                               inapp_title="Thanks", inapp_body="x")
    make_trigger(name="A")
    make_trigger(name="B", template=other)
    order = make_order()
    with django_capture_on_commit_callbacks(execute=True):
        order_mark_paid(order=order)
    assert Notification.objects.filter(recipient=order.customer.user).count() == 2


def test_dry_run_shows_whether_it_fires_the_recipients_and_the_message(client, marketer, make_trigger, make_order):
    trigger = make_trigger()
    paid, pending = make_order(status=Order.Status.PAID), make_order()
    page = client.get(dry_run_url(trigger))
    assert page.status_code == 200 and f"#{paid.pk}" in page.content.decode()
    response = client.get(dry_run_url(trigger), {"instance": paid.pk})
    html = response.content.decode()
    assert response.context["run"].fires and 'data-fires="yes"' in html
    assert "cora" in html and f"Order {paid.number} paid" in html
    response = client.get(dry_run_url(trigger), {"instance": pending.pk})
    assert not response.context["run"].fires and 'data-fires="no"' in response.content.decode()
    found = client.get(dry_run_url(trigger), {"q": paid.number}).context["choices"]
    assert [pk for pk, _label in found] == [paid.pk]
    assert not Delivery.objects.exists() and not Notification.objects.exists()  # nothing was sent


@pytest.mark.parametrize("instance", ["999999", "abc", "1 OR 1=1"])
def test_dry_run_of_a_missing_instance_is_explained(client, marketer, make_trigger, instance):
    response = client.get(dry_run_url(make_trigger()), {"instance": instance})
    assert response.status_code == 200
    assert 'data-testid="trigger-test-error"' in response.content.decode()


def test_send_to_me_reaches_only_the_staff_member(client, marketer, make_trigger, make_order):
    trigger = make_trigger()
    order = make_order(status=Order.Status.PAID)
    response = client.post(dry_run_url(trigger), {"instance": order.pk}, follow=True)
    assert response.status_code == 200
    assert Notification.objects.filter(recipient=marketer).count() == 1
    assert not Notification.objects.filter(recipient=order.customer.user).exists()


def test_managers_may_try_but_not_send(client, make_trigger, make_order):
    roles_ensure()
    manager = get_user_model().objects.create_user("meg", is_staff=True)
    manager.groups.add(Group.objects.get(name="Managers"))
    client.force_login(manager)
    trigger = make_trigger()
    order = make_order(status=Order.Status.PAID)
    page = client.get(reverse("admin:notifications_signaltrigger_change", args=[trigger.pk])).content.decode()
    assert "customer.user" in page and "trigger_builder.js" not in page  # read-only values, no builder
    response = client.get(dry_run_url(trigger), {"instance": order.pk})
    assert response.status_code == 200 and 'data-testid="trigger-test-send"' not in response.content.decode()
    assert client.post(dry_run_url(trigger), {"instance": order.pk}).status_code == 403
    assert client.post(CHECK, {}).status_code == 403
    assert not Notification.objects.exists()


def test_the_sentence_reads_in_chinese(client, marketer, make_trigger):
    trigger = make_trigger()
    html = client.get(reverse("admin:notifications_signaltrigger_change", args=[trigger.pk]),
                      HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
    for text in ("变化的字段", "变为", "条件", "信号", "模型", "用真实实例测试"):
        assert text in html, text
    assert "Field that changes" not in html


def test_a_duplicate_with_another_template_says_two_messages(client, marketer, rows, make_trigger, paid_template,
                                                             order_updates):
    other = type(paid_template).objects.create(key="other-dup", name="Other", category=order_updates,
                                               inapp_title="Thanks")
    make_trigger(name="Thank-you note", template=other)
    html = client.post(CHECK, rows()).content.decode()
    assert "Thank-you note" in html and "two messages" in html


def test_audience_triggers_overlap_on_the_same_audience(client, marketer, rows, make_trigger):
    from notifications.models import Audience

    everyone, vips = Audience.objects.create(name="Everyone", kind="static"), Audience.objects.create(
        name="VIPs", kind="static")
    make_trigger(name="Tell everyone", recipient_path="", audience=everyone)
    assert "Tell everyone" in client.post(CHECK, rows(recipient_path="", audience=everyone.pk)).content.decode()
    assert "trigger-duplicate" not in client.post(CHECK, rows(recipient_path="", audience=vips.pk)).content.decode()
    assert "trigger-duplicate" not in client.post(CHECK, rows()).content.decode()  # path, not the audience


def test_a_trigger_on_a_custom_signal_cannot_be_tried_on_an_instance(client, marketer, make_trigger,
                                                                     registry_snapshot):
    from django.dispatch import Signal

    from notifications.triggers import register_signal

    register_signal("shop.refunded", Signal(), label="Refunded", provides=["user"], recipient_paths=["user"])
    trigger = make_trigger(signal="shop.refunded", model="", events=["fired"], changed_field="", changed_to="",
                           recipient_path="user")
    response = client.get(dry_run_url(trigger), {"instance": "1"})
    assert response.status_code == 200
    assert "can be tried on an instance" in response.content.decode()


def test_a_same_template_duplicate_with_a_dedupe_window_says_two_messages(client, marketer, rows, make_trigger):
    """With a dedupe window each trigger keys its own sends (trigger_key_prefix), so "once per
    event" does not hold: the warning must not promise it."""
    from datetime import timedelta

    make_trigger(name="Windowed", dedupe_window=timedelta(hours=1))
    html = client.post(CHECK, rows()).content.decode()
    assert "Windowed" in html and "two messages" in html and "once per event" not in html


def test_dry_run_of_an_audience_trigger_counts_it_and_shows_what_would_hold_it(client, marketer, make_trigger, make_order):
    """An audience trigger's recipients are counted (never read into memory), and a firing over the
    trigger's per-event limit would be held: the dry run says it would not fire, and why."""
    from django.contrib.auth import get_user_model

    from notifications.models import Audience, AudienceMember

    User = get_user_model()
    User.objects.bulk_create(User(username=f"aud{i}", email=f"aud{i}@example.com") for i in range(5))
    audience = Audience.objects.create(name="Five", kind="static")
    AudienceMember.objects.bulk_create(AudienceMember(audience=audience, user=u)
                                       for u in User.objects.filter(username__startswith="aud"))
    trigger = make_trigger(recipient_path="", audience=audience, max_recipients=3)
    paid = make_order(status=Order.Status.PAID)
    run = client.get(dry_run_url(trigger), {"instance": paid.pk}).context["run"]
    assert run.recipient_count == 5 and len(run.recipients) == 5
    assert not run.fires
    assert any(not check.ok and "limit of 3" in check.label for check in run.checks)
    SignalTrigger.objects.filter(pk=trigger.pk).update(max_recipients=10)
    run = client.get(dry_run_url(trigger), {"instance": paid.pk}).context["run"]
    assert run.fires and run.recipient_count == 5


def test_dry_run_states_the_event_it_stands_in_for_without_counting_it_as_a_passed_check(
    client, marketer, make_trigger, make_order
):
    trigger = make_trigger()
    paid = make_order(status=Order.Status.PAID)
    response = client.get(dry_run_url(trigger), {"instance": paid.pk})
    run = response.context["run"]
    assert run.listens_for.startswith("The trigger listens for")
    assert not any("listens for" in str(check.label) for check in run.checks)
    html = response.content.decode()
    assert 'data-testid="trigger-test-event"' in html and "✓ The trigger listens for" not in html
