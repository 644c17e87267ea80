"""Pre-flight: what launching a campaign now would do, before anyone presses Launch.

``campaign_preflight`` streams the audience as the launch would (keyset chunks of ids, the same
``recipient_facts``/``channel_decision`` the planner uses, a fixed number of queries per chunk),
so its counts of suppressed, opted-out, capped and quiet-hour recipients are the planner's own.
It renders every part only for a small sample of real recipients in each locale the audience
has: a template that cannot render for them (an undefined variable, a broken part) is an error
naming the part, locale and line, and ``campaign_launch``/``campaign_submit`` refuse while
there is one (``campaign_preflight_errors``, the cheap half without the counts).
"""

from __future__ import annotations

import zoneinfo
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from django.db.models import Count, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from channels_adapters.handler import channels as adapters
from channels_adapters.sms import sms_segments

from .. import conf
from ..audiences import AudienceRuleError, audience_user_ids, audience_users
from ..ledger.decisions import channel_decision, recipient_facts
from ..models import Campaign, RecipientProfile
from ..templating import TemplateRenderError, compile_template, message_context
from ..templating.compiled import part_label
from ..templating.preview import CHANNEL_LABELS, INERT_PREFERENCES_URL
from .approvals import ApprovalCheck, campaign_approval_check
from .schedules import ScheduleError
from .values import campaign_values, missing_values

SAMPLE_PER_LOCALE = 3
CHUNK_SIZE = 2000
QUIET_HOLDS_SHOWN = 5


@dataclass(frozen=True)
class PreflightProblem:
    """Something that stops the campaign going out as written; ``message`` is the whole sentence."""

    message: str
    channel: str = ""
    part: str = ""
    locale: str = ""
    line: int | None = None


@dataclass
class ChannelForecast:
    """One channel's recipients by what launching now would do with them."""

    channel: str
    label: str
    sending: int = 0  # will go out (at once or after quiet hours)
    held: int = 0  # of ``sending``: held for the recipient's quiet hours
    suppressed: int = 0  # on the suppression list (unsubscribed, bounced, STOP...)
    opted_out: int = 0
    capped: int = 0  # frequency cap reached
    no_address: int = 0
    segments: int | None = None  # SMS: estimated segments over everyone it goes to
    cost: Decimal | None = None
    currency: str = ""


@dataclass(frozen=True)
class QuietHold:
    count: int
    until: datetime  # in ``zone``
    zone: str


@dataclass(frozen=True)
class RenderedPart:
    label: str
    text: str


@dataclass(frozen=True)
class RenderedChannel:
    channel: str
    label: str
    parts: list[RenderedPart] = field(default_factory=list)
    error: str = ""
    error_part: str = ""  # the part's label ("Email body") when ``error``
    error_line: int | None = None
    sms_segments: int = 0


@dataclass(frozen=True)
class SampleRender:
    recipient: str
    channels: list[RenderedChannel]


@dataclass(frozen=True)
class LocaleSample:
    locale: str  # the recipients' locale
    variant: str  # the template variant they get
    recipients: int
    samples: list[SampleRender]


@dataclass
class Preflight:
    recipients: int
    channels: list[ChannelForecast]
    quiet_holds: list[QuietHold]
    locales: list[LocaleSample]
    errors: list[PreflightProblem]
    approval: ApprovalCheck | None
    sends_at: datetime | None = None

    @property
    def ok(self) -> bool:
        return not self.errors

    def channel(self, name: str) -> ChannelForecast | None:
        return next((c for c in self.channels if c.channel == name), None)

    @property
    def total_cost(self) -> list[tuple[str, Decimal]]:
        costs: dict[str, Decimal] = defaultdict(Decimal)
        for forecast in self.channels:
            if forecast.cost is not None:
                costs[forecast.currency] += forecast.cost
        return sorted(costs.items())


def _send_time(campaign: Campaign, now: datetime) -> datetime:
    from .services import campaign_first_run_at

    try:
        return max(campaign_first_run_at(campaign=campaign, now=now), now)
    except ScheduleError:
        return now


def _default_locale() -> str:
    return RecipientProfile._meta.get_field("locale").get_default()


def audience_locales(*, campaign: Campaign) -> dict[str, int]:
    """Recipients per locale, in one grouped query."""
    default = _default_locale()
    counts: Counter[str] = Counter()
    rows = audience_users(audience=campaign.audience).order_by().values("recipient_profile__locale").annotate(n=Count("pk"))
    for row in rows:
        counts[row["recipient_profile__locale"] or default] += row["n"]
    return dict(counts.most_common())


def _sample_users(campaign: Campaign, locale: str, size: int) -> list:
    users = audience_users(audience=campaign.audience).select_related("recipient_profile")
    match = Q(recipient_profile__locale=locale)
    if locale == _default_locale():
        match |= Q(recipient_profile__isnull=True) | Q(recipient_profile__locale="")
    return list(users.filter(match)[:size])


