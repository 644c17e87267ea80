"""One person's data (``notifications.privacy``): the export holds every row about them and
nobody else's; erasure leaves nothing that names them, keeps every figure, and keeps their
address unreachable through hashed suppressions, also after it is imported again."""

from __future__ import annotations

import csv
import io
import json
import zipfile
from datetime import timedelta
from pathlib import Path

import pytest
from axes.models import AccessAttempt, AccessLog
from django.apps import apps
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.auth import get_user_model
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import PermissionDenied
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.db import models
from django.test import TestCase
from django.utils import timezone

from channels_adapters.locmem import LocmemChannel
from channels_adapters.models import CapturedMessage, WebPushSubscription
from dashboard.analytics import AnalyticsFilters, DayRange, analytics_figures, analytics_rollup_refresh
from dashboard.imports import import_job_confirm, import_job_preview, import_job_upload
from dashboard.models import ImportJob
from notifications import ledger
from notifications.api import notify
from notifications.campaigns import services as campaign_services
from notifications.campaigns.runs import campaign_run_plan, campaigns_launch_due
from notifications.models import (
    AudienceMember,
    AuditEntry,
    Broadcast,
    BroadcastRead,
    Campaign,
    CampaignRun,
    Delivery,
    DeliveryEvent,
    Notification,
    NotificationContent,
    Preference,
    RecipientProfile,
    Suppression,
    TrackedLink,
)
from notifications.privacy import ErasureRefused, person_erase, person_export, person_find
from notifications.privacy.kinds import NOT_PERSONAL, kinds
from notifications.services import audit_record
from tests.factories import CategoryFactory, CustomerFactory, OrderFactory, RecipientProfileFactory, UserFactory
from tests.notifications.campaigns.conftest import static_audience

pytestmark = pytest.mark.django_db
User = get_user_model()


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture
def category(db):
    return CategoryFactory(key="promotions", name="Promotions", kind="marketing")


def make_person(tag: str, phone: str, category, broadcast) -> dict:
    """A person with a row of every kind, each carrying strings that name them (``secrets``)."""
    user = UserFactory(username=f"{tag}-login", email=f"{tag.title()}.Person@Example.com",
                       first_name=f"{tag.title()}first", last_name=f"{tag.title()}last")
    endpoint = f"https://push.example/{tag}-endpoint"
    chat = f"json://chat.example/{tag}-chat"
    RecipientProfileFactory(user=user, phone=phone, chat_ids={"apprise": chat})
    Preference.objects.create(user=user, category=category, channel="email", enabled=False)
    email = user.email.lower()
    Suppression.objects.create(channel="email", address=email, reason="hard_bounce", user=user, note=f"{tag} bounced")
    Suppression.objects.create(channel="sms", address=phone, reason="stop")
    WebPushSubscription.objects.create(user=user, endpoint=endpoint, p256dh=f"{tag}-key", auth=f"{tag}-auth",
                                       user_agent=f"{tag}-browser")
    mail = Delivery.objects.create(
        idempotency_key=f"order-mail-{email}", recipient=user, channel="email", category=category, address=email,
        status="opened", content={"subject": f"Hello {tag.title()}first", "text": f"Dear {tag.title()}last"},
        provider_message_id=f"{tag}-esp-id", last_error=f"550 {email} unknown", sent_at=timezone.now(),
        opened_at=timezone.now(),
    )
    sms = Delivery.objects.create(
        idempotency_key=f"run:0:{user.pk}:sms", recipient=user, channel="sms", category=category, address=phone,
        status="sent", content={"text": f"Hi {tag.title()}first"}, provider_message_id=f"{tag}-twilio-sid",
    )
    inapp = Delivery.objects.create(
        idempotency_key=f"inapp-{tag}", recipient=user, channel="inapp", category=category, address=str(user.pk),
        status="read", content={"title": f"For {tag.title()}first"},
    )
    DeliveryEvent.objects.create(delivery=mail, kind="sent", source="smtp", provider_event_id=f"{tag}-evt-1")
    DeliveryEvent.objects.create(delivery=mail, kind="opened", source="pixel",
                                 data={"machine_open": True, "user_agent": f"{tag}-scanner"})
    DeliveryEvent.objects.create(delivery=mail, kind="opened", source="anymail", provider_event_id=f"{tag}-evt-2",
                                 data={"recipient": email, "ip": "203.0.113.7"})
    DeliveryEvent.objects.create(delivery=sms, kind="sent", source="twilio", provider_event_id=f"{tag}-twilio-sid:sent")
    TrackedLink.objects.create(delivery=mail, url=f"https://shop.example/?who={email}", position=0)
    Notification.objects.create(recipient=user, delivery=inapp, title=f"For {tag.title()}first",
                                body=f"Dear {tag.title()}last", url=f"/orders/{tag}-order")
    shared = NotificationContent.objects.create(title="Sale", body="Everything must go")
    Notification.objects.create(recipient=user, content=shared, read_at=timezone.now())
    BroadcastRead.objects.create(broadcast=broadcast, user=user)
    audience = static_audience(f"{tag} audience", [user.pk])
    CapturedMessage.objects.create(channel="email", address=email, subject=f"Hello {tag.title()}first",
                                   text=f"Dear {tag.title()}last", delivery_id=mail.pk)
    audit_record(actor=None, action="account.password_reset_sent", target=user, changes={"email": email})
    LogEntry.objects.create(
        user=UserFactory(username=f"{tag}-admin-actor", is_staff=True),
        content_type=ContentType.objects.get_for_model(User), object_id=str(user.pk), object_repr=f"{tag}-login",
        action_flag=CHANGE, change_message=f"Changed email to {email}",
    )
    AccessAttempt.objects.create(username=f"{tag}-login", ip_address="198.51.100.1", user_agent=f"{tag}-browser",
                                 get_data="", post_data=f"username={tag}-login", http_accept="", path_info="/",
                                 failures_since_start=1)
    AccessLog.objects.create(username=email, ip_address="198.51.100.1", user_agent=f"{tag}-browser",
                             http_accept="", path_info="/")
    OrderFactory(customer=CustomerFactory(user=user, company=f"{tag.title()} Holdings"))
    return {
        "user": user, "email": email, "phone": phone, "audience": audience,
        "secrets": [email, user.email, phone, f"{tag}-login", f"{tag.title()}first", f"{tag.title()}last", endpoint,
                    chat, f"{tag}-esp-id", f"{tag}-twilio-sid", f"{tag}-browser", f"{tag}-scanner",
                    f"{tag}-evt-", f"{tag}-order", f"{tag} bounced", f"{tag.title()} Holdings", phone[-7:]],
    }


