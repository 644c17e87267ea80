"""A message template compiled once, rendered per recipient in the shape each channel sends."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from django.utils.text import capfirst
from django.utils.translation import gettext_lazy as _
from jinja2 import Template

from ..models import MessageParts, MessageTemplate
from .context import default_context
from .email import email_document
from .problems import part_kind
from .sandbox import Budget, TemplateRenderError, compiled_source, render

# The parts each channel is made of (the push-shaped channels fall back to the in-app parts they
# lack). A WeChat template message and an app push are a title, a body and a link, like web push.
CHANNEL_PARTS: dict[str, tuple[str, ...]] = {
    "email": ("email_subject", "email_body"),
    "sms": ("sms_text",),
    "inapp": ("inapp_title", "inapp_body", "inapp_url"),
    "webpush": ("push_title", "push_body", "inapp_url"),
    "chat": ("chat_text",),
    "wechat": ("push_title", "push_body", "inapp_url"),
    "mobilepush": ("push_title", "push_body", "inapp_url"),
}
# The shape of the content each channel's parts render into: an email (subject, text, HTML
# document), one text (an SMS, a chat post), or a titled message (title, body, link).
CONTENT_SHAPE: dict[str, str] = {
    "email": "email", "sms": "text", "chat": "text", "inapp": "titled", "webpush": "titled", "wechat": "titled",
    "mobilepush": "titled",
}
PUSH_FALLBACK = {"push_title": "inapp_title", "push_body": "inapp_body"}
REQUIRED_PARTS = {
    "email": ("email_subject", "email_body"), "sms": ("sms_text",), "inapp": ("inapp_title",),
    "webpush": ("push_title",), "chat": ("chat_text",), "wechat": ("push_title",), "mobilepush": ("push_title",),
}
SINGLE_LINE = frozenset({"email_subject", "push_title", "inapp_title", "inapp_url"})


def channels_written(parts: Mapping[str, str]) -> list[str]:
    """The channels whose required parts are written in ``parts`` (no compiling: for lists)."""
    written = {part for part, text in parts.items() if text and text.strip()}
    return [
        channel for channel, required in REQUIRED_PARTS.items()
        if all(part in written or PUSH_FALLBACK.get(part) in written for part in required)
    ]


def normalise_locale(locale: str | None) -> str:
    return (locale or "").strip().lower().replace("_", "-")


def _part_name(part: str) -> str:
    return str(MessageParts._meta.get_field(part).verbose_name)


def part_label(part: str) -> str:
    """A part's name as a heading: "In-app title"."""
    return capfirst(_part_name(part))


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _checked_url(url: str, *, part: str) -> str:
    """In-app and push links: a path on this site or an http(s) URL, nothing a click could run."""
    if not url:
        return ""
    lowered = url.lower()
    if (url.startswith("/") and not url.startswith("//")) or lowered.startswith(("https://", "http://")):
        return url
    raise TemplateRenderError(_("The link must start with https://, http:// or /."), part=part)