def _render_samples(campaign: Campaign, locales: dict[str, int], *, per_locale: int) -> tuple[list[LocaleSample], list[PreflightProblem]]:
    compiled = compile_template(campaign.template)
    values = campaign_values(campaign=campaign)
    samples, problems, seen = [], [], set()
    for locale, count in locales.items():
        rendered = []
        for user in _sample_users(campaign, locale, per_locale):
            context = message_context(user=user, campaign=campaign, extra=values, unsubscribe_url="#unsubscribe")
            context["preferences_url"] = INERT_PREFERENCES_URL
            channels = []
            for channel in campaign.channels or []:
                shown = _render(compiled, channel, locale=locale, context=context)
                channels.append(shown)
                if shown.error and (channel, locale, shown.error) not in seen:
                    seen.add((channel, locale, shown.error))
                    problems.append(shown_problem(shown, locale))
            rendered.append(SampleRender(recipient=context["recipient"]["full_name"], channels=channels))
        samples.append(LocaleSample(locale=locale, variant=compiled.pick_locale(locale), recipients=count,
                                    samples=rendered))
    return samples, problems


def shown_problem(shown: RenderedChannel, locale: str) -> PreflightProblem:
    part = shown.error_part or shown.label
    return PreflightProblem(
        message=_("%(part)s (%(locale)s): %(error)s") % {"part": part, "locale": locale, "error": shown.error},
        channel=shown.channel, part=part, locale=locale, line=shown.error_line,
    )


def _render(compiled, channel: str, *, locale: str, context: dict) -> RenderedChannel:
    label = str(CHANNEL_LABELS.get(channel, channel))
    try:
        content = compiled.render(channel=channel, locale=locale, context=context)
    except TemplateRenderError as error:
        return RenderedChannel(channel, label, error=str(error),
                               error_part=part_label(error.part) if error.part else "", error_line=error.line)
    parts = [RenderedPart(str(_("Subject")), content["subject"]), RenderedPart(str(_("Text")), content["text"])] \
        if "subject" in content else (
        [RenderedPart(str(_("Text")), content["text"])] if "text" in content else
        [RenderedPart(str(_("Title")), content["title"]), RenderedPart(str(_("Body")), content["body"])]
        + ([RenderedPart(str(_("Link")), content["url"])] if content.get("url") else [])
    )
    segments = sms_segments(content["text"])[1] if adapters.features(channel).segmented_text else 0
    return RenderedChannel(channel, label, parts=parts, sms_segments=segments)


def campaign_content_preview(*, campaign: Campaign) -> tuple[list[LocaleSample], list[PreflightProblem]]:
    """One real recipient per locale of the audience, every channel rendered (the composer's
    preview of a campaign being edited; ``campaign`` need not be saved)."""
    try:
        locales = audience_locales(campaign=campaign)
    except AudienceRuleError as error:
        return [], [PreflightProblem(_("The audience's rules cannot be used: %(error)s") % {"error": error})]
    if not locales:
        return [], []
    return _render_samples(campaign, locales, per_locale=1)


def campaign_preflight_errors(*, campaign: Campaign) -> list[PreflightProblem]:
    """The errors alone: missing values and parts that do not render for one recipient per
    locale. A few queries whatever the audience size (what launch and submit check)."""
    try:
        locales = audience_locales(campaign=campaign)
    except AudienceRuleError as error:
        return [PreflightProblem(_("The audience's rules cannot be used: %(error)s") % {"error": error})]
    if not locales:
        return [PreflightProblem(_("The audience is empty."))]
    _samples, problems = _render_samples(campaign, locales, per_locale=1)
    return _missing_value_problems(campaign) + _ab_test_problems(campaign, locales) + problems


def _ab_test_problems(campaign: Campaign, locales: dict[str, int]) -> list[PreflightProblem]:
    """The A/B test's rules, then each variant with its own template or subject rendered for one
    recipient per locale (a subject that does not render would fail that whole variant)."""
    from .ab_tests import campaign_variant_problems, campaign_variants

    saved = campaign_variants(campaign=campaign)  # read once, for the rules and the renders
    problems = [PreflightProblem(message) for message in campaign_variant_problems(campaign=campaign, variants=saved)]
    variants = [v for v in saved if v.template_id or v.email_subject.strip()]
    if problems or not variants or not locales:
        return problems
    values = campaign_values(campaign=campaign)
    users = {locale: _sample_users(campaign, locale, 1) for locale in locales}
    for variant in variants:
        compiled = compile_template(variant.template or campaign.template, email_subject=variant.email_subject.strip())
        seen = set()
        for locale, sample in users.items():
            for user in sample:
                context = message_context(user=user, campaign=campaign, extra=values, unsubscribe_url="#unsubscribe")
                for channel in campaign.channels or []:
                    shown = _render(compiled, channel, locale=locale, context=context)
                    if shown.error and (channel, shown.error) not in seen:
                        seen.add((channel, shown.error))
                        problem = shown_problem(shown, locale)
                        problems.append(PreflightProblem(
                            _("Variant %(label)s: %(problem)s") % {"label": variant.label, "problem": problem.message},
                            channel=problem.channel, part=problem.part, locale=locale,
                        ))
    return problems