@pytest.fixture
def world(category):
    broadcast = Broadcast.objects.create(title="Welcome to the new inbox")
    people = {
        "ada": make_person("ada", "+14155550101", category, broadcast),
        "bob": make_person("bob", "+14155550202", category, broadcast),
    }
    csv_text = (
        "email,first_name,last_name,phone\n"
        f"{people['ada']['email'].upper()},Adafirst,Adalast,+1 415 555 0101\n"
        f"{people['bob']['email']},Bobfirst,Boblast,{people['bob']['phone']}\n"
        "=HYPERLINK(\"http://evil\"),Eve,Evil,\n"
    )
    job = import_job_upload(upload=SimpleUploadedFile("people.csv", csv_text.encode(), "text/csv"))
    import_job_preview(job=job, mapping=job.mapping)
    people["import"] = job
    return people


@pytest.fixture
def manager(db):
    from tests.notifications.test_person_data_admin import staff_in

    return staff_in("Managers", "meg")


def export_zip(person, actor) -> zipfile.ZipFile:
    out = io.BytesIO()
    person_export(person=person, actor=actor, out=out)
    return zipfile.ZipFile(io.BytesIO(out.getvalue()))


# --- Every relation to a person is covered --------------------------------------------------------

PERSON_MODELS = {"auth.User", "notifications.Delivery", "demo_shop.Customer"}


def person_links() -> set[str]:
    """``app.Model.field`` of every relation to a user, a delivery or a shop customer."""
    links = set()
    for model in apps.get_models():
        if model._meta.proxy:  # its rows are the concrete model's, walked there (WebhookMessage: Delivery)
            continue
        for field in model._meta.concrete_fields:
            if field.is_relation and field.related_model is not None \
                    and field.related_model._meta.label in PERSON_MODELS:
                links.add(f"{model._meta.label}.{field.name}")
    return links


def test_every_relation_to_a_person_is_exported_and_erased_or_declared_not_personal():
    covered = {link for kind in kinds() for link in kind.links} | NOT_PERSONAL
    missing = person_links() - covered
    assert missing == set(), (
        f"Add a kind to notifications.privacy.kinds (or to NOT_PERSONAL, with the reason) for: {sorted(missing)}"
    )


