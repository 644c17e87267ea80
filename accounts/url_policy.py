"""Which rule of ``accounts.roles`` guards each URL: the table a test walks for every role.

Every named URL pattern is listed here, or is a model admin page whose rule follows from its
model's permissions (``admin_model_rule``). A new page without an entry fails
``tests/accounts/test_url_policy.py``, so nobody adds a page and forgets who may open it.

The rules say who may *reach* a page; a view may refuse more finely (a Marketer reaches the
campaign page but approving is refused by the service), and those finer refusals have their own
tests.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .roles import allows


@dataclass(frozen=True)
class Rule:
    """Who may open a URL. ``kind``: public, token, webhook, scraper, apikey, signed_in, staff, action,
    perm, superuser, nobody."""

    kind: str
    names: tuple[str, ...] = ()  # actions or permissions, any of which suffices

    def admits(self, user) -> bool:
        if self.kind in ("public", "token", "webhook"):
            return True
        if self.kind in ("scraper", "apikey"):
            return False  # a monitoring system's token or address decides, never a signed-in role
        if user is None or not user.is_authenticated or not user.is_active:
            return False
        if self.kind == "signed_in":
            return True
        if not user.is_staff:
            return False  # every other page is inside the staff admin
        if self.kind == "staff":
            return True
        if self.kind == "action":
            return any(allows(user, name) for name in self.names)
        if self.kind == "perm":
            return user.is_superuser or any(user.has_perm(name) for name in self.names)
        if self.kind == "superuser":
            return user.is_superuser
        if self.kind == "nobody":
            return False
        raise ValueError(f"Unknown rule kind {self.kind!r}.")


PUBLIC = Rule("public")  # anyone: the login page, language switch, password reset
TOKEN = Rule("token")  # a signed token in the URL is the authorisation (links in messages)
WEBHOOK = Rule("webhook")  # a provider's signature on the request is the authorisation
SIGNED_IN = Rule("signed_in")  # any signed-in user, acting on their own data only
STAFF = Rule("staff")  # any active staff member
SUPERUSER = Rule("superuser")
NOBODY = Rule("nobody")  # a page that exists but refuses everyone, superusers included
# The REST API's server endpoints: a key decides (api.auth.ServerKey); being signed in, even as a
# superuser, admits nobody.
APIKEY = Rule("apikey")
# Prometheus' /metrics: a bearer token or an allowed client address is the authorisation
# (ops.metrics); being signed in, even as a superuser, admits nobody.
SCRAPER = Rule("scraper")


def action(*names: str) -> Rule:
    return Rule("action", names)


def perm(*names: str) -> Rule:
    return Rule("perm", names)


URL_POLICY: dict[str, Rule] = {
    "set_language": PUBLIC,
    "favicon": PUBLIC,  # a redirect to the static icon
    "login": PUBLIC,
    "logout": PUBLIC,  # signing out does nothing for someone who is not signed in
    # Password reset and invitations: the form and its answers are public; the token in the
    # link is what lets someone choose a password.
    "password_reset": PUBLIC,
    "password_reset_done": PUBLIC,
    "password_reset_complete": PUBLIC,
    "password_reset_confirm": TOKEN,
    "invitation_accept": TOKEN,
    "admin_password_reset": PUBLIC,  # redirects to password_reset
    # Health checks for load balancers and monitors (ops/): no sign-in, nothing personal in them.
    "ops:healthz": PUBLIC,
    "ops:readyz": PUBLIC,
    "ops:metrics": SCRAPER,
    "ops:system_status": action("system.view_status"),
    # Recipient pages: each shows or changes only the signed-in user's own rows.
    "notifications:inbox": SIGNED_IN,
    "notifications:badge": SIGNED_IN,
    "notifications:stream": SIGNED_IN,
    "notifications:feed": SIGNED_IN,  # JSON for <signalbox-inbox>: the user's own items only
    "notifications:mark_all_read": SIGNED_IN,
    "notifications:mark_read": SIGNED_IN,
    "notifications:open": SIGNED_IN,
    "notifications:broadcast_read": SIGNED_IN,  # a broadcast the user does not see is a 404
    "notifications:broadcast_open": SIGNED_IN,
    "notifications:preferences": SIGNED_IN,
    "shop:orders": SIGNED_IN,  # the demo shop's customer page: the user's own orders
    "shop:order_pay": SIGNED_IN,  # someone else's order is a 404
    "notifications:track_open": TOKEN,
    "notifications:track_click": TOKEN,
    "notifications:unsubscribe": TOKEN,
    "notifications:preferences_token": TOKEN,
    "push:subscribe": SIGNED_IN,
    "push:unsubscribe": SIGNED_IN,
    "webhooks:twilio_status": WEBHOOK,
    "webhooks:twilio_inbound": WEBHOOK,
    # Unsigned provider pushes: a secret token in the URL, compared in constant time (sms_reports).
    "webhooks:aliyun_sms_report": WEBHOOK,
    "webhooks:tencent_sms_status": WEBHOOK,
    "webhooks:wechat_events": WEBHOOK,  # signed by WeChat with WECHAT_TOKEN
    # ESP tracking webhooks behind a guard (notifications/receipts/anymail_urls.py): the secret and signature.
    **{f"anymail:{esp}_tracking_webhook": WEBHOOK for esp in (
        "amazon_ses", "brevo", "mailersend", "mailgun", "mailjet", "mailtrap", "mandrill", "postal", "postmark",
        "resend", "sendgrid", "sendinblue", "sparkpost", "unisender_go")},
    "anymail:mandrill_webhook": WEBHOOK,
    # The REST API (api/): the schema, docs and root redirect are public; /api/v1/ answers
    # server keys (a scope each, api.auth.ServerKey) or, under /me/, a recipient's session or token.
    "api:api-root": PUBLIC,
    "api:openapi-json": PUBLIC,
    "api:openapi-view": PUBLIC,
    **{f"api:{name}": APIKEY for name in (
        "notifications_send", "broadcasts_send", "journey_enter_people", "recipients_upsert_one", "recipients_upsert_bulk", "recipient_token",
        "recipient_preferences", "recipient_preferences_change", "suppressions_list", "suppressions_add", "suppressions_lift", "delivery_status", "campaigns_list",
        "campaign_status")},
    **{f"api:{name}": SIGNED_IN for name in ("my_inbox", "my_unread", "my_mark_read", "my_mark_all_read",
                                              "my_preferences", "my_preferences_change",
                                              "my_device_register", "my_devices", "my_device_unregister")},
    "admin:api_apikey_changelist": action("apikey.manage"),
    "admin:api_apikey_add": action("apikey.manage"),
    "admin:api_apikey_history": action("apikey.manage"),
    "admin:api_apikey_change": action("apikey.manage"),
    "admin:api_apikey_delete": NOBODY,
    # The admin shell.
    "admin:index": STAFF,
    "admin:login": PUBLIC,
    "admin:logout": PUBLIC,
    "admin:password_change": STAFF,
    "admin:password_change_done": STAFF,
    "admin:jsi18n": STAFF,
    "admin:search": STAFF,
    "admin:autocomplete": STAFF,  # answers only for models the user may view (Django checks)
    "admin:view_on_site": STAFF,
    "admin:app_list": STAFF,
    # Dashboard pages.
    "dashboard:analytics": action("analytics.view"),
    "dashboard:campaign": action("analytics.view"),
    "dashboard:campaign_recipients": action("analytics.view"),
    "dashboard:delivery_timeline": action("analytics.view"),
    "dashboard:journeys": action("analytics.view"),
    "dashboard:journey": action("analytics.view"),
    "dashboard:runs_progress": action("analytics.view"),
    "dashboard:home_kpis": action("analytics.view"),
    # The approval desk: Managers decide; anyone who may see campaigns reads what approval covers.
    "dashboard:approvals": action("campaign.approve"),
    "dashboard:approval": perm("notifications.view_campaign"),
    "dashboard:approval_decide": action("campaign.approve"),
    "dashboard:journey_approval": perm("notifications.view_journey"),
    "dashboard:journey_approval_decide": action("campaign.approve"),
    "reports:index": action("data.export", "reports.download"),
    "reports:mine": action("data.export", "reports.download"),
    "reports:export": action("data.export"),
    "reports:request_pdf": action("reports.download"),
    "reports:campaign_pdf": action("reports.download"),
    "reports:download": action("data.export", "reports.download"),
    "reports:audit_log": action("audit.view"),
    # Custom admin views of model admins.
    "admin:notifications_campaign_transition": perm("notifications.view_campaign"),  # the service decides
    "admin:notifications_campaign_progress": perm("notifications.view_campaign"),
    "admin:notifications_campaign_winner": perm("notifications.view_campaign"),  # the service decides
    "admin:notifications_campaign_schedule_preview": perm("notifications.view_campaign"),
    "admin:notifications_campaign_preflight": perm("notifications.view_campaign"),
    "admin:notifications_campaign_composer_audience": perm("notifications.view_campaign"),
    "admin:notifications_campaign_composer_content": perm("notifications.view_campaign"),
    "admin:notifications_campaign_duplicate": action("campaign.edit"),  # a new draft by its author
    # "Send to those who did not open" a finished run: a new draft with a new audience (followups).
    "admin:notifications_campaignrun_followup": action("campaign.edit"),
    "admin:notifications_audience_preview": perm("notifications.view_audience"),
    "admin:notifications_audience_upload_members": perm("notifications.change_audience"),
    "admin:notifications_messagetemplate_preview": perm("notifications.view_messagetemplate"),
    "admin:notifications_messagetemplate_open_preview": perm("notifications.view_messagetemplate"),
    "admin:notifications_signaltrigger_approve": action("campaign.approve"),
    "admin:notifications_signaltrigger_check": action("trigger.edit"),
    "admin:notifications_signaltrigger_test": action("trigger.dry_run"),
    "admin:notifications_signaltrigger_test_with_instance": action("trigger.dry_run"),
    # Journeys (notifications/admin/journeys.py): the verbs are "journey.publish" (the service checks too).
    **{f"admin:notifications_journey_{verb}": action("journey.publish") for verb in ("publish", "move", "pause", "resume", "stop")},
    # The builder (notifications/admin/journey_builder.py): reading, simulating and the counters
    # with the journeys; editing a step is "journey.edit", publishing "journey.publish".
    "admin:notifications_journey_builder": perm("notifications.view_journey"),
    "admin:notifications_journey_builder_counters": perm("notifications.view_journey"),
    "admin:notifications_journey_builder_simulate": perm("notifications.view_journey"),
    "admin:notifications_journey_builder_step": action("journey.edit"),
    "admin:notifications_journey_builder_delete": action("journey.edit"),
    "admin:notifications_journey_builder_entry": action("journey.edit"),
    "admin:notifications_journey_builder_rule": action("journey.edit"),
    "admin:notifications_journey_builder_rule_delete": action("journey.edit"),
    "admin:notifications_journey_builder_publish": action("journey.publish"),
    # Broadcasts (notifications/admin/broadcasts.py): read with the inbox notifications; sending
    # and withdrawing are the "broadcast.send" action.
    **{f"admin:notifications_broadcast_{view}": perm("notifications.view_notification",
                                                     "notifications.send_broadcast")
       for view in ("changelist", "history", "change")},
    "admin:notifications_broadcast_add": action("broadcast.send"),
    "admin:notifications_broadcast_delete": action("broadcast.send"),
    "admin:auth_user_password_change": action("staff.manage"),
    # One person's data (notifications.privacy): a ZIP of everything, and erasure after a typed confirmation.
    "admin:auth_user_export_personal_data": action("person.export"),
    "admin:auth_user_erase_personal_data": action("person.erase"),
    "admin:dashboard_importjob_upload": action("users.import"),
    "admin:dashboard_importjob_mapping": action("users.import"),
    "admin:dashboard_importjob_preview": action("users.import"),
    "admin:dashboard_importjob_confirm": action("users.import"),
    "admin:dashboard_importjob_cancel": action("users.import"),
    "admin:dashboard_importjob_progress": perm("dashboard.view_importjob"),
    "admin:dashboard_importjob_error_report": perm("dashboard.view_importjob"),
    # Outbound webhooks (notifications/admin/webhooks.py): Managers and superusers.
    **{f"admin:notifications_webhookendpoint_{verb}": action("webhook.manage")
       for verb in ("send_test", "rotate_secret", "enable")},
}

# The admin's own pages of every registered model: changelist, add, history, delete, change.
ADMIN_MODEL_VIEWS = {"changelist": "view", "add": "add", "history": "view", "delete": "delete", "change": "view"}

# Records, not settings: nobody adds or deletes them in the admin, superusers included (the
# ledger, receipts, the audit log, runs, captured mail, task results, sign-in logs).
RECORD_MODELS = frozenset({
    "notifications.delivery", "notifications.deliveryevent", "notifications.auditentry", "notifications.campaignrun",
    "channels_adapters.capturedmessage", "django_tasks_database.dbtaskresult", "axes.accesslog",
    "notifications.webhookmessage",
})
NEVER_ADDED = RECORD_MODELS | {
    "channels_adapters.webpushsubscription",  # browsers subscribe themselves
    "axes.accessattempt",  # failed sign-ins are recorded, not typed in
    "django_rq.dashboard",  # with Redis: RQ's queue dashboard, no rows to add (its admin refuses)
}
NEVER_DELETED = RECORD_MODELS | {"dashboard.importjob"}  # an import's history stays


def admin_model_rule(app_label: str, model_name: str, view: str) -> Rule:
    """The rule of a stock model admin page: the model permission Django's admin checks.

    The change page opens read-only for those who may only view; what they may change is each
    admin's ``has_change_permission`` (for users, ``staff.manage`` or ``recipient.manage``).
    """
    label = f"{app_label}.{model_name}"
    if (view == "add" and label in NEVER_ADDED) or (view == "delete" and label in NEVER_DELETED):
        return NOBODY
    return perm(f"{app_label}.{ADMIN_MODEL_VIEWS[view]}_{model_name}")


# URL patterns without a name: the admin's own redirects and catch-all, and the site root.
_ADMIN_OBJECT_REDIRECT = re.compile(r"^admin/\w+/\w+/<path:object_id>/$")  # old links to a change page


def unnamed_rule(route: str) -> Rule | None:
    """The rule of an unnamed pattern, from its route text; None if it is not one we know."""
    if route == "":
        return PUBLIC  # redirects to the inbox (which asks for a sign-in)
    if route == "admin/(?P<url>.*)$" or _ADMIN_OBJECT_REDIRECT.match(route):
        return STAFF  # redirects within the admin, whose pages apply their own rules
    return None


def rule_for(name: str) -> Rule | None:
    """The rule for a URL name, from the table or derived for a model admin page; None if unlisted."""
    if name in URL_POLICY:
        return URL_POLICY[name]
    if name.startswith("admin:"):
        from django.contrib import admin

        for model in admin.site._registry:
            opts = model._meta
            for view in ADMIN_MODEL_VIEWS:
                if name == f"admin:{opts.app_label}_{opts.model_name}_{view}":
                    return admin_model_rule(opts.app_label, opts.model_name, view)
    return None
