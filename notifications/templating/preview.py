"""Previewing a template for a real recipient, and sending its author a test.

Used by the admin (``notifications.admin.templates``); kept here so the admin view stays a thin
caller and the same rendering path as the send pipeline is exercised.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from channels_adapters.handler import channels as adapters
from channels_adapters.sms import sms_segments

from ..models import Category, Channel, MessageTemplate
from .compiled import CONTENT_SHAPE, CompiledTemplate, compile_template, part_label
from .context import message_context
from .sandbox import TemplateRenderError

CHANNEL_LABELS = dict(Channel.choices)  # the channel's own (lazy) name
TEST_CATEGORY_KEY = Category.TEMPLATE_TEST_KEY  # internal: never listed to recipients
INERT_PREFERENCES_URL = "#preferences"


@dataclass(frozen=True)
class ChannelPreview:
    """One channel's rendered content, or why it could not be rendered."""

    channel: str
    label: str
    content: dict[str, Any] = field(default_factory=dict)
    error: str = ""
    error_part: str = ""
    sms_encoding: str = ""
    sms_segments: int = 0


@dataclass(frozen=True)
class TemplatePreview:
    locale: str
    channels: list[ChannelPreview]

    @property
    def ok(self) -> bool:
        return not any(channel.error for channel in self.channels)

    def channel(self, name: str) -> ChannelPreview | None:
        return next((c for c in self.channels if c.channel == name), None)


def sample_variables(template: MessageTemplate, given: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Values for the template's declared variables: what the author typed, else "[name]"."""
    given = dict(given or {})
    return {name: given.get(name, f"[{name}]") for name in (template.variables or []) if isinstance(name, str)}


def preview_context(
    *, template: MessageTemplate, user: Any, instance: Any | None = None,
    variables: Mapping[str, Any] | None = None, unsubscribe_url: str = "#unsubscribe",
) -> dict[str, Any]:
    """The context a preview renders with: ``user``'s real fields, the instance's allow-listed
    fields, sample values for declared variables and a stand-in campaign.

    The recipient's own links (unsubscribe, preference centre) are inert stand-ins: a preview is
    seen by staff, and a working link there would let them change the recipient's choices.
    """
    context = message_context(user=user, instance=instance, unsubscribe_url=unsubscribe_url,
                              extra=sample_variables(template, variables))
    context["campaign"] = {"id": None, "name": str(_("(campaign name)"))}
    context["preferences_url"] = INERT_PREFERENCES_URL
    return context


def _render_channel(compiled: CompiledTemplate, channel: str, *, locale: str, context: dict) -> ChannelPreview:
    label = str(CHANNEL_LABELS[channel])
    try:
        content = compiled.render(channel=channel, locale=locale, context=context)
    except TemplateRenderError as exc:
        return ChannelPreview(channel, label, error=str(exc), error_part=part_label(exc.part) if exc.part else "")
    if adapters.features(channel).segmented_text:
        encoding, segments = sms_segments(content["text"])
        return ChannelPreview(channel, label, content, sms_encoding=encoding, sms_segments=segments)
    return ChannelPreview(channel, label, content)


def template_preview(*, template: MessageTemplate, user: Any, instance: Any | None = None,
                     variables: Mapping[str, Any] | None = None, locale: str | None = None,
                     unsubscribe_url: str = "#unsubscribe") -> TemplatePreview:
    """Every channel the template has, rendered for ``user`` (in their locale unless ``locale``
    is given) and, for trigger templates, a real ``instance`` (its allow-listed fields only)."""
    compiled = compile_template(template)
    context = preview_context(template=template, user=user, instance=instance, variables=variables,
                              unsubscribe_url=unsubscribe_url)
    chosen = locale or context["recipient"]["locale"]
    channels = [_render_channel(compiled, channel, locale=chosen, context=context) for channel in compiled.channels()]
    return TemplatePreview(locale=compiled.pick_locale(chosen), channels=channels)


@dataclass(frozen=True)
class TestSendResult:
    sent: list[str]  # channels planned for delivery
    suppressed: list[str]  # channels the tester cannot receive (no address, suppressed)
    errors: list[str]  # channels that could not be rendered, with the reason


def _test_category() -> Category:
    from ..services import category_ensure

    # Transactional: a test reaches its author whatever their marketing choices or quiet hours.
    return category_ensure(key=TEST_CATEGORY_KEY, name="Template tests", kind=Category.Kind.TRANSACTIONAL,
                           user_can_opt_out=False, name_zh_hans="模板测试")


def template_send_test(*, template: MessageTemplate, to: Any, recipient: Any | None = None,
                       instance: Any | None = None, variables: Mapping[str, Any] | None = None,
                       locale: str | None = None) -> TestSendResult:
    """Send ``to`` (the person testing) the template's email and in-app message exactly as the
    preview shows them for ``recipient`` (default: ``to``), marked as a test. Goes through
    ``notify()``, so the ledger, suppressions and tracking apply as usual."""
    from ..api import notify
    from ..services import audit_record

    preview = template_preview(template=template, user=recipient or to, instance=instance, variables=variables,
                               locale=locale, unsubscribe_url="")
    sent, suppressed, errors = [], [], []
    category = _test_category()
    prefix = gettext("[Test]")
    with transaction.atomic():
        for channel in ("email", "inapp"):
            shown = preview.channel(channel)
            if shown is None:
                continue
            if shown.error:
                errors.append(f"{shown.label}: {shown.error}")
                continue
            content = shown.content
            if CONTENT_SHAPE[channel] == "email":
                result = notify([to], title=f"{prefix} {content['subject']}", body=content["text"],
                                html=content["html"], channels=["email"], category=category)
            else:
                result = notify([to], title=f"{prefix} {content['title']}", body=content["body"],
                                url=content["url"], channels=["inapp"], category=category)
            (sent if result.planned else suppressed).append(shown.label)
        audit_record(actor=to, action="message_template.test_send", target=template,
                     changes={"recipient": (recipient or to).pk, "sent": sent, "suppressed": suppressed,
                              "errors": errors})
    return TestSendResult(sent=sent, suppressed=suppressed, errors=errors)