def _missing_value_problems(campaign: Campaign) -> list[PreflightProblem]:
    return [
        PreflightProblem(_("The template uses “%(name)s”: fill in its value under Content.") % {"name": name})
        for name in missing_values(campaign=campaign)
    ]


REASON_FIELDS = {
    "suppressed:no_address": "no_address", "suppressed:opted_out": "opted_out",
    "suppressed:frequency_cap": "capped",
}


def campaign_preflight(*, campaign: Campaign, now: datetime | None = None, chunk_size: int = CHUNK_SIZE,
                       per_locale: int = SAMPLE_PER_LOCALE) -> Preflight:
    """Everything pre-flight shows, for the campaign as saved (see the module docstring)."""
    try:
        return _preflight(campaign=campaign, now=now, chunk_size=chunk_size, per_locale=per_locale)
    except AudienceRuleError as error:
        return Preflight(recipients=0, channels=[], quiet_holds=[], locales=[], approval=None, errors=[
            PreflightProblem(_("The audience's rules cannot be used: %(error)s") % {"error": error})
        ])


def _preflight(*, campaign: Campaign, now: datetime | None, chunk_size: int, per_locale: int) -> Preflight:
    now = now or timezone.now()
    at = _send_time(campaign, now)
    channels = list(campaign.channels or [])
    forecasts = {c: ChannelForecast(c, str(CHANNEL_LABELS.get(c, c))) for c in channels}
    holds: Counter[tuple[str, datetime]] = Counter()
    sent_by_locale: dict[str, Counter[str]] = defaultdict(Counter)
    fallback = campaign.delivery_mode == Campaign.ChannelUse.FALLBACK
    default_locale = _default_locale()
    users = audience_users(audience=campaign.audience).model.objects.select_related("recipient_profile")
    recipients = 0
    for ids in audience_user_ids(audience=campaign.audience, chunk_size=chunk_size):
        chunk = list(users.filter(pk__in=ids).order_by("pk"))
        recipients += len(chunk)
        locale_of = {u.pk: (getattr(getattr(u, "recipient_profile", None), "locale", "") or default_locale) for u in chunk}
        for facts in recipient_facts(chunk, category=campaign.category, channels=channels,
                                     daily_cap=campaign.frequency_cap_per_day):
            decisions = [(c, channel_decision(facts=facts, channel=c, category=campaign.category, now=at))
                         for c in channels]
            if fallback:
                decisions = [(c, d) for c, d in decisions if not d.reason][:1] or decisions[:1]
            for channel, decision in decisions:
                forecast = forecasts[channel]
                if decision.reason:
                    name = REASON_FIELDS.get(decision.reason, "suppressed")
                    setattr(forecast, name, getattr(forecast, name) + 1)
                    continue
                forecast.sending += 1
                sent_by_locale[channel][locale_of[facts.user_id]] += 1
                if decision.not_before and not decision.digest:
                    forecast.held += 1
                    holds[(facts.timezone, decision.not_before)] += 1
    locales = audience_locales(campaign=campaign) if recipients else {}
    samples, problems = _render_samples(campaign, locales, per_locale=per_locale) if locales else ([], [])
    errors = _missing_value_problems(campaign) + _ab_test_problems(campaign, locales) + problems
    if not recipients:
        errors.insert(0, PreflightProblem(_("The audience is empty.")))
    _estimate_sms(forecasts, samples, sent_by_locale)
    approval = campaign_approval_check(campaign=campaign, size=recipients)
    return Preflight(
        recipients=recipients, channels=list(forecasts.values()),
        quiet_holds=[QuietHold(n, until.astimezone(zoneinfo.ZoneInfo(tz)), tz)
                     for (tz, until), n in holds.most_common(QUIET_HOLDS_SHOWN)],
        locales=samples, errors=errors, approval=approval, sends_at=at,
    )


def _estimate_sms(forecasts: dict[str, ChannelForecast], samples: list[LocaleSample],
                  sent_by_locale: dict[str, Counter[str]]) -> None:
    """Segments per recipient averaged over the locale's sample, times the recipients it goes to
    in that locale; the cost at ``SIGNALBOX_SMS_SEGMENT_PRICE``."""
    price = conf.sms_segment_price()
    for channel, forecast in forecasts.items():
        if not adapters.features(channel).segmented_text:
            continue
        total = 0
        for sample in samples:
            rendered = [c for s in sample.samples for c in s.channels if c.channel == channel and not c.error]
            if rendered:
                average = sum(c.sms_segments for c in rendered) / len(rendered)
                total += round(average * sent_by_locale[channel][sample.locale])
        forecast.segments = total
        forecast.cost = (price.amount * total).quantize(Decimal("0.01"))
        forecast.currency = price.currency
