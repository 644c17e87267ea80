from django.urls import path

from .inbox import views as inbox_views
from .receipts import views as receipt_views
from .recipients import views as recipient_views

app_name = "notifications"

urlpatterns = [
    path("", inbox_views.inbox, name="inbox"),
    path("badge/", inbox_views.badge, name="badge"),
    path("stream/", inbox_views.stream, name="stream"),
    path("feed/", inbox_views.feed, name="feed"),
    path("read-all/", inbox_views.mark_all_read, name="mark_all_read"),
    path("<int:pk>/read/", inbox_views.mark_read, name="mark_read"),
    path("<int:pk>/open/", inbox_views.open_notification, name="open"),
    path("broadcasts/<int:pk>/read/", inbox_views.broadcast_read, name="broadcast_read"),
    path("broadcasts/<int:pk>/open/", inbox_views.broadcast_open, name="broadcast_open"),
    # Reached from messages; the signed token is the authorisation (notifications.tokens).
    path("t/o/<str:token>/", receipt_views.track_open, name="track_open"),
    path("t/c/<str:token>/", receipt_views.track_click, name="track_click"),
    path("u/<str:token>/", recipient_views.unsubscribe, name="unsubscribe"),
    path("preferences/", recipient_views.preferences_mine, name="preferences"),
    path("preferences/<str:token>/", recipient_views.preferences_by_token, name="preferences_token"),
]
