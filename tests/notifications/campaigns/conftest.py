"""Campaign fixtures: an audience of N recipients, a template, a campaign ready to launch."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import Group

from accounts.roles import roles_ensure
from notifications.models import Audience, AudienceMember, Campaign, Category, MessageTemplate, RecipientProfile


def make_recipients(n: int, *, prefix: str = "r", timezones=("UTC",)) -> list[int]:
    """``n`` active users with profiles (bulk, so thousands take well under a second)."""
    User = get_user_model()
    password = make_password(None)
    User.objects.bulk_create(
        User(username=f"{prefix}{i}", email=f"{prefix}{i}@example.com", first_name=f"N{i}", password=password)
        for i in range(n)
    )
    ids = list(User.objects.filter(username__startswith=prefix).order_by("id").values_list("id", flat=True))
    RecipientProfile.objects.bulk_create(
        RecipientProfile(user_id=pk, timezone=timezones[i % len(timezones)]) for i, pk in enumerate(ids)
    )
    return ids


def static_audience(name: str, user_ids: list[int]) -> Audience:
    audience = Audience.objects.create(name=name, kind=Audience.Kind.STATIC)
    AudienceMember.objects.bulk_create(AudienceMember(audience=audience, user_id=pk) for pk in user_ids)
    return audience


@pytest.fixture
def newsletter(db) -> Category:
    return Category.objects.get_or_create(key="newsletter", defaults={"name": "Newsletter", "kind": "marketing"})[0]


@pytest.fixture
def template(db) -> MessageTemplate:
    return MessageTemplate.objects.create(
        key="spring-sale", name="Spring sale",
        email_subject="Hello {{ recipient.first_name }}", email_body="**Spring sale** for {{ campaign.name }}",
        inapp_title="Sale for {{ recipient.first_name }}", inapp_body="{{ campaign.name }}",
        sms_text="Sale {{ recipient.first_name }}",
    )


@pytest.fixture
def make_campaign(db, newsletter, template):
    def make(audience: Audience, **fields) -> Campaign:
        defaults = {"name": "Spring sale", "template": template, "category": newsletter, "channels": ["email"]}
        return Campaign.objects.create(audience=audience, **{**defaults, **fields})

    return make


@pytest.fixture
def staff(db):
    """Users by role: marketer (author), another marketer, manager, operator, a marketer without launch."""
    roles_ensure()
    User = get_user_model()

    def member(username: str, group: str | None) -> object:
        user = User.objects.create_user(username=username, email=f"{username}@example.com", is_staff=True)
        if group:
            user.groups.add(Group.objects.get(name=group))
        return user

    users = {
        "marketer": member("mia", "Marketers"),
        "other_marketer": member("max", "Marketers"),
        "manager": member("meg", "Managers"),
        "operator": member("otto", "Operators"),
    }
    builders = Group.objects.create(name="Campaign builders (no launch)")
    builders.permissions.set(Group.objects.get(name="Marketers").permissions.exclude(codename="launch_campaign"))
    users["builder"] = member("bea", None)
    users["builder"].groups.add(builders)
    return users


# What the campaign form posts when it has no A/B test: the section's defaults and an empty
# variants inline (its management form, which every admin POST of the page carries).
AB_TEST_NONE = {
    "test_share": "20", "test_metric": "clicks", "test_window": "04:00:00",
    "variants-TOTAL_FORMS": "0", "variants-INITIAL_FORMS": "0", "variants-MIN_NUM_FORMS": "0",
    "variants-MAX_NUM_FORMS": "4",
}
