"""URLs of the report pages, mounted at ``admin/reports/`` (before the admin site's own URLs).

Every view goes through ``admin.site.admin_view``: staff login, ``never_cache`` and CSRF apply as
on any admin page.
"""

from django.contrib import admin
from django.urls import path

from . import report_views as views

app_name = "reports"


def _staff(view):
    return admin.site.admin_view(view)


urlpatterns = [
    path("", _staff(views.reports_index), name="index"),
    path("mine/", _staff(views.my_reports), name="mine"),
    path("export/", _staff(views.export), name="export"),
    path("pdf/", _staff(views.request_pdf), name="request_pdf"),
    path("campaign/<int:campaign_id>/pdf/", _staff(views.campaign_pdf), name="campaign_pdf"),
    path("<int:pk>/download/", _staff(views.download), name="download"),
    path("audit-log/", _staff(views.audit_log), name="audit_log"),
]