# --- Export ---------------------------------------------------------------------------------------

def rows_linked_to(user) -> dict[str, set[int]]:
    """The ids of every row that points at ``user`` (through any relation walked above), by model."""
    found: dict[str, set[int]] = {}
    delivery_ids = set(Delivery.objects.filter(recipient=user).values_list("pk", flat=True))
    customer_ids = set(apps.get_model("demo_shop.Customer").objects.filter(user=user).values_list("pk", flat=True))
    targets = {"auth.User": {user.pk}, "notifications.Delivery": delivery_ids, "demo_shop.Customer": customer_ids}
    for link in person_links() - NOT_PERSONAL:
        label, field = link.rsplit(".", 1)
        model = apps.get_model(label)
        related = model._meta.get_field(field).related_model._meta.label
        ids = set(model._default_manager.filter(**{f"{field}__in": targets[related]}).values_list("pk", flat=True))
        found.setdefault(label, set()).update(ids)
    found.setdefault("auth.User", set()).add(user.pk)
    return found


def test_export_holds_every_row_about_the_person_and_nothing_about_anyone_else(world, manager):
    ada, bob = world["ada"], world["bob"]
    archive = export_zip(person_find(ada["email"]), manager)
    names = set(archive.namelist())
    by_model = {kind.model._meta.label: kind.name for kind in kinds() if hasattr(kind, "model")}
    for label, ids in rows_linked_to(ada["user"]).items():
        exported = {row["id"] for row in json.loads(archive.read(f"{by_model[label]}.json"))}
        assert ids <= exported, f"{label}: rows {sorted(ids - exported)} are not in the export"
    for label, ids in rows_linked_to(bob["user"]).items():
        exported = {row["id"] for row in json.loads(archive.read(f"{by_model[label]}.json"))}
        assert not ids & exported, f"{label}: the other person's rows {sorted(ids & exported)} are in the export"
    everything = b"".join(archive.read(name) for name in names).decode("utf-8-sig", errors="replace")
    for secret in ada["secrets"]:
        if secret not in ("+14155550101",):
            assert secret in everything or secret.lower() in everything, f"{secret!r} missing from the export"
    for secret in bob["secrets"]:
        assert secret not in everything, f"the other person's {secret!r} is in the export"
    # Every kind twice, plus the manifest; suppressions found by address as well as by user.
    assert names == {f"{k.name}.{ext}" for k in kinds() for ext in ("json", "csv")} | {"manifest.json"}
    suppressions = json.loads(archive.read("suppressions.json"))
    assert {(s["channel"], s["address"]) for s in suppressions} == {("email", ada["email"]), ("sms", ada["phone"])}
    imported = json.loads(archive.read("import_rows.json"))
    assert [(r["file"], r["line"]) for r in imported] == [("upload", 2)]
    assert imported[0]["row"]["first_name"] == "Adafirst"
    inbox = json.loads(archive.read("inbox.json"))
    assert {r["shared_title"] for r in inbox} == {None, "Sale"}
    manifest = json.loads(archive.read("manifest.json"))
    assert manifest["person_id"] == ada["user"].pk and manifest["rows"]["deliveries"] == 3
    assert "password" not in json.loads(archive.read("user.json"))[0]
    assert AuditEntry.objects.filter(action="person.exported", actor=manager, target_id=str(ada["user"].pk)).exists()


def test_export_csv_cells_never_run_as_formulas(world, manager):
    ada = world["ada"]
    user = ada["user"]
    user.first_name = "=HYPERLINK(\"http://evil.example\",\"click\")"
    user.last_name = "@SUM(1+1)"
    user.save()
    Notification.objects.create(recipient=user, title="+cmd|' /C calc'!A0", body="-2+3")
    archive = export_zip(person_find(str(user.pk)), manager)
    cells = [
        cell
        for name in archive.namelist() if name.endswith(".csv")
        for row in csv.reader(io.StringIO(archive.read(name).decode("utf-8-sig")))
        for cell in row
    ]
    dangerous = [c for c in cells if c[:1] in ("=", "+", "-", "@", "\t", "\r")]
    assert dangerous == []
    assert "'=HYPERLINK(\"http://evil.example\",\"click\")" in cells and "'+cmd|' /C calc'!A0" in cells
    # JSON keeps the values exactly as stored.
    assert json.loads(archive.read("user.json"))[0]["first_name"] == user.first_name


