"""Role matrix for reports, exports and the audit log: each group can do exactly its actions."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.test import Client
from django.urls import reverse

from dashboard.models import Report
from dashboard.reports import services
from accounts.roles import roles_ensure
from notifications.models import AuditEntry, Campaign
from tests.factories import (
    AudienceFactory,
    CategoryFactory,
    DeliveryFactory,
    MessageTemplateFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _files_built_in_the_request(settings):
    """These tests read the files themselves: built in the request, as a deployment may choose
    (``SIGNALBOX_REPORT_INLINE_ROWS``); by default every file is built by a task (tests/polish)."""
    settings.SIGNALBOX_REPORT_INLINE_ROWS = 50_000


ROLES = ["Managers", "Marketers", "Operators"]


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture
def users(db):
    roles_ensure()
    made = {}
    for role in ROLES:
        user = UserFactory(username=role.lower(), is_staff=True)
        user.groups.add(Group.objects.get(name=role))
        made[role] = user
    made["other manager"] = UserFactory(username="other-manager", is_staff=True)
    made["other manager"].groups.add(Group.objects.get(name="Managers"))
    made["superuser"] = get_user_model().objects.create_superuser("root", "root@example.com", "pw")
    made["staff without role"] = UserFactory(username="staff", is_staff=True)
    return made


@pytest.fixture
def campaign(db) -> Campaign:
    return Campaign.objects.create(
        name="Spring sale", audience=AudienceFactory(), template=MessageTemplateFactory(),
        category=CategoryFactory(key="newsletter", name="Newsletter"),
    )


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def manager_report(users, campaign) -> Report:
    return services.report_request(
        actor=users["Managers"], kind=Report.Kind.CAMPAIGN_PDF, format=Report.Format.PDF,
        params={"campaign_id": campaign.pk},
    )


def actions(campaign, report) -> dict[str, tuple[str, str, dict]]:
    """Every report action: (method, url, POST data)."""
    return {
        "reports page": ("get", reverse("reports:index"), {}),
        "my reports list": ("get", reverse("reports:mine"), {}),
        "export CSV": ("post", reverse("reports:export"), {"export-kind": "deliveries", "export-format": "csv"}),
        "export XLSX": ("post", reverse("reports:export"), {"export-kind": "campaigns", "export-format": "xlsx"}),
        "request period PDF": ("post", reverse("reports:request_pdf"), {
            "kind": "period_pdf", "period-date_from": "2025-03-01", "period-date_to": "2025-03-31",
        }),
        "request campaign PDF": ("post", reverse("reports:request_pdf"), {"kind": "campaign_pdf", "campaign-campaign": campaign.pk}),
        "campaign page PDF button": ("post", reverse("reports:campaign_pdf", args=[campaign.pk]), {}),
        "download a manager's report": ("get", reverse("reports:download", args=[report.pk]), {}),
        "audit log page": ("get", reverse("reports:audit_log"), {}),
    }


ALLOWED = {
    # The report was requested by the member of Managers: theirs to download.
    "Managers": {
        "reports page", "my reports list", "export CSV", "export XLSX", "request period PDF", "request campaign PDF",
        "campaign page PDF button", "audit log page", "download a manager's report",
    },
    "Marketers": set(),
    "Operators": set(),
    "staff without role": set(),
    "other manager": {
        "reports page", "my reports list", "export CSV", "export XLSX", "request period PDF", "request campaign PDF",
        "campaign page PDF button", "audit log page",
    },
    "superuser": {
        "reports page", "my reports list", "export CSV", "export XLSX", "request period PDF", "request campaign PDF",
        "campaign page PDF button", "audit log page", "download a manager's report",
    },
}


@pytest.fixture
def fast_pdf(monkeypatch):
    """Permissions are under test here, not rendering (test_reports_pdf.py renders real PDFs)."""
    from dashboard.reports import pdf

    monkeypatch.setattr(pdf, "report_pdf", lambda *, target, **kwargs: target.write(b"%PDF-1.7 stand-in"))


@pytest.mark.parametrize("who", list(ALLOWED))
def test_each_role_can_do_exactly_its_report_actions(users, campaign, who, fast_pdf):
    DeliveryFactory()
    report = manager_report(users, campaign)
    client = client_for(users[who])

    outcome = {}
    for name, (method, url, data) in actions(campaign, report).items():
        response = getattr(client, method)(url, data)
        outcome[name] = response.status_code

    allowed = {name for name, status in outcome.items() if status in (200, 302)}
    assert allowed == ALLOWED[who], outcome
    assert all(status == 403 for name, status in outcome.items() if name not in ALLOWED[who]), outcome


def test_the_owner_downloads_their_report_and_nobody_else_but_a_superuser(users, campaign):
    report = manager_report(users, campaign)
    url = reverse("reports:download", args=[report.pk])

    own = client_for(users["Managers"]).get(url)

    assert own.status_code == 200
    assert own["Content-Disposition"].startswith("attachment;")
    assert {"private", "no-store"} <= {part.strip() for part in own["Cache-Control"].split(",")}
    assert b"".join(own.streaming_content).startswith(b"%PDF-")
    assert client_for(users["other manager"]).get(url).status_code == 403
    assert client_for(users["Marketers"]).get(url).status_code == 403
    assert client_for(users["superuser"]).get(url).status_code == 200
    downloads = AuditEntry.objects.filter(action="report.download", target_id=str(report.pk))
    assert sorted(downloads.values_list("actor__username", flat=True)) == ["managers", "root"]


def test_a_manager_who_left_the_role_cannot_download_their_old_reports(users, campaign, fast_pdf):
    report = manager_report(users, campaign)
    users["Managers"].groups.clear()

    assert client_for(users["Managers"]).get(reverse("reports:download", args=[report.pk])).status_code == 403


def test_a_report_that_is_not_ready_is_not_found(users):
    report = Report.objects.create(kind="deliveries", format="xlsx", created_by=users["Managers"])

    assert client_for(users["Managers"]).get(reverse("reports:download", args=[report.pk])).status_code == 404


def test_denied_requests_create_no_report_and_no_audit_entry(users, campaign, fast_pdf):
    client = client_for(users["Marketers"])
    client.post(reverse("reports:campaign_pdf", args=[campaign.pk]))
    client.post(reverse("reports:export"), {"export-kind": "deliveries", "export-format": "csv"})

    assert not Report.objects.exists()
    assert not AuditEntry.objects.filter(action__in=["report.request", "data.export"]).exists()


def test_requesting_a_report_is_post_with_csrf(users, campaign, fast_pdf):
    client = Client(enforce_csrf_checks=True)
    client.force_login(users["Managers"])

    assert client.get(reverse("reports:campaign_pdf", args=[campaign.pk])).status_code == 405
    assert client.post(reverse("reports:campaign_pdf", args=[campaign.pk])).status_code == 403
    assert client.post(reverse("reports:export"), {"export-kind": "deliveries", "export-format": "csv"}).status_code == 403
    assert not Report.objects.exists()

    page = client.get(reverse("reports:index"))
    token = page.context["csrf_token"]
    response = client.post(reverse("reports:campaign_pdf", args=[campaign.pk]), {"csrfmiddlewaretoken": str(token)})
    assert response.status_code == 302 and Report.objects.count() == 1


@pytest.mark.parametrize("url_name", ["reports:index", "reports:audit_log"])
def test_anonymous_and_non_staff_users_are_sent_to_the_login(client, url_name):
    assert client.get(reverse(url_name))["Location"].startswith("/admin/login/")
    client.force_login(UserFactory(username="recipient"))
    assert client.get(reverse(url_name))["Location"].startswith("/admin/login/")


def test_sidebar_shows_the_pages_to_those_who_may_open_them(users):
    for who, sees in [("Managers", True), ("Marketers", False), ("Operators", False)]:
        html = client_for(users[who]).get(reverse("admin:index")).content.decode()
        assert (f'href="{reverse("reports:index")}"' in html) is sees, who
        assert (f'href="{reverse("reports:audit_log")}"' in html) is sees, who


def test_reports_page_offers_only_what_the_user_may_do(users):
    exporter = UserFactory(username="exporter", is_staff=True)
    exporter.user_permissions.add(*_perms("export_data"))

    html = client_for(exporter).get(reverse("reports:index")).content.decode()

    assert 'data-testid="export-form"' in html
    assert 'data-testid="campaign-pdf-form"' not in html
    assert client_for(exporter).post(reverse("reports:campaign_pdf", args=[1])).status_code == 403


def _perms(*codenames):
    from django.contrib.auth.models import Permission

    return Permission.objects.filter(content_type__app_label="dashboard", codename__in=codenames)
