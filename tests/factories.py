"""factory_boy factories for the domain."""

from __future__ import annotations

import factory
from django.contrib.auth import get_user_model
from django.utils import timezone

from notifications.models import Category, Delivery, Notification, RecipientProfile

PASSWORD = "correct horse battery staple"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ["username"]
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")
    first_name = factory.Faker("first_name")
    last_name = factory.Faker("last_name")
    password = factory.django.Password(PASSWORD)


class RecipientProfileFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = RecipientProfile

    user = factory.SubFactory(UserFactory)
    phone = factory.Sequence(lambda n: f"+1415555{n % 10000:04d}")
    timezone = "Europe/London"
    locale = "en"


class CategoryFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Category
        django_get_or_create = ["key"]

    key = factory.Sequence(lambda n: f"category-{n}")
    name = factory.LazyAttribute(lambda c: c.key.replace("-", " ").title())
    kind = Category.Kind.MARKETING


class NotificationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Notification

    recipient = factory.SubFactory(UserFactory)
    title = factory.Sequence(lambda n: f"Notification {n}")
    body = "Something happened."
    created_at = factory.LazyFunction(timezone.now)


class DeliveryFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Delivery

    recipient = factory.SubFactory(UserFactory)
    idempotency_key = factory.Sequence(lambda n: f"test:{n}")
    channel = "email"
    address = factory.LazyAttribute(lambda d: d.recipient.email)


# --- Audiences and the demo shop (tests/notifications/test_audience*.py) ----------------------


class AudienceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "notifications.Audience"

    name = factory.Sequence(lambda n: f"Audience {n}")
    kind = "rules"
    rules = factory.LazyFunction(dict)


class CustomerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "demo_shop.Customer"

    user = factory.SubFactory(UserFactory)


class OrderFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "demo_shop.Order"

    customer = factory.SubFactory(CustomerFactory)
    number = factory.Sequence(lambda n: f"SO-{n:06d}")
    status = "paid"
    total = "25.00"
    paid_at = factory.LazyFunction(timezone.now)


# --- Message templates (tests/notifications/test_templating.py, test_template_admin.py) ------


class MessageTemplateFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "notifications.MessageTemplate"
        django_get_or_create = ["key"]

    key = factory.Sequence(lambda n: f"template-{n}")
    name = factory.LazyAttribute(lambda t: t.key.replace("-", " ").title())
    locale = "en"
    email_subject = "Hello {{ recipient.first_name }}"
    email_body = "Hi **{{ recipient.first_name }}**,\n\nWelcome to [Signalbox]({{ site_url }}/)."
    sms_text = "Hi {{ recipient.first_name }}, welcome to Signalbox."
    inapp_title = "Welcome, {{ recipient.first_name }}"
    inapp_body = "Good to have you here."
    inapp_url = "/notifications/"


class MessageTemplateVariantFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "notifications.MessageTemplateVariant"

    template = factory.SubFactory(MessageTemplateFactory)
    locale = "zh-hans"


def staff_in(group: str | None, username: str):
    """A staff member in one role group (``accounts.roles``), or a superuser when ``group`` is None."""
    from django.contrib.auth.models import Group

    from accounts.roles import roles_ensure

    roles_ensure()
    user = UserFactory(username=username, is_staff=True, is_superuser=group is None)
    if group:
        user.groups.add(Group.objects.get(name=group))
    return user