def test_export_is_streamed_in_pieces_with_as_many_queries_for_3000_deliveries_as_for_3(world, manager):
    """100k deliveries must not be held in memory: rows are read with a chunked iterator and the
    archive is handed over in pieces as it is written; no query per row."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from notifications.privacy.export import person_export_stream

    user = world["ada"]["user"]

    def export() -> tuple[list[int], int, object]:
        with CaptureQueriesContext(connection) as queries:
            pieces = person_export_stream(person=person_find(str(user.pk)), actor=manager)
            sizes = [len(piece) for piece in pieces]
        return sizes, len(queries), pieces

    export()  # content types cached
    _sizes, few_queries, _pieces = export()
    Delivery.objects.bulk_create(
        Delivery(idempotency_key=f"bulk-{i}", recipient=user, channel="email", address=world["ada"]["email"],
                 status="sent") for i in range(3000)
    )
    sizes, many_queries, pieces = export()
    assert many_queries == few_queries
    assert len([s for s in sizes if s]) > 6 and max(sizes) < sum(sizes) / 2  # many pieces, none the whole archive
    assert pieces.counts["deliveries"] == 3003


# --- Erase ----------------------------------------------------------------------------------------

def stored_strings() -> list[tuple[str, str]]:
    """(where, text) of every text and JSON value in every table, and of every stored import file."""
    found = []
    for model in apps.get_models():
        fields = [f.attname for f in model._meta.concrete_fields
                  if isinstance(f, models.CharField | models.TextField | models.JSONField | models.EmailField)]
        if not fields:
            continue
        for row in model._default_manager.values_list(*fields):
            found.extend((model._meta.label, json.dumps(v, ensure_ascii=False) if not isinstance(v, str) else v)
                         for v in row if v)
    for job in ImportJob.objects.all():
        for field in (job.file, job.error_report):
            if field:
                with field.open("rb") as handle:
                    found.append((f"import file {field.name}", handle.read().decode("utf-8-sig", errors="replace")))
    return found


def leftovers(secrets: list[str]) -> list[tuple[str, str]]:
    lowered = [s.lower() for s in secrets]
    return [(where, s) for where, text in stored_strings() for s in lowered if s in text.lower()]


def test_erase_leaves_nothing_that_names_them_and_keeps_the_other_person(world, manager, settings):
    ada, bob = world["ada"], world["bob"]
    assert leftovers(ada["secrets"])  # the check can fail: before erasing, they are everywhere

    rows = person_erase(person=person_find(ada["phone"]), actor=manager)

    assert leftovers(ada["secrets"]) == []
    assert {s.lower() for _where, s in leftovers(bob["secrets"])} == {s.lower() for s in bob["secrets"]}
    user = User.objects.get(pk=ada["user"].pk)
    assert (user.username, user.email, user.first_name, user.is_active, user.has_usable_password()) == (
        f"erased-{user.pk}", "", "", False, False)
    assert not RecipientProfile.objects.filter(user=user).exists()
    assert not Preference.objects.filter(user=user).exists()
    assert not WebPushSubscription.objects.filter(user=user).exists()
    assert not AudienceMember.objects.filter(user=user).exists()
    # Counts and statuses stay.
    assert sorted(Delivery.objects.filter(recipient=user).values_list("channel", "status")) == [
        ("email", "opened"), ("inapp", "read"), ("sms", "sent")]
    assert DeliveryEvent.objects.filter(delivery__recipient=user).count() == 4
    assert Notification.objects.filter(recipient=user).count() == 2
    assert Notification.objects.filter(recipient=user, read_at__isnull=False).count() == 1
    assert BroadcastRead.objects.filter(user=user).count() == 1
    # The audit entry says who erased whom and when, and nothing of what was erased.
    entry = AuditEntry.objects.get(action="person.erased")
    assert (entry.actor, entry.target_id, entry.changes["person_id"]) == (manager, str(user.pk), user.pk)
    assert entry.changes["rows"] == rows and rows["deliveries"] == 3
    # The import file keeps the other rows.
    job = ImportJob.objects.get(pk=world["import"].pk)
    with job.file.open("rb") as handle:
        text = handle.read().decode()
    assert "Bobfirst" in text and "Eve" in text and "Adafirst" not in text
    stored = [path.read_bytes().decode("utf-8-sig", errors="replace").lower()
              for path in Path(settings.MEDIA_ROOT).rglob("*") if path.is_file()]
    assert stored and not [text for text in stored if ada["email"] in text or "adafirst" in text]


def test_erase_keeps_campaign_figures_and_analytics(world, manager):
    today = timezone.localdate()
    filters = AnalyticsFilters(days=DayRange(today - timedelta(days=7), today))
    before = analytics_figures(filters=filters)
    person_erase(person=person_find(world["ada"]["email"]), actor=manager)
    after = analytics_figures(filters=filters)
    assert after.totals == before.totals and after.totals.total == 6
    assert after.by_channel == before.by_channel and after.by_campaign == before.by_campaign
    assert after.opens.cells == before.opens.cells
    analytics_rollup_refresh(since=None, now=timezone.now() + timedelta(days=2))
    rolled = analytics_figures(filters=AnalyticsFilters(days=DayRange(today - timedelta(days=7), today)),
                               now=timezone.now() + timedelta(days=2))
    assert rolled.totals == before.totals


def test_erased_address_is_not_mailed_again_even_when_imported_again(world, manager, locmem_channels, category):
    """After erasure the email and phone come back on a new account through a CSV import; a
    campaign to an audience holding it must not reach either address (nor the erased shell)."""
    ada = world["ada"]
    old_user_pk = ada["user"].pk
    person_erase(person=person_find(ada["email"]), actor=manager)
    assert not Suppression.objects.filter(address__in=[ada["email"], ada["phone"]]).exists()
    assert Suppression.objects.filter(address__startswith="hmac-sha256:").count() == 2  # email, sms
    # The shell's inbox is suppressed by its id, which names nobody (and the fan-out hashes nothing).
    assert Suppression.objects.filter(channel="inapp", address=str(old_user_pk)).exists()

    # Imported again, in another case and format: a new account, no profile data from before.
    again = "email,first_name,phone\n" f"  {ada['email'].upper()} ,Ada,+1 (415) 555-0101\n" "new@example.com,New,\n"
    job = import_job_upload(upload=SimpleUploadedFile("again.csv", again.encode(), "text/csv"))
    import_job_preview(job=job, mapping=job.mapping)
    job.refresh_from_db()
    assert job.details["preview"]["suppressed_rows"] == 1  # the preview says so before anything is imported
    import_job_confirm(job=job)
    returned = User.objects.get(email__iexact=ada["email"])
    newcomer = User.objects.get(email="new@example.com")
    assert returned.pk != old_user_pk and returned.recipient_profile.phone == ada["phone"]

    from accounts.roles import roles_ensure
    from tests.notifications.test_person_data_admin import staff_in

    roles_ensure()
    marketer = staff_in("Marketers", "mia")
    template = apps.get_model("notifications.MessageTemplate").objects.create(
        key="after", name="After", email_subject="Hi", email_body="News", sms_text="News", inapp_title="News")
    audience = static_audience("Everyone again", [returned.pk, newcomer.pk, old_user_pk])
    campaign = Campaign.objects.create(name="After erasure", audience=audience, template=template,
                                       category=category, channels=["email", "sms"])
    campaign_services.campaign_launch(campaign=campaign, actor=marketer)
    (run_id,) = campaigns_launch_due()
    campaign_run_plan(run_id=run_id)
    ids = list(Delivery.objects.filter(run_id=run_id).values_list("pk", flat=True))
    with TestCase.captureOnCommitCallbacks(execute=True):
        ledger.deliveries_send(delivery_ids=ids)

    sent_to = {m.message.address for m in LocmemChannel.outbox}
    assert sent_to == {"new@example.com"}
    reasons = dict(Delivery.objects.filter(run_id=run_id, recipient=returned).values_list("channel", "status_reason"))
    assert reasons == {"email": "suppressed:hard_bounce", "sms": "suppressed:stop"}
    assert CampaignRun.objects.get(pk=run_id).audience_size == 2  # the erased shell is inactive

    # notify() straight to the erased shell reaches no inbox either.
    result = notify([User.objects.get(pk=old_user_pk)], title="Hello again", category=category)
    assert result.planned == 0
    assert not Notification.objects.filter(recipient_id=old_user_pk, content__title="Hello again").exists()


def test_a_suppression_made_after_planning_of_an_erased_address_stops_the_send(world, manager, locmem_channels,
                                                                               category):
    """The send-time re-check reads hashed suppressions too."""
    carol = RecipientProfileFactory(user=UserFactory(username="carol", email="carol@example.com")).user
    notify([carol], title="Sale", channels=["email"], category=category)
    delivery = Delivery.objects.get(recipient=carol, channel="email")
    # Carol held the address once before, as someone since erased: the hash is all that is left.
    from notifications.querysets import suppression_hash

    Suppression.objects.create(channel="email", address=suppression_hash("email", "carol@example.com"),
                               reason="complaint")
    with TestCase.captureOnCommitCallbacks(execute=True):
        ledger.deliveries_send(delivery_ids=[delivery.pk])
    delivery.refresh_from_db()
    assert (delivery.status, delivery.status_reason) == ("suppressed", "suppressed:complaint")
    assert LocmemChannel.outbox == []


def test_hash_key_comes_from_its_own_setting_and_old_secret_keys_still_match(settings):
    from notifications.querysets import suppression_hash, suppression_keys

    settings.SIGNALBOX_SUPPRESSION_KEY = ""
    settings.SECRET_KEY, settings.SECRET_KEY_FALLBACKS = "new-secret", ["old-secret"]
    old = suppression_hash("email", "ada@example.com", secret="old-secret")
    assert old in suppression_keys("email", "ada@example.com")
    assert suppression_hash("email", "ada@example.com") != old
    assert suppression_hash("sms", "ada@example.com") != suppression_hash("email", "ada@example.com")
    settings.SIGNALBOX_SUPPRESSION_KEY = "dedicated"
    assert suppression_keys("email", "ada@example.com")[1:] == [suppression_hash("email", "ada@example.com")]
    assert suppression_hash("email", "ada@example.com") == suppression_hash(
        "email", "ada@example.com", secret="dedicated")


# --- Who may, and bad input ----------------------------------------------------------------------

def test_services_refuse_roles_without_the_permission_and_staff_accounts(world, manager):
    from tests.notifications.test_person_data_admin import staff_in

    person = person_find(world["ada"]["email"])
    for group, name in (("Marketers", "mia"), ("Operators", "otto")):
        staff = staff_in(group, name)
        with pytest.raises(PermissionDenied):
            person_export(person=person, actor=staff, out=io.BytesIO())
        with pytest.raises(PermissionDenied):
            person_erase(person=person, actor=staff)
    with pytest.raises(ErasureRefused):
        person_erase(person=person_find(str(manager.pk)), actor=manager)
    person_erase(person=person, actor=manager)
    with pytest.raises(ErasureRefused):
        person_erase(person=person_find(str(person.pk)), actor=manager)
    assert AuditEntry.objects.filter(action="person.erased").count() == 1


def test_command_exports_and_erases_as_the_named_staff_member(world, manager, tmp_path):
    ada = world["ada"]
    target = tmp_path / "ada.zip"
    call_command("signalbox_person", "export", ada["phone"], "-o", str(target), "--actor", "meg")
    assert "deliveries.json" in zipfile.ZipFile(target).namelist()
    for bad in ("nobody@example.com", "+999", "0", "12345678901234567890123", "   "):
        with pytest.raises(CommandError):
            call_command("signalbox_person", "export", bad, "-o", str(target), "--actor", "meg")
    with pytest.raises(CommandError, match="may not"):
        call_command("signalbox_person", "erase", ada["email"], "--actor", world["bob"]["user"].username, "--yes")
    out = io.StringIO()
    call_command("signalbox_person", "erase", ada["email"], "--actor", "meg", "--yes", stdout=out)
    assert f"Erased person #{ada['user'].pk}" in out.getvalue()
    assert AuditEntry.objects.get(action="person.erased").actor == manager


def test_operators_find_an_erased_address_by_searching_for_it_and_may_lift_it(client, world, manager):
    from tests.notifications.test_person_data_admin import staff_in

    ada = world["ada"]
    person_erase(person=person_find(ada["email"]), actor=manager)
    client.force_login(staff_in("Operators", "otto"))
    page = client.get("/admin/notifications/suppression/", {"q": ada["email"].upper()}).content.decode()
    hashed = Suppression.objects.get(channel="email", address__startswith="hmac-sha256:")
    assert hashed.address in page and world["bob"]["email"] not in page
    page = client.get("/admin/notifications/suppression/", {"q": "+1 415 555 0101"}).content.decode()
    assert Suppression.objects.get(channel="sms", address__startswith="hmac-sha256:").address in page
