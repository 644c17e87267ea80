"""Every URL, for every role, against the declared policy (``accounts.url_policy``).

1. Every URL pattern has a rule: a page added without one fails here.
2. For each role (anonymous, a recipient, Marketer, Operator, Manager, superuser), every URL is
   requested for real through the test client. A role the rule does not admit must be refused:
   sent to a login page or answered 403, never served and never allowed to change anything (views
   that only take POST are POSTed). A role the rule admits must not be refused on a page it opens
   with GET. Views may still refuse admitted roles more finely on POST (the services decide who may
   approve or launch); those refusals have their own tests.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from axes.models import AccessAttempt, AccessLog
from django.contrib.contenttypes.models import ContentType
from django.core.files.base import ContentFile
from django.test import override_settings
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.urls.converters import IntConverter

from accounts.roles import roles_ensure
from accounts.url_policy import PUBLIC, STAFF, rule_for, unnamed_rule
from tests.factories import (
    AudienceFactory,
    CategoryFactory,
    CustomerFactory,
    DeliveryFactory,
    MessageTemplateFactory,
    NotificationFactory,
    OrderFactory,
    RecipientProfileFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db
ROLES = ["anonymous", "recipient", "Marketers", "Operators", "Managers", "superuser"]
LOGIN_PATHS = ("/admin/login/", "/accounts/login/")


def url_patterns(patterns=None, prefix="", namespace=None):
    """(route text, URL name or None, pattern) for every URL the project serves."""
    for entry in get_resolver().url_patterns if patterns is None else patterns:
        if isinstance(entry, URLResolver):
            ns = entry.namespace
            inner = f"{namespace}:{ns}" if namespace and ns else (ns or namespace)
            yield from url_patterns(entry.url_patterns, prefix + str(entry.pattern), inner)
        elif isinstance(entry, URLPattern):
            name = f"{namespace}:{entry.name}" if namespace and entry.name else entry.name
            yield prefix + str(entry.pattern), name, entry


def test_every_url_pattern_has_a_rule():
    missing = [
        (route, name) for route, name, _ in url_patterns()
        if (rule_for(name) if name else unnamed_rule(route)) is None
    ]
    assert missing == [], "Add these to accounts.url_policy.URL_POLICY: " + repr(missing)


# --- The walk -------------------------------------------------------------------------------------

def objects(user) -> dict[str, object]:
    """One row of every model the admin shows, and of everything a URL names by id."""
    from channels_adapters.models import CapturedMessage, WebPushSubscription
    from dashboard.models import ImportJob, Report
    from notifications.models import (
        AuditEntry,
        Campaign,
        CampaignRun,
        DeliveryEvent,
        Journey,
        Preference,
        SignalTrigger,
        Suppression,
        WebhookEndpoint,
        WebhookMessage,
    )

    profile = RecipientProfileFactory(user=UserFactory(username="walker-recipient"))
    category = CategoryFactory(key="walk", name="Walk")
    template = MessageTemplateFactory(key="walk", name="Walk")
    audience = AudienceFactory(name="Walk audience", kind="static")
    delivery = DeliveryFactory(recipient=profile.user, category=category)
    campaign = Campaign.objects.create(name="Walk", audience=audience, template=template, category=category)
    found = {
        "auth.user": profile.user,
        "auth.group": Group.objects.get(name="Marketers"),
        "notifications.recipientprofile": profile,
        "notifications.category": category,
        "notifications.preference": Preference.objects.create(user=profile.user, category=category, channel="email"),
        "notifications.suppression": Suppression.objects.create(channel="email", address="gone@example.com",
                                                                reason="manual"),
        "notifications.notification": NotificationFactory(recipient=profile.user),
        "notifications.delivery": delivery,
        "notifications.deliveryevent": DeliveryEvent.objects.create(delivery=delivery, kind="sent", source="t"),
        "notifications.auditentry": AuditEntry.objects.create(action="walk", actor_repr="system"),
        "notifications.audience": audience,
        "notifications.messagetemplate": template,
        "notifications.campaign": campaign,
        "notifications.campaignrun": CampaignRun.objects.create(campaign=campaign, occurrence=campaign.created_at),
        "notifications.signaltrigger": SignalTrigger.objects.create(
            name="Walk", signal="model.post_save", model="demo_shop.order", events=["created"],
            recipient_path="customer.user", template=template, category=category, dedupe_window=timedelta(0),
        ),
        "notifications.journey": Journey.objects.create(key="walk", name="Walk", category=category),
        "notifications.webhookendpoint": (hook := WebhookEndpoint.objects.create(
            url="https://hooks.example.com/walk", events=["campaign.finished"], secret="whsec_AAAA")),
        "notifications.webhookmessage": WebhookMessage.objects.create(
            idempotency_key="webhook:walk", channel="webhook", webhook_endpoint=hook, address="walk",
            provider_message_id="msg_walk", content={"event_type": "campaign.finished", "payload": {}}),
        "channels_adapters.webpushsubscription": WebPushSubscription.objects.create(
            user=profile.user, endpoint="https://push.example/walk", p256dh="k", auth="a"),
        "channels_adapters.capturedmessage": CapturedMessage.objects.create(channel="email", address="a@b.c"),
        "dashboard.importjob": ImportJob.objects.create(original_name="walk.csv", file="imports/walk.csv"),
        # Reports are their owner's to download: this one is the walking user's.
        "dashboard.report": Report.objects.create(
            kind=Report.Kind.DELIVERIES, format=Report.Format.CSV, status=Report.Status.READY,
            file=ContentFile(b"id\n", name="walk.csv"), created_by=user,
        ),
        "axes.accessattempt": AccessAttempt.objects.create(
            username="walk", ip_address="127.0.0.9", user_agent="walk", failures_since_start=1,
            get_data="", post_data="", http_accept="", path_info="/admin/login/",
        ),
        "axes.accesslog": AccessLog.objects.create(
            username="walk", ip_address="127.0.0.9", user_agent="walk", http_accept="", path_info="/admin/login/",
        ),
        "django_tasks_database.dbtaskresult": _task_result(),
        "demo_shop.customer": CustomerFactory(),
        "demo_shop.order": OrderFactory(),
        # Fresh heartbeats: without them /readyz answers 503 (its answer, not a failure of the page).
        "ops.heartbeat": _fresh_heartbeats(),
    }
    for model in admin.site._registry:
        label = model._meta.label_lower
        if label not in found:
            found[label] = model._default_manager.first()
    return found


def _fresh_heartbeats():
    from django.utils import timezone

    from ops.models import Heartbeat
    from ops.services import heartbeat_record

    for name in (Heartbeat.SCHEDULER, Heartbeat.WORKER):
        heartbeat_record(name=name, now=timezone.now())
    return Heartbeat.objects.first()


def _task_result():
    from notifications.campaigns.tasks import campaigns_launch_due_task

    with override_settings(TASKS={"default": {"BACKEND": "django_tasks_db.DatabaseBackend", "QUEUES": ["default"]}}):
        campaigns_launch_due_task.enqueue()
    from django_tasks_db.models import DBTaskResult

    return DBTaskResult.objects.first()


def concrete(route: str, name: str | None, pattern: URLPattern, rows: dict) -> str | None:
    """A URL for the pattern with real ids filled in (None for catch-alls we reach another way)."""
    if name is None:
        if route.endswith("/<path:object_id>/"):  # the admin's redirect from an old object link
            _admin, app_label, model_name, _rest = route.split("/", 3)
            row = rows.get(f"{app_label}.{model_name}")
            return f"/{route.replace('<path:object_id>', str(row.pk if row is not None else 1))}"
        return {"": "/", "admin/(?P<url>.*)$": "/admin/nowhere/"}.get(route)
    kwargs_names = list(pattern.pattern.converters) or list(pattern.pattern.regex.groupindex)
    model_row = None
    if name.startswith("admin:"):
        for model in admin.site._registry:
            prefix = f"admin:{model._meta.app_label}_{model._meta.model_name}_"
            if name.startswith(prefix):
                model_row = rows.get(model._meta.label_lower)
    values = {
        "dashboard:campaign": rows["notifications.campaign"].pk,
        "dashboard:campaign_recipients": rows["notifications.campaign"].pk,
        "dashboard:approval": rows["notifications.campaign"].pk,
        "dashboard:approval_decide": rows["notifications.campaign"].pk,
        "dashboard:delivery_timeline": rows["notifications.delivery"].pk,
        "dashboard:journey": rows["notifications.journey"].pk,
        "dashboard:journey_approval": rows["notifications.journey"].pk,
        "dashboard:journey_approval_decide": rows["notifications.journey"].pk,
        "reports:campaign_pdf": rows["notifications.campaign"].pk,
        "reports:download": rows["dashboard.report"].pk,
        "notifications:mark_read": rows["notifications.notification"].pk,
        "notifications:open": rows["notifications.notification"].pk,
    }
    kwargs = {}
    for kwarg in kwargs_names:
        if kwarg in ("object_id", "pk", "id", "campaign_id"):
            kwargs[kwarg] = values.get(name) or (model_row.pk if model_row is not None else 1)
        elif isinstance(pattern.pattern.converters.get(kwarg), IntConverter):
            kwargs[kwarg] = 1  # the REST API's ids (api/): any number; the key or token is checked first
        elif kwarg == "content_type_id":
            kwargs[kwarg] = ContentType.objects.get_for_model(get_user_model()).pk
        elif kwarg == "action":
            kwargs[kwarg] = "launch"
        elif kwarg == "run_id":  # a campaign's run (the A/B winner pick)
            run = rows.get("notifications.campaignrun")
            kwargs[kwarg] = run.pk if run is not None else 1
        elif kwarg == "label":  # an A/B variant
            kwargs[kwarg] = "A"
        elif kwarg == "app_label":
            kwargs[kwarg] = "notifications"
        else:
            kwargs[kwarg] = "walk-token"
    return reverse(name, kwargs=kwargs)


QUERIES = {
    "admin:autocomplete": {"app_label": "notifications", "model_name": "recipientprofile", "field_name": "user"},
}


def users_by_role() -> dict[str, object]:
    roles_ensure()
    User = get_user_model()
    users = {"anonymous": None, "recipient": RecipientProfileFactory(user=UserFactory(username="walk-ada")).user,
             "superuser": User.objects.create_superuser("walk-root", "root@example.com", "pw")}
    for group in ("Marketers", "Operators", "Managers"):
        user = UserFactory(username=f"walk-{group.lower()}", is_staff=True)
        user.groups.add(Group.objects.get(name=group))
        users[group] = user
    return users


def refused(response) -> bool:
    if response.status_code in (401, 403):  # 401: the REST API without a key or token
        return True
    location = response.get("Location", "") if response.status_code in (301, 302) else ""
    return any(location.startswith(path) for path in LOGIN_PATHS)


@pytest.mark.slow
@pytest.mark.parametrize("role", ROLES)
def test_every_url_admits_exactly_the_roles_its_rule_names(role):
    users = users_by_role()
    user = users[role]
    rows = objects(user)
    client = Client(raise_request_exception=False)
    wrong = []
    for route, name, pattern in url_patterns():
        rule = rule_for(name) if name else unnamed_rule(route)
        url = concrete(route, name, pattern, rows)
        if url is None or rule is None:
            continue
        admitted = rule.admits(user)
        if user is not None:
            client.force_login(user)  # again: a logout page on the way signs the client out
        response = client.get(url, QUERIES.get(name, {}))  # a stream is left unread (and unstarted)
        method = "GET"
        if response.status_code == 405:  # POST-only: ask as a real client would
            method = "POST"
            response = client.post(url)
        if response.status_code == 405 and response.get("Allow"):  # PUT, PATCH or DELETE only (api/)
            method = response["Allow"].split(",")[0].strip()
            response = client.generic(method, url)
        if response.status_code >= 500:
            wrong.append(f"{method} {url} ({name}) failed with {response.status_code} for {role}")
        elif not admitted and not refused(response):
            wrong.append(f"{method} {url} ({name}) answered {response.status_code} to {role}, whom its rule refuses")
        elif admitted and method == "GET" and (
            response.status_code == 403 if rule is PUBLIC else refused(response)  # logging out ends at login
        ):
            wrong.append(f"GET {url} ({name}) refused {role} ({response.status_code}), whom its rule admits")
    assert wrong == [], "\n".join(wrong)
    assert STAFF.admits(user) == (role not in ("anonymous", "recipient"))
