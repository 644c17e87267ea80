from django.contrib import admin
from django.urls import path

from . import views

app_name = "ops"
urlpatterns = [
    path("healthz", views.healthz, name="healthz"),
    path("readyz", views.readyz, name="readyz"),
    path("metrics", views.metrics, name="metrics"),
    # Inside the admin shell: staff only, never cached (admin_view); the view checks the role.
    path("admin/status/", admin.site.admin_view(views.system_status), name="system_status"),
]
