"""An operator imports users from CSV in the browser: preview with reasons, confirm, users exist."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from playwright.sync_api import Page, expect

from accounts.roles import roles_ensure
from notifications.models import RecipientProfile
from tests.factories import PASSWORD

from .staff import log_in

pytestmark = pytest.mark.django_db(transaction=True)

GOOD_AND_BAD = (
    "email,first_name,last_name,phone,timezone\n"
    "ada@import.test,Ada,Lovelace,+14155550101,Europe/London\n"
    "grace@import.test,Grace,Hopper,+14155550102,America/New_York\n"
    "not-an-email,Bad,Email,,UTC\n"
    "lin@import.test,Lin,Phone,12345,Asia/Shanghai\n"
    "zoe@import.test,Zoe,Zone,,Mars/Olympus\n"
    "ada@import.test,Ada,Again,,UTC\n"
)


@pytest.fixture
def operator(db):
    roles_ensure()
    user = get_user_model().objects.create_user("otto", "otto@staff.example", PASSWORD, is_staff=True)
    user.groups.add(Group.objects.get(name="Operators"))
    return user


def upload(page: Page, base: str, path, *, mode: str | None = None) -> None:
    page.goto(f"{base}/admin/dashboard/importjob/upload/")
    page.get_by_test_id("upload-form").locator("input[type=file]").set_input_files(str(path))
    page.get_by_test_id("upload-submit").click()
    expect(page.get_by_test_id("mapping-form")).to_be_visible()
    page.get_by_test_id("mapping-submit").click()
    expect(page.get_by_test_id("import-preview")).to_be_visible()


def test_operator_previews_reasons_confirms_and_the_users_exist(page: Page, live_server, operator, tmp_path):
    path = tmp_path / "people.csv"
    path.write_text(GOOD_AND_BAD, encoding="utf-8")
    log_in(page, live_server.url, "otto")
    upload(page, live_server.url, path)

    expect(page.get_by_test_id("count-new")).to_contain_text("2")
    expect(page.get_by_test_id("count-invalid")).to_contain_text("4")
    reasons = page.get_by_test_id("invalid-rows")
    for reason in ("email", "phone", "time zone", "duplicate"):
        expect(reasons).to_contain_text(reason, ignore_case=True)
    assert not get_user_model().objects.filter(email__endswith="@import.test").exists()  # a dry run

    page.get_by_test_id("confirm-submit").click()
    expect(page.get_by_test_id("import-status")).to_have_attribute("data-status", "completed", timeout=15_000)
    users = get_user_model().objects.filter(email__endswith="@import.test")
    assert sorted(users.values_list("email", flat=True)) == ["ada@import.test", "grace@import.test"]
    assert RecipientProfile.objects.get(user__email="grace@import.test").timezone == "America/New_York"


def test_a_gbk_file_with_chinese_names_imports_correctly(page: Page, live_server, operator, tmp_path):
    path = tmp_path / "chinese.csv"
    path.write_bytes("邮箱,姓名,手机,时区\nwang@import.test,王小明,+8613800138000,Asia/Shanghai\n".encode("gbk"))
    log_in(page, live_server.url, "otto")
    upload(page, live_server.url, path)
    expect(page.get_by_test_id("count-new")).to_contain_text("1")
    expect(page.locator("body")).to_contain_text("GBK")  # the encoding it was read as
    page.get_by_test_id("confirm-submit").click()
    expect(page.get_by_test_id("import-status")).to_have_attribute("data-status", "completed", timeout=15_000)
    user = get_user_model().objects.get(email="wang@import.test")
    assert user.last_name + user.first_name == "王小明"  # a Chinese full name: family name first
    assert user.recipient_profile.phone == "+8613800138000"
