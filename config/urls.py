from django.conf import settings
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.http import HttpResponsePermanentRedirect
from django.templatetags.static import static
from django.urls import include, path
from django.views.generic import RedirectView



def favicon(request):
    """Browsers ask for /favicon.ico whatever the page says: send them to our icon, not a 404."""
    return HttpResponsePermanentRedirect(static("signalbox/favicon.svg"))


urlpatterns = [
    path("favicon.ico", favicon, name="favicon"),
    path("i18n/", include("django.conf.urls.i18n")),
    # /healthz, /readyz, /metrics and the admin's System status page (before the admin's catch-all).
    path("", include("ops.urls")),
    path("admin/reports/", include("dashboard.report_urls")),
    path("admin/analytics/", include("dashboard.urls")),  # staff analytics pages, inside the admin shell
    # The name Unfold's login page looks for to show "Forgotten your password?": one reset flow.
    path("admin/password_reset/", RedirectView.as_view(pattern_name="password_reset"), name="admin_password_reset"),
    path("admin/", admin.site.urls),
    path(
        "accounts/login/",
        auth_views.LoginView.as_view(template_name="registration/login.html", redirect_authenticated_user=True),
        name="login",
    ),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("accounts/", include("accounts.urls")),  # password reset, invitations
    path("notifications/", include("notifications.urls")),
    path("shop/", include("demo_shop.urls")),  # the demo shop's customer page, with the embeddable inbox
    path("webhooks/", include("notifications.receipts.webhook_urls")),
    path("push/", include("channels_adapters.urls")),
    path("api/", include("api.urls")),  # REST API: /api/v1/, /api/schema/, /api/docs/
    path("", RedirectView.as_view(pattern_name="notifications:inbox", permanent=False)),
]

# ESP tracking webhooks (bounces, opens, complaints...) feed the ledger's receipts. Always mounted:
# a guard answers 404 while ANYMAIL_WEBHOOK_SECRET is unset and 403, never a 500, for unsigned
# posts or an ESP whose signing key is missing (notifications/receipts/anymail_urls.py).
urlpatterns.append(path("webhooks/anymail/", include("notifications.receipts.anymail_urls")))

if settings.DEBUG:
    from django.contrib.staticfiles.urls import staticfiles_urlpatterns

    urlpatterns += staticfiles_urlpatterns()

# A 403 that says which role is needed (accounts/forbidden.py), inside the staff layout for staff.
handler403 = "accounts.forbidden.permission_denied"
