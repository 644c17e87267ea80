"""Demo audiences, templates, campaigns and the "order paid" trigger, so ``make run`` shows each
capability on first login. Idempotent: keyed by name/key, never duplicated on a re-run."""

from __future__ import annotations

from datetime import datetime, time, timedelta

from django.contrib.auth import get_user_model

from notifications.models import Audience, AudienceMember, Campaign, Category, MessageTemplate, MessageTemplateVariant

TEMPLATES = [
    {
        "key": "spring-sale",
        "name": "Spring sale",
        "email_subject": "{{ recipient.first_name }}, spring sale: 20% off everything",
        "email_body": (
            "Hello {{ recipient.first_name }},\n\n**Everything is 20% off** until Sunday.\n\n"
            "[Shop the sale](https://shop.example.com/sale)\n\n— The Signalbox demo shop"
        ),
        "sms_text": "Spring sale: 20% off until Sunday. https://shop.example.com/sale",
        "push_title": "Spring sale", "push_body": "20% off everything until Sunday",
        "inapp_title": "Spring sale: 20% off", "inapp_body": "Everything is 20% off until Sunday.",
        "inapp_url": "https://shop.example.com/sale",
        "zh-hans": {
            "email_subject": "{{ recipient.first_name }}，春季特卖：全场八折",
            "email_body": "{{ recipient.first_name }} 您好：\n\n**全场八折**，截至周日。\n\n[立即选购](https://shop.example.com/sale)",
            "sms_text": "春季特卖：全场八折，截至周日。https://shop.example.com/sale",
            "inapp_title": "春季特卖：全场八折", "inapp_body": "全场商品八折，截至周日。",
        },
    },
    {
        "key": "weekly-news",
        "name": "Weekly news",
        "email_subject": "This week at the shop",
        "email_body": "Hi {{ recipient.first_name }},\n\nHere is what is new this week.",
        "inapp_title": "This week at the shop", "inapp_body": "New arrivals and stories.",
        "zh-hans": {"email_subject": "本周新鲜事", "email_body": "{{ recipient.first_name }} 您好：\n\n本周新品与故事。",
                    "inapp_title": "本周新鲜事", "inapp_body": "新品与故事。"},
    },
]

AUDIENCES = [
    ("Chinese-speaking recipients", {"all": [{"field": "profile.locale", "op": "in", "value": ["zh-hans"]}]}),
    ("Loyal customers (2+ paid orders in 90 days)",
     {"all": [{"field": "shop.paid_orders", "op": "gte", "value": {"count": 2, "days": 90}}]}),
    ("Reachable by SMS", {"all": [{"field": "profile.has_phone", "op": "is", "value": True}]}),
]


def demo_campaigns_ensure(*, categories: dict[str, Category], author, now: datetime) -> None:
    templates = {spec["key"]: _template_ensure(spec, category=categories["promotions"]) for spec in TEMPLATES}
    audiences = {
        name: Audience.objects.get_or_create(name=name, defaults={"kind": Audience.Kind.RULES, "rules": rules,
                                                                   "created_by": author})[0]
        for name, rules in AUDIENCES
    }
    beta, created = Audience.objects.get_or_create(
        name="Beta testers", defaults={"kind": Audience.Kind.STATIC, "created_by": author,
                                       "description": "A hand-picked static list."},
    )
    if created:
        ids = get_user_model().objects.filter(username__startswith="r0000").order_by("pk").values_list("pk", flat=True)[:9]
        AudienceMember.objects.bulk_create(AudienceMember(audience=beta, user_id=pk) for pk in ids)
        demo = get_user_model().objects.filter(username="demo").first()
        if demo:
            AudienceMember.objects.get_or_create(audience=beta, user=demo)
    campaigns = [
        {"name": "Spring sale to beta testers", "audience": beta, "template": templates["spring-sale"],
         "channels": ["inapp", "email"], "status": Campaign.Status.DRAFT},
        {"name": "Spring sale — China, 09:00 local", "audience": audiences["Chinese-speaking recipients"],
         "template": templates["spring-sale"], "channels": ["email", "inapp"], "status": Campaign.Status.DRAFT,
         "schedule": Campaign.Schedule.LOCAL_TIME, "local_send_date": (now + timedelta(days=7)).date(),
         "local_send_time": time(9, 0)},
        {"name": "Weekly news (Mondays 09:00 New York)", "audience": audiences["Loyal customers (2+ paid orders in 90 days)"],
         "template": templates["weekly-news"], "channels": ["email"], "status": Campaign.Status.DRAFT,
         "schedule": Campaign.Schedule.RECURRING, "rrule": "FREQ=WEEKLY;BYDAY=MO;BYHOUR=9;BYMINUTE=0",
         "schedule_timezone": "America/New_York", "recurrence_start": now},
    ]
    for spec in campaigns:
        Campaign.objects.get_or_create(
            name=spec.pop("name"), defaults={**spec, "category": categories["promotions"], "author": author}
        )
    from ..demo import demo_triggers_ensure

    demo_triggers_ensure()


def _template_ensure(spec: dict, *, category: Category) -> MessageTemplate:
    spec = dict(spec)
    variant = spec.pop("zh-hans", None)
    key = spec.pop("key")
    template, created = MessageTemplate.objects.get_or_create(key=key, defaults={**spec, "category": category})
    if created and variant:
        MessageTemplateVariant.objects.create(template=template, locale="zh-hans", **variant)
    return template
