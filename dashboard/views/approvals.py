"""The approval desk's pages: what awaits a Manager, one campaign's and one journey's approval page.

Thin: the selectors in ``notifications.campaigns.approval_desk`` read, the campaign services
decide (and refuse self-approval and stale states with a sentence).
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from accounts.roles import allows
from notifications.campaigns import services
from notifications.campaigns.approval_desk import approval_review, awaiting_approval
from notifications.campaigns.services import CampaignError
from notifications.journeys import approvals as journey_approvals
from notifications.models import Campaign, Journey


def _context(request: HttpRequest, title: str, **extra) -> dict:
    request.current_app = admin.site.name
    return {**admin.site.each_context(request), "title": title, **extra}


def approvals_page(request: HttpRequest) -> HttpResponse:
    if not allows(request.user, "campaign.approve"):
        raise PermissionDenied(_("Approving campaigns is for Managers."))
    return TemplateResponse(request, "dashboard/approvals.html",
                            _context(request, _("Awaiting approval"), awaiting=awaiting_approval(limit=100)))


def approval_page(request: HttpRequest, pk: int) -> HttpResponse:
    if not request.user.has_perm("notifications.view_campaign"):
        raise PermissionDenied
    campaign = get_object_or_404(Campaign.objects.select_related("audience", "template", "category", "author"), pk=pk)
    review = approval_review(campaign=campaign)
    user = request.user
    can_decide = (allows(user, "campaign.approve") and campaign.author_id != user.pk
                  and campaign.status == Campaign.Status.PENDING_APPROVAL)
    return TemplateResponse(request, "dashboard/approval.html", _context(
        request, _("Approval: %(name)s") % {"name": campaign.name}, review=review, campaign=campaign,
        can_decide=can_decide, own=campaign.author_id == user.pk,
    ))


@require_POST
def approval_decide(request: HttpRequest, pk: int) -> HttpResponse:
    if not allows(request.user, "campaign.approve"):
        raise PermissionDenied(_("Approving campaigns is for Managers."))
    campaign = get_object_or_404(Campaign, pk=pk)
    decision, comment = request.POST.get("decision"), request.POST.get("comment", "").strip()
    try:
        if decision == "approve":
            services.campaign_approve(campaign=campaign, actor=request.user, comment=comment)
            messages.success(request, _("Approved. The author has been told and can launch it."))
        elif decision == "request_changes":
            services.campaign_request_changes(campaign=campaign, actor=request.user, comment=comment)
            messages.success(request, _("Changes requested. The author has your comment."))
        else:
            raise PermissionDenied
    except CampaignError as error:
        messages.error(request, str(error))
    return HttpResponseRedirect(reverse("dashboard:approval", args=[pk]))


def journey_approval_page(request: HttpRequest, pk: int) -> HttpResponse:
    if not request.user.has_perm("notifications.view_journey"):
        raise PermissionDenied
    journey = get_object_or_404(Journey.objects.select_related("category", "created_by", "approved_by"), pk=pk)
    review = journey_approvals.journey_review(journey=journey)
    can_decide = (journey_approvals.may_approve(request.user, author_id=journey.created_by_id)
                  and review.waiting)
    return TemplateResponse(request, "dashboard/journey_approval.html", _context(
        request, _("Approval: %(name)s") % {"name": journey.name}, review=review, journey=journey,
        can_decide=can_decide, own=journey.created_by_id == request.user.pk,
    ))


@require_POST
def journey_approval_decide(request: HttpRequest, pk: int) -> HttpResponse:
    if not allows(request.user, "campaign.approve"):
        raise PermissionDenied(_("Approving campaigns is for Managers."))
    journey = get_object_or_404(Journey, pk=pk)
    decision, comment = request.POST.get("decision"), request.POST.get("comment", "")
    try:
        if decision == "approve":
            journey_approvals.journey_approve(journey=journey, actor=request.user, comment=comment)
            messages.success(request, _("Approved. The journey can be published as it is now."))
        elif decision == "request_changes":
            journey_approvals.journey_request_changes(journey=journey, actor=request.user, comment=comment)
            messages.success(request, _("Changes requested. The author has your comment."))
        else:
            raise PermissionDenied
    except PermissionDenied as error:
        messages.error(request, str(error) or _("You may not do this."))
    except ValidationError as error:
        for problem in error.messages:
            messages.error(request, problem)
    return HttpResponseRedirect(reverse("dashboard:journey_approval", args=[pk]))
