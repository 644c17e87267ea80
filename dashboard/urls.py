"""Staff pages under ``/admin/analytics/`` (mounted before the admin's own URLs in ``config/urls.py``).

Every view goes through ``admin.site.admin_view``: anonymous users and non-staff are sent to the
admin login, and responses are never cached.
"""

from django.contrib import admin
from django.urls import path

from . import views

app_name = "dashboard"


def _admin(view):
    return admin.site.admin_view(view)


urlpatterns = [
    path("", _admin(views.analytics_page), name="analytics"),
    path("campaigns/<int:pk>/", _admin(views.campaign_page), name="campaign"),
    path("campaigns/<int:pk>/recipients/", _admin(views.campaign_recipients_partial), name="campaign_recipients"),
    path("journeys/", _admin(views.journeys_page), name="journeys"),
    path("journeys/<int:pk>/", _admin(views.journey_page), name="journey"),
    path("deliveries/<int:pk>/timeline/", _admin(views.delivery_timeline_partial), name="delivery_timeline"),
    path("progress/", _admin(views.runs_progress_partial), name="runs_progress"),
    path("kpis/", _admin(views.home_kpis_partial), name="home_kpis"),
    # The approval desk (dashboard/views/approvals.py).
    path("approvals/", _admin(views.approvals_page), name="approvals"),
    path("approvals/campaigns/<int:pk>/", _admin(views.approval_page), name="approval"),
    path("approvals/campaigns/<int:pk>/decide/", _admin(views.approval_decide), name="approval_decide"),
    path("approvals/journeys/<int:pk>/", _admin(views.journey_approval_page), name="journey_approval"),
    path("approvals/journeys/<int:pk>/decide/", _admin(views.journey_approval_decide), name="journey_approval_decide"),
]