class CompiledTemplate:
    """Every part of a template and its locale variants, compiled once (``compile_template``).

    Thread-safe and cheap to keep: the send pipeline compiles once per batch and calls
    :meth:`render` per recipient. Compiled sources, Markdown conversions and the inlined layout
    are cached per process, so recompiling an unchanged template costs little.
    """

    def __init__(self, *, template_id: int | None, key: str, default_locale: str,
                 sources: Mapping[str, Mapping[str, str]]) -> None:
        self.template_id = template_id
        self.key = key
        self.default_locale = default_locale
        # locale -> part -> compiled template, or the error that stopped it compiling
        self._parts: dict[str, dict[str, Template | TemplateRenderError]] = {
            locale: {part: compiled_source(part_kind(part), source) for part, source in parts.items() if source.strip()}
            for locale, parts in sources.items()
        }
        self._defaults = default_context()

    @property
    def locales(self) -> list[str]:
        return list(self._parts)

    def pick_locale(self, locale: str | None) -> str:
        """The variant for ``locale``: an exact match, else one of the same language
        (``zh-cn`` -> ``zh-hans``), else the template's own locale."""
        wanted = normalise_locale(locale)
        if wanted in self._parts:
            return wanted
        language = wanted.split("-")[0]
        for candidate in self._parts:
            if candidate.split("-")[0] == language and language:
                return candidate
        return self.default_locale

    def has_part(self, *, part: str, locale: str | None = None) -> bool:
        return part in self._parts[self.pick_locale(locale)]

    def channels(self) -> list[str]:
        """The channels this template can render (their required parts are written)."""
        return channels_written({part: "x" for part in self._parts[self.default_locale]})

    def _compiled(self, locale: str, part: str) -> Template | None:
        compiled = self._parts[locale].get(part)
        if isinstance(compiled, TemplateRenderError):
            raise TemplateRenderError(compiled.message, line=compiled.line, part=part)
        return compiled

    def _render(self, locale: str, part: str, context: dict[str, Any], *, required: bool = False,
                budget: Budget | None = None) -> str:
        compiled = self._compiled(locale, part)
        if compiled is None and part in PUSH_FALLBACK:
            return self._render(locale, PUSH_FALLBACK[part], context, required=required, budget=budget)
        if compiled is None:
            if required:
                raise TemplateRenderError(_("The template has no %(part)s.") % {"part": _part_name(part)}, part=part)
            return ""
        try:
            text = render(compiled, context, budget=budget or Budget.start()).strip()
        except TemplateRenderError as exc:
            exc.part = part
            raise
        return _one_line(text) if part in SINGLE_LINE else text

    def render(self, *, channel: str, locale: str, context: dict) -> dict:
        """The ``Delivery.content`` for one recipient on ``channel``; ``TemplateRenderError`` (with
        ``part`` and ``line``) when the template cannot produce it.

        ``context`` is plain data (``message_context``); base names it lacks get their
        defaults. The returned ``locale`` is the variant used.
        """
        if channel not in CHANNEL_PARTS:
            raise ValueError(f"Unknown channel: {channel!r}.")
        chosen = self.pick_locale(locale)
        ctx = {**self._defaults, **context}
        shape = CONTENT_SHAPE[channel]
        if shape == "email":
            return self._render_email(chosen, ctx)
        if shape == "text":
            (part,) = CHANNEL_PARTS[channel]
            return {"text": self._render(chosen, part, ctx, required=True), "locale": chosen}
        title, body, url = CHANNEL_PARTS[channel]
        return {
            "title": self._render(chosen, title, ctx, required=True),
            "body": self._render(chosen, body, ctx),
            "url": _checked_url(self._render(chosen, url, ctx), part=url),
            "locale": chosen,
        }

    def _render_email(self, locale: str, ctx: dict[str, Any]) -> dict:
        subject = self._render(locale, "email_subject", ctx, required=True)
        if self._compiled(locale, "email_body") is None:
            raise TemplateRenderError(
                _("The template has no %(part)s.") % {"part": _part_name("email_body")}, part="email_body"
            )
        budget = Budget.start(tokens=True)
        source = self._render(locale, "email_body", ctx, budget=budget)
        unsubscribe = str(ctx.get("unsubscribe_url") or "")
        document = email_document(locale=locale, source=source, with_unsubscribe=bool(unsubscribe))
        slots = {
            "subject": subject, "unsubscribe_url": unsubscribe,
            "preferences_url": str(ctx.get("preferences_url") or ""),
        }
        values = budget.tokens or []
        return {
            "subject": subject,
            "text": document.text.join(values, slots, escape=False),
            "html": document.html.join(values, slots, escape=True),
            "locale": locale,
        }


def _effective_sources(template: MessageParts, variants: Iterable[MessageParts]) -> dict[str, dict[str, str]]:
    own = template.parts()
    sources = {template.locale: own}
    for variant in variants:
        if variant.locale == template.locale:
            continue
        sources[variant.locale] = {
            part: (text if text.strip() else own[part]) for part, text in variant.parts().items()
        }
    return sources


def compile_template(template: MessageTemplate, *, email_subject: str = "") -> CompiledTemplate:
    """Compile every part of ``template`` and its variants, once (one query for the variants,
    none if they were prefetched). A part that does not compile fails only when rendered, so a
    broken SMS text does not stop the email going out.

    ``email_subject`` replaces the subject in every locale (an A/B test's subject-only variant:
    everyone in that variant gets that subject, whatever their language)."""
    sources = _effective_sources(template, template.variants.all() if template.pk else [])
    if email_subject.strip():
        sources = {locale: {**parts, "email_subject": email_subject} for locale, parts in sources.items()}
    return CompiledTemplate(template_id=template.pk, key=template.key, default_locale=template.locale, sources=sources)


def compile_parts(*, parts: Mapping[str, str], locale: str = "en",
                  variants: Mapping[str, Mapping[str, str]] | None = None) -> CompiledTemplate:
    """A ``CompiledTemplate`` from unsaved parts (previews of a form being edited, tests)."""
    own = {part: parts.get(part, "") for part in MessageParts.PART_FIELDS}
    sources = {locale: own}
    for variant_locale, variant_parts in (variants or {}).items():
        sources[variant_locale] = {
            part: (variant_parts.get(part, "") if variant_parts.get(part, "").strip() else own[part])
            for part in MessageParts.PART_FIELDS
        }
    return CompiledTemplate(template_id=None, key="", default_locale=locale, sources=sources)
