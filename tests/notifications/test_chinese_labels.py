"""Data labels and names as a Chinese reader expects them: categories by their Chinese name
(falling back to the default name), people family name first without a space (杨欢)."""

from __future__ import annotations

import re

import pytest
from django.conf import settings
from django.urls import reverse
from django.utils import translation

from accounts.names import full_name, person_name
from notifications import tokens
from notifications.templating.context import recipient_context
from tests.factories import (
    CategoryFactory,
    DeliveryFactory,
    NotificationFactory,
    RecipientProfileFactory,
    UserFactory,
    staff_in,
)

pytestmark = pytest.mark.django_db


# --- Names ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("first", "last", "shown"), [
    ("欢", "杨", "杨欢"),
    ("Huan", "Yang", "Huan Yang"),
    ("Ada", "Lovelace", "Ada Lovelace"),
    ("欢", "", "欢"),
    ("", "杨", "杨"),
    (" ", None, ""),
])
def test_full_name_is_in_the_names_own_order(first, last, shown):
    assert full_name(first, last) == shown
    with translation.override("zh-hans"):
        assert full_name(first, last) == shown  # the order never flips with the reader's language


def test_person_name_falls_back_to_the_username():
    assert person_name(UserFactory(username="anon", first_name="", last_name="")) == "anon"
    assert person_name(UserFactory(username="yh", first_name="欢", last_name="杨")) == "杨欢"


def test_message_templates_get_the_full_name_in_its_order():
    user = RecipientProfileFactory(user=UserFactory(first_name="欢", last_name="杨"), locale="zh-hans").user
    assert recipient_context(user)["full_name"] == "杨欢"


def test_user_list_and_sidebar_show_chinese_names_family_name_first(client):
    root = staff_in(None, "root")
    root.first_name, root.last_name = "伟", "王"
    root.save()
    UserFactory(username="yh", first_name="欢", last_name="杨")
    client.force_login(root)
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "zh-hans"
    html = client.get(reverse("admin:auth_user_changelist")).content.decode()
    assert "杨欢" in html and "欢 杨" not in html
    assert "王伟" in html  # the signed-in user in the sidebar
    assert re.search(r">\s*王\s*</div>", html)  # and the avatar's initial: the family name's


# --- Category names ---------------------------------------------------------------------------


@pytest.fixture
def newsletter():
    return CategoryFactory(key="newsletter", name="Newsletter", name_zh_hans="新闻简报")


def test_display_name_is_the_languages_name_or_the_default():
    untranslated = CategoryFactory(key="promo", name="Promotions")
    translated = CategoryFactory(key="news", name="Newsletter", name_zh_hans="新闻简报")
    assert translated.display_name("zh-hans") == "新闻简报"
    assert translated.display_name("en") == "Newsletter"
    assert untranslated.display_name("zh-hans") == "Promotions"
    with translation.override("zh-hans"):
        assert str(translated) == "新闻简报"
    with translation.override("en"):
        assert str(translated) == "Newsletter"


def _zh(client):
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "zh-hans"
    return client


def test_preference_centre_names_categories_in_chinese(recipient_client, newsletter):
    html = _zh(recipient_client).get(reverse("notifications:preferences")).content.decode()
    assert "新闻简报" in html and "Newsletter" not in html
    recipient_client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    assert "Newsletter" in recipient_client.get(reverse("notifications:preferences")).content.decode()


def test_inbox_names_the_category_in_chinese(recipient_client, recipient, newsletter):
    NotificationFactory(recipient=recipient, title="Hello", category=newsletter)
    html = _zh(recipient_client).get(reverse("notifications:inbox")).content.decode()
    assert "新闻简报" in html and "Newsletter" not in html


def test_unsubscribe_page_names_the_category_in_chinese(client, recipient, newsletter):
    delivery = DeliveryFactory(recipient=recipient, category=newsletter)
    url = reverse("notifications:unsubscribe", args=[tokens.unsubscribe_token(delivery.pk)])
    html = _zh(client).get(url).content.decode()
    assert "新闻简报" in html and "Newsletter" not in html


def test_staff_edit_the_chinese_name_and_see_it_in_the_list(client, newsletter):
    client.force_login(staff_in(None, "root"))
    _zh(client)
    change = client.get(reverse("admin:notifications_category_change", args=[newsletter.pk])).content.decode()
    assert 'name="name_zh_hans"' in change and 'value="新闻简报"' in change
    listing = client.get(reverse("admin:notifications_category_changelist")).content.decode()
    assert "新闻简报" in listing


@pytest.mark.parametrize(("name", "theirs_line", "ours_line"), [
    ("navigation_user.html", "{{ user.get_full_name|default:user.get_username }}",
     "{{ user|person_name|default:user.get_username }}"),
    ("avatar.html", "{{ user.get_full_name.0|default:user.get_username.0|upper }}",
     "{% with shown=user|person_name %}{{ shown.0|default:user.get_username.0|upper }}{% endwith %}"),
])
def test_our_copies_of_unfolds_user_helpers_differ_only_by_the_name(name, theirs_line, ours_line):
    """An Unfold upgrade that changes these helpers fails here: copy them again with the one change."""
    from pathlib import Path

    import unfold

    ours = (Path(settings.BASE_DIR) / "templates" / "unfold" / "helpers" / name).read_text()
    theirs = (Path(unfold.__file__).parent / "templates" / "unfold" / "helpers" / name).read_text()
    first_line, ours = ours.split("\n", 1)
    assert first_line.startswith("{% load people %}")
    assert theirs_line in theirs, f"Unfold's {name} no longer shows the name this way"
    assert ours == theirs.replace(theirs_line, ours_line), f"Unfold's {name} changed: copy it again"


def test_the_audit_log_names_a_category_in_the_sites_language_whoever_acts(db):
    from django.utils import translation

    from notifications.models import AuditEntry, Category
    from notifications.services import audit_record

    category = Category.objects.create(key="news", name="Newsletter", name_zh_hans="新闻简报", kind="marketing")
    with translation.override("zh-hans"):
        assert str(category) == "新闻简报"
        audit_record(actor=None, action="category.edit", target=category)
    assert AuditEntry.objects.get(action="category.edit").target_repr == "Newsletter"
