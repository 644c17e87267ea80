"""Follow-ups: "send to those who did not open" a finished run, as a new draft campaign.

The follow-up is an ordinary campaign: a copy of the campaign (template, category, channels,
values, limits; an A/B-tested run's winning template, and no test of its own) sent now, to a new rule audience "received run R of campaign X and did not open
it" (``engagement.campaign_run`` / ``not_opened``). Nothing is sent here: the draft goes through
the composer, pre-flight and approval like any other, and its audience is evaluated at launch,
so whoever opens the first message in the meantime is left out of the second.

It is offered only where opens are known: the campaign went out on a channel whose adapter tracks
opens (``features.tracks_opens``: email). On SMS, in-app or push alone, everybody would look
like a non-opener; the page says so instead of offering it.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _

from accounts.roles import allows

from ..audiences.engagement import open_tracking_channels
from ..models import Audience, Campaign, CampaignRun, CampaignVariant, Channel
from ..services import audit_record
from .services import DUPLICATED_FIELDS, CampaignError, campaign_create

# The schedule is the follow-up's own (it goes once, now, unless its author changes that), the
# audience is the new one, the template is the one the run sent (an A/B test's winner), and there
# is no A/B test: the follow-up sends the winner to everyone it names.
AB_TEST_FIELDS = ("test_share", "test_metric", "test_window")
FOLLOWUP_FIELDS = tuple(
    name for name in DUPLICATED_FIELDS
    if name not in {"audience", "schedule", "send_at", "rrule", "recurrence_start", "local_send_time",
                    "local_send_date", "template", *AB_TEST_FIELDS}
)
NAME_LENGTH = Campaign._meta.get_field("name").max_length
AUDIENCE_NAME_LENGTH = Audience._meta.get_field("name").max_length


@dataclass(frozen=True)
class FollowUpOffer:
    """Whether a run can be followed up now, and if not, why (a sentence for the page)."""

    offered: bool
    reason: str = ""
    # The run is finished but opens cannot be known on its channels: shown, not just hidden.
    untracked: bool = False


def followup_offer(*, run: CampaignRun, campaign: Campaign | None = None) -> FollowUpOffer:
    """Pure: from the run's status and the campaign's channels (no query)."""
    campaign = campaign or run.campaign
    if run.status != CampaignRun.Status.COMPLETED:
        return FollowUpOffer(False, _("Only a finished run can be followed up."))
    tracked = set(open_tracking_channels())
    if not tracked & set(campaign.channels or []):
        names = dict(Channel.choices)
        used = ", ".join(str(names.get(c, c)) for c in campaign.channels or []) or "—"
        where = ", ".join(str(names.get(c, c)) for c in open_tracking_channels())
        return FollowUpOffer(
            False,
            _("“Did not open” is not offered: opens are not tracked on %(used)s (only on %(where)s), so everyone "
              "would look like a non-opener.") % {"used": used, "where": where},
            untracked=True,
        )
    return FollowUpOffer(True)


def followup_rules(*, run: CampaignRun) -> dict:
    return {"all": [{"field": "engagement.campaign_run", "op": "not_opened", "value": [run.pk]}]}


def _unique_audience_name(base: str) -> str:
    base = base[:AUDIENCE_NAME_LENGTH]
    taken = set(Audience.objects.filter(name__startswith=base[: AUDIENCE_NAME_LENGTH - 6]).values_list("name", flat=True))
    if base not in taken:
        return base
    for n in range(2, 1000):
        suffix = f" ({n})"
        name = base[: AUDIENCE_NAME_LENGTH - len(suffix)] + suffix
        if name not in taken:
            return name
    raise CampaignError(_("Too many follow-ups of this run already exist."))


def _audience_create(*, name: str, description: str, rules: dict, actor) -> Audience:
    """A rule audience under the first free variant of ``name`` (names are unique): a second
    follow-up of the same run, made at the same moment by a colleague, takes the next one."""
    for _attempt in range(3):
        try:
            with transaction.atomic():  # a savepoint: the caller's transaction survives a clash
                return Audience.objects.create(
                    name=_unique_audience_name(name), description=description, kind=Audience.Kind.RULES,
                    rules=rules, created_by=actor,
                )
        except IntegrityError:
            continue
    raise CampaignError(_("Too many follow-ups of this run already exist."))


def campaign_run_followup_create(*, run: CampaignRun, actor) -> Campaign:
    """A new draft campaign to the recipients of ``run`` who did not open it. Audited.

    Refused (``CampaignError``) without ``campaign.edit``, for a run that has not finished, and
    where opens are not tracked on the campaign's channels.
    """
    if not allows(actor, "campaign.edit"):
        raise CampaignError(_("You may not create campaigns."))
    campaign = run.campaign
    offer = followup_offer(run=run, campaign=campaign)
    if not offer.offered:
        raise CampaignError(offer.reason)
    when = run.occurrence.strftime("%Y-%m-%d %H:%M")
    with transaction.atomic():
        audience = _audience_create(
            name=_("%(campaign)s · %(when)s — did not open") % {"campaign": campaign.name, "when": when},
            description=_("Received the run of “%(campaign)s” due at %(when)s UTC and did not open it.")
            % {"campaign": campaign.name, "when": when},
            rules=followup_rules(run=run), actor=actor,
        )
        copy = Campaign(
            name=(_("%(name)s — did not open") % {"name": campaign.name})[:NAME_LENGTH],
            audience=audience, schedule=Campaign.Schedule.NOW, template_id=_sent_template_id(run, campaign),
            **{name: getattr(campaign, name) for name in FOLLOWUP_FIELDS},
        )
        campaign_create(campaign=copy, actor=actor)
        audit_record(actor=actor, action="campaign.followup", target=copy,
                     changes={"from": campaign.pk, "run": run.pk, "audience": audience.pk, "who": "did_not_open"})
    return copy


def _sent_template_id(run: CampaignRun, campaign: Campaign) -> int:
    """The template the run sent: its A/B test's winner's when it had one, else the campaign's.
    (A winner that changed only the email subject sent the campaign's template: a campaign has
    no subject of its own to carry that subject to the follow-up.)"""
    if run.winner:
        winner = CampaignVariant.objects.filter(campaign_id=campaign.pk, label=run.winner).values_list(
            "template_id", flat=True).first()
        if winner:
            return winner
    return campaign.template_id
