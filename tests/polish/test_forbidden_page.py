"""A refused page says which action it needs and which roles allow it (accounts/roles.py)."""

from __future__ import annotations

import pytest
from django.test import RequestFactory
from django.urls import reverse
from django.utils import translation

from accounts.forbidden import permission_denied
from accounts.roles import ACTIONS, roles_allowed
from tests.factories import UserFactory, staff_in

pytestmark = pytest.mark.django_db


def test_a_marketer_opening_reports_is_told_that_managers_may(client):
    client.force_login(staff_in("Marketers", "mia"))
    response = client.get(reverse("reports:index"))
    page = response.content.decode()
    assert response.status_code == 403
    assert 'data-testid="forbidden"' in page
    assert "Export CSV/XLSX" in page and "Download PDF reports" in page
    assert "allowed for Managers, superusers" in page
    assert "You are signed in as: Marketers." in page
    assert 'id="nav-sidebar"' in page  # inside the staff layout (Unfold's sidebar)
    assert response["Content-Security-Policy"]  # the usual admin policy


def test_in_chinese(client):
    client.force_login(staff_in("Marketers", "mia"))
    page = client.get(reverse("reports:index"), HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
    assert "导出 CSV/XLSX" in page and "经理" in page and "营销人员" in page and "超级管理员" in page


def test_a_model_page_names_the_permission_by_the_models_name(client):
    client.force_login(staff_in("Operators", "otto"))
    response = client.get(reverse("admin:notifications_campaign_changelist"))
    page = response.content.decode()
    assert response.status_code == 403
    assert "See campaigns" in page and "Marketers, Managers, superusers" in page


def test_a_superuser_only_page(client):
    client.force_login(staff_in("Managers", "meg"))
    target = staff_in("Marketers", "mia")
    response = client.get(reverse("admin:auth_user_password_change", args=[target.pk]))
    assert response.status_code == 403
    assert "Manage staff users, groups, permissions and staff passwords" in response.content.decode()


def test_recipients_get_a_plain_page():
    request = RequestFactory().get("/notifications/")
    request.user = UserFactory(username="ada")
    request.csp_nonce = "n"
    response = permission_denied(request, PermissionError("Not yours."))
    page = response.content.decode()
    assert response.status_code == 403 and "Not yours." in page and "You are signed in as: recipient." in page
    assert "nav-sidebar" not in page and "Back to your inbox" in page


def test_roles_come_from_the_one_table():
    assert roles_allowed("data.export") == ["Managers"]
    assert roles_allowed("campaign.launch") == ["Marketers"]
    assert roles_allowed("staff.manage") == []


def test_every_action_reads_in_chinese():
    with translation.override("zh-hans"):
        untranslated = [name for name, spec in ACTIONS.items() if translation.gettext(spec.description) == spec.description]
    assert untranslated == []
