"""The abandoned-cart-like journey, built in the builder and run from the demo shop (issue 13's
Chromium acceptance). Screenshots: var/screenshots/jbuilder-*.png.

A Marketer creates a journey entered when an order is saved as paid, then in the builder adds
"send in-app → wait 1 hour → branch on opened → (no) send email", simulates it for a real
customer (rendered message, nothing written), publishes it; the shop's staff "Mark as paid" the
customer's order; a journeys tick in the live server's process advances the customer, and the
cards' counters move without a reload. No console error, page error or failed request.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.utils import timezone
from playwright.sync_api import Browser, Page, expect

from accounts.roles import roles_ensure
from demo_shop.models import Customer, Order
from notifications.journeys.builder import dom_id
from notifications.journeys.engine import journeys_tick
from notifications.models import Category, Delivery, Journey, JourneyEnrollment, MessageTemplate
from tests.factories import PASSWORD, RecipientProfileFactory, UserFactory

from .staff import log_in

pytestmark = pytest.mark.django_db(transaction=True)
SHOTS = Path(__file__).resolve().parents[2] / "var" / "screenshots"
ENTRY = {"kind": "signal", "signal": "model.post_save", "model": "demo_shop.order", "events": ["updated"],
         "changed_field": "status", "changed_to": "paid", "conditions": [], "recipient_path": "customer.user"}


@pytest.fixture
def shop(settings):
    settings.TASKS = {"default": {"BACKEND": "django_tasks.backends.immediate.ImmediateBackend"}}
    roles_ensure()
    User = get_user_model()
    mia = User.objects.create_user("mia", "mia@staff.example", PASSWORD, is_staff=True)
    mia.groups.add(Group.objects.get(name="Marketers"))
    User.objects.create_superuser("sam", "sam@staff.example", PASSWORD)
    Category.objects.get_or_create(key="shop-news", defaults={"name": "Shop news", "kind": "marketing"})
    MessageTemplate.objects.create(key="cart-inapp", name="Cart reminder (in-app)",
                                   inapp_title="Thanks {{ recipient.first_name }}, one more thing",
                                   inapp_body="Your order is on its way.")
    MessageTemplate.objects.create(key="cart-email", name="Cart follow-up (email)",
                                   email_subject="Did you see this, {{ recipient.first_name }}?",
                                   email_body="Hello {{ recipient.first_name }}, here is what is new.")
    carol = RecipientProfileFactory(user=UserFactory(username="carol", first_name="Carol",
                                                     email="carol@shop.example")).user
    order = Order.objects.create(customer=Customer.objects.create(user=carol), number="CART-1",
                                 total=Decimal("80"), status="pending", paid_at=None)
    return {"carol": carol, "order": order}


class Watched:
    def __init__(self, browser: Browser, base: str, who: str):
        self.context = browser.new_context(base_url=base, viewport={"width": 1500, "height": 1100})
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.page.on("console", lambda m: m.type == "error" and self.errors.append(f"[{who}] {m.text} {m.location}"))
        self.page.on("pageerror", lambda e: self.errors.append(f"[{who}] {e.name}: {e.message}"))
        self.page.on("response", lambda r: r.status >= 400 and self.errors.append(f"[{who}] {r.status} {r.url}"))
        self.page.on("dialog", lambda d: d.accept())  # hx-confirm
        log_in(self.page, base, who)

    def shot(self, name: str) -> None:
        SHOTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(SHOTS / f"jbuilder-{name}.png"), full_page=True)


def settled(page: Page) -> None:
    """Wait until htmx has settled the content it just swapped in. htmx binds the hx-* attributes
    of swapped content only when it settles (``htmx.config.defaultSettleDelay`` later, marked by
    the ``htmx-added``/``htmx-settling`` classes until then): a change or a click in that window
    reaches no htmx listener (the switch's redraw never happens; a submit is a native one)."""
    expect(page.locator(".htmx-added, .htmx-settling")).to_have_count(0)


def add_step(page: Page, *, kind: str, parent: str = "", arm: str = "") -> None:
    slot = page.locator(f"[data-testid=add-step][data-parent='{parent}'][data-arm='{arm}']")
    slot.locator("select[name=kind]").select_option(kind)
    slot.locator("button[type=submit]").click()
    expect(page.get_by_test_id("step-editor")).to_be_visible()
    settled(page)


def save_step(page: Page, step_id: str) -> None:
    page.get_by_test_id("save-step").click()
    expect(page.get_by_test_id("step-editor")).to_have_count(0)
    expect(page.locator(f"[data-testid=card][data-step='{step_id}']")).to_be_visible()
    settled(page)


def counts(page: Page, step_id: str):
    return page.locator(f"#counts-{dom_id(step_id)}")


def test_build_simulate_publish_and_watch_an_order_paid_journey(browser: Browser, live_server, shop):
    base = live_server.url
    mia = Watched(browser, base, "mia")
    page = mia.page

    # 1. A new journey, entered when an order is saved as paid: straight into the builder.
    page.goto("/admin/notifications/journey/add/")
    page.locator("input[name=name]").fill("Order paid follow-up")
    page.locator("input[name=key]").fill("order-paid-follow-up")
    page.locator("select[name=category]").select_option(label="Shop news")
    page.locator("button[name=_save]").click()
    expect(page.get_by_test_id("journey-builder")).to_be_visible()
    page.wait_for_load_state()  # htmx processes the page once it has loaded
    expect(page.get_by_test_id("entry-card")).to_contain_text("from code")

    # The entry is built in the builder, not typed as JSON: each choice re-draws the form.
    page.get_by_test_id("edit-entry").click()
    expect(page.get_by_test_id("rule-editor")).to_be_visible()
    settled(page)
    editor = page.get_by_test_id("rule-editor")
    editor.locator("select[name=kind]").select_option("signal")
    expect(editor.locator("select[name=signal]")).to_be_visible()
    settled(page)
    # Nothing on the form shows that this re-draw came back: wait for its answer (a choice made
    # before it does would re-draw again and abort it, hx-sync "replace": right, but logged by htmx).
    with page.expect_response(lambda r: "/builder/entry/" in r.url):
        editor.locator("select[name=signal]").select_option("model.post_save")
    settled(page)
    editor.locator("select[name=model]").select_option("demo_shop.order")
    expect(editor.locator("select[name=changed_field] option[value=status]")).to_have_count(1)
    settled(page)
    editor.locator("input[name=events][value=updated]").check()
    editor.locator("select[name=changed_field]").select_option("status")
    editor.locator("input[name=changed_to]").fill("paid")
    editor.locator("select[name=reentry]").select_option("always")
    editor.get_by_test_id("save-rule").click()  # no recipient yet: a sentence, nothing saved
    expect(page.get_by_test_id("form-error").first).to_contain_text("Entry:")
    settled(page)
    page.get_by_test_id("rule-editor").locator("select[name=recipient_path]").select_option("customer.user")
    page.get_by_test_id("save-rule").click()
    expect(page.get_by_test_id("rule-editor")).to_have_count(0)
    expect(page.get_by_test_id("entry-card")).to_contain_text("demo_shop.order")
    settled(page)
    assert Journey.objects.get(key="order-paid-follow-up").entry == ENTRY

    # An exit condition: the order is cancelled.
    page.get_by_test_id("add-exits").click()
    expect(page.get_by_test_id("rule-editor")).to_be_visible()
    settled(page)
    page.get_by_test_id("rule-editor").locator("select[name=model]").select_option("demo_shop.order")
    expect(page.locator("[data-testid=rule-editor] select[name=recipient_path] option[value='customer.user']")).to_have_count(1)
    settled(page)
    editor = page.get_by_test_id("rule-editor")
    editor.locator("select[name=recipient_path]").select_option("customer.user")
    editor.locator("select[name=conditions-0-field]").select_option("status")
    editor.locator("input[name=conditions-0-value]").fill("cancelled")
    editor.get_by_test_id("save-rule").click()
    expect(page.locator("[data-testid=rule-card][data-list=exits]")).to_contain_text("status")
    settled(page)
    expect(page.get_by_test_id("problems")).to_contain_text("no steps")
    expect(page.get_by_test_id("publish")).to_be_disabled()

    # 2. Send in-app → wait 1 hour → branch on opened → (no) send email.
    add_step(page, kind="send")
    page.locator("select[name=step-template]").select_option("cart-inapp")
    page.locator("input[name=step-channels][value=inapp]").check()
    save_step(page, "send-1")
    add_step(page, kind="wait", parent="send-1", arm="next")
    expect(page.locator("input[name=step-until_time]")).to_have_count(0)  # a duration by default: its fields only
    page.get_by_test_id("save-step").click()  # no duration: a form error, nothing saved
    expect(page.get_by_test_id("form-error").first).to_contain_text("Give days, hours or minutes.")
    settled(page)
    page.locator("input[name=step-hours]").fill("1")
    save_step(page, "wait-1")
    add_step(page, kind="branch", parent="wait-1", arm="next")
    expect(page.locator("select[name=step-step]")).to_have_count(0)  # a field condition by default
    page.locator("select[name=step-on]").select_option("receipt")
    expect(page.locator("input[name=step-field]")).to_have_count(0)  # the form is re-drawn for receipts
    settled(page)
    page.locator("select[name=step-step]").select_option("send-1")
    page.locator("select[name=step-event]").select_option("opened")
    save_step(page, "branch-1")
    expect(page.locator("[data-testid=card][data-step=branch-1]")).to_contain_text("If the message of send-1 was opened")
    add_step(page, kind="send", parent="branch-1", arm="no")
    page.locator("select[name=step-template]").select_option("cart-email")
    page.locator("input[name=step-channels][value=email]").check()
    save_step(page, "send-2")
    expect(page.get_by_test_id("no-problems")).to_be_visible()
    expect(page.get_by_test_id("arm")).to_have_count(2)
    expect(page.get_by_test_id("publish")).to_be_enabled()
    mia.shot("1-built")

    # 3. Simulate for the real customer: her path and her rendered messages; nothing written.
    page.locator("input[name=person]").fill("carol@shop.example")
    page.get_by_test_id("simulate").click()
    result = page.get_by_test_id("simulate-result")
    expect(result.locator("[data-step=send-1]")).to_have_attribute("data-taken", "yes")
    expect(result.locator("[data-step=send-1]")).to_contain_text("Thanks Carol, one more thing")
    expect(result.locator("[data-step=send-2]")).to_contain_text("Did you see this, Carol?")
    expect(result.locator("[data-step=send-2]")).to_contain_text("carol@shop.example")
    mia.shot("2-simulated")
    assert not JourneyEnrollment.objects.exists() and not Delivery.objects.exists()

    # 4. Publish: version 1 is live; counters appear on the cards.
    page.get_by_test_id("publish").click()
    expect(page.get_by_test_id("published")).to_be_visible()
    journey = Journey.objects.get(key="order-paid-follow-up")
    assert journey.status == "live" and journey.current_version.number == 1
    expect(counts(page, "send-1")).to_contain_text("passed 0")
    expect(page.get_by_test_id("counter-poll")).to_have_count(1)  # polling from now on, no reload

    # 5. The shop's staff mark the order paid: the customer enters.
    sam = Watched(browser, base, "sam")
    sam.page.goto("/admin/demo_shop/order/")
    sam.page.locator(f"input[name=_selected_action][value='{shop['order'].pk}']").check()
    sam.page.locator("select[name=action]").select_option("mark_paid")
    sam.page.locator("button[name=index]").first.click()
    expect(sam.page.locator("body")).to_contain_text("1 order marked as paid")
    enrollment = JourneyEnrollment.objects.get()
    assert enrollment.user_id == shop["carol"].pk

    # 6. A journeys tick in the live server's process: the counters move without a reload.
    journeys_tick()
    expect(counts(page, "send-1")).to_contain_text("passed 1", timeout=15000)
    expect(counts(page, "wait-1")).to_contain_text("in step now 1")
    mia.shot("3-in-the-wait")
    # An hour later, not opened: the email.
    journeys_tick(now=timezone.now() + timedelta(hours=1, minutes=1))
    expect(counts(page, "send-2")).to_contain_text("passed 1", timeout=15000)
    expect(counts(page, "branch-1")).to_contain_text("passed 1")
    mia.shot("4-emailed")
    channels = set(Delivery.objects.filter(recipient=shop["carol"]).values_list("channel", flat=True))
    assert channels == {"inapp", "email"}
    assert Journey.objects.get(pk=journey.pk).current_version.exits[0]["conditions"][0]["value"] == "cancelled"
    assert mia.errors + sam.errors == [], "\n".join(mia.errors + sam.errors)
    mia.context.close()
    sam.context.close()
