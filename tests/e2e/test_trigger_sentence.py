"""A marketer builds "When Order is updated and status changes to paid, send … to customer.user by
in-app" in the sentence form; building the same trigger again warns about the duplicate, naming
the first; "Mark as paid" on the order then reaches the customer's inbox exactly once. Any console
error, page error or failed request fails the test."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from playwright.sync_api import Browser, Page, expect

from accounts.roles import roles_ensure
from demo_shop.models import Customer, Order
from notifications.models import Category, MessageTemplate, Notification, SignalTrigger
from tests.factories import PASSWORD, RecipientProfileFactory, UserFactory

pytestmark = pytest.mark.django_db(transaction=True)
SHOTS = Path("var/screenshots")
NAME = "Order paid → customer (e2e)"


def build_trigger(page: Page, template: MessageTemplate, *, name: str) -> None:
    page.goto("/admin/notifications/signaltrigger/add/")
    page.locator("input[name=name]").fill(name)
    page.locator("select[name=signal]").select_option("model.post_save")
    page.locator("select[name=model]").select_option("demo_shop.order")
    # The field list follows the model: Order's fields, once each, and none of Customer's.
    options = page.locator("select[name=changed_field] option").evaluate_all("els => els.map(e => e.value)")
    assert options.count("created_at") == 1 and "vip" not in options and "status" in options
    page.locator("input[name=events][value=updated]").check()
    page.locator("select[name=changed_field]").select_option("status")
    page.locator("input[name=changed_to]").fill("paid")
    page.locator("select[name=conditions-0-field]").select_option("total")
    page.locator("select[name=conditions-0-op]").select_option("gte")
    page.locator("input[name=conditions-0-value]").fill("1")
    page.locator("select[name=template]").select_option(str(template.pk))
    page.locator("select[name=recipient_path]").select_option("customer.user")
    page.locator("input[name=channels][value=inapp]").check()
    page.locator("select[name=category]").select_option(str(template.category_id))


LOCALES = {
    # browser locale: (screenshot suffix, the sentence's first words, the shop's "marked as paid" message)
    "en-US": ("", "When", "1 order marked as paid"),
    "zh-CN": ("-zh", "变化的字段", "已将 1 个订单标记为已付款"),
}


@pytest.mark.parametrize("locale", sorted(LOCALES))
def test_sentence_trigger_warns_about_a_duplicate_and_fires_once(browser: Browser, live_server, locale):
    suffix, sentence_word, paid_message = LOCALES[locale]
    SHOTS.mkdir(parents=True, exist_ok=True)
    roles_ensure()
    marketer = get_user_model().objects.create_user("mia", "mia@staff.example", PASSWORD, is_staff=True)
    marketer.groups.add(Group.objects.get(name="Marketers"))
    # The shop's own staff mark orders paid; here the marketer may too.
    marketer.user_permissions.add(Permission.objects.get(codename="change_order", content_type__app_label="demo_shop"))
    category = Category.objects.create(key="order-updates-e2e", name="Order updates", kind="transactional",
                                       user_can_opt_out=False)
    template = MessageTemplate.objects.create(key="order-paid-e2e", name="Order paid (e2e)", category=category,
                                              inapp_title="Order {{ instance.number }} is paid",
                                              inapp_body="Thank you!")
    cora = RecipientProfileFactory(user=UserFactory(username="cora", first_name="Cora")).user
    order = Order.objects.create(customer=Customer.objects.create(user=cora), number="E2E-1", total=Decimal("42"))

    context = browser.new_context(locale=locale, base_url=live_server.url, viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: m.type == "error" and errors.append(f"{m.text} {m.location}"))
    page.on("pageerror", lambda e: errors.append(f"{e.name}: {e.message}"))
    page.on("response", lambda r: r.status >= 400 and errors.append(f"{r.status} {r.url}"))
    try:
        page.goto("/admin/login/?next=/admin/")
        page.locator("input[name=username]").fill("mia")
        page.locator("input[name=password]").fill(PASSWORD)
        page.locator("button[type=submit]").click()
        expect(page).to_have_url(f"{live_server.url}/admin/")

        build_trigger(page, template, name=NAME)
        page.locator("input[name=is_active]").check()
        expect(page.get_by_test_id("trigger-duplicate")).to_have_count(0)
        expect(page.get_by_test_id("trigger-sentence")).to_contain_text(sentence_word)
        page.screenshot(path=str(SHOTS / f"trigger-1-sentence{suffix}.png"), full_page=True)
        page.locator("button[name=_save]").click()
        expect(page).to_have_url(f"{live_server.url}/admin/notifications/signaltrigger/")
        first = SignalTrigger.objects.get()
        assert first.is_active and first.conditions == [{"field": "total", "op": "gte", "value": "1"}]
        assert (first.changed_field, first.changed_to, first.recipient_path, first.channels) == (
            "status", "paid", "customer.user", ["inapp"])

        build_trigger(page, template, name="Paid again")
        warning = page.get_by_test_id("trigger-duplicate")
        expect(warning).to_be_visible()
        expect(warning).to_contain_text(NAME)
        page.screenshot(path=str(SHOTS / f"trigger-2-duplicate{suffix}.png"), full_page=True)

        page.goto("/admin/demo_shop/order/")
        page.locator(f"input[name=_selected_action][value='{order.pk}']").check()
        page.locator("select[name=action]").select_option("mark_paid")
        page.locator("button[name=index]").first.click()
        expect(page.locator("body")).to_contain_text(paid_message)
        page.screenshot(path=str(SHOTS / f"trigger-3-marked-paid{suffix}.png"), full_page=True)

        inbox = Notification.objects.filter(recipient=cora)
        assert list(inbox.values_list("title", flat=True)) == ["Order E2E-1 is paid"]
        assert SignalTrigger.objects.get().fired_count == 1

        page.goto(f"/admin/notifications/signaltrigger/{first.pk}/test/?instance={order.pk}")
        expect(page.get_by_test_id("trigger-test-result")).to_have_attribute("data-fires", "yes")
        expect(page.get_by_test_id("trigger-test-inapp")).to_contain_text("Order E2E-1 is paid")
        page.screenshot(path=str(SHOTS / f"trigger-4-dry-run{suffix}.png"), full_page=True)
        assert inbox.count() == 1  # the dry run sent nothing
        assert errors == [], errors
    finally:
        context.close()
