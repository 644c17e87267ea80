from django.urls import path

from . import recipient_views, views

app_name = "notifications"

urlpatterns = [
    path("", views.inbox, name="inbox"),
    path("badge/", views.badge, name="badge"),
    path("stream/", views.stream, name="stream"),
    path("read-all/", views.mark_all_read, name="mark_all_read"),
    path("<int:pk>/read/", views.mark_read, name="mark_read"),
    path("<int:pk>/open/", views.open_notification, name="open"),
    path("broadcasts/<int:pk>/read/", views.broadcast_read, name="broadcast_read"),
    path("broadcasts/<int:pk>/open/", views.broadcast_open, name="broadcast_open"),
    # Reached from messages; the signed token is the authorisation (notifications.tokens).
    path("t/o/<str:token>/", recipient_views.track_open, name="track_open"),
    path("t/c/<str:token>/", recipient_views.track_click, name="track_click"),
    path("u/<str:token>/", recipient_views.unsubscribe, name="unsubscribe"),
    path("preferences/", recipient_views.preferences_mine, name="preferences"),
    path("preferences/<str:token>/", recipient_views.preferences_by_token, name="preferences_token"),
]
