"""Sign-in pages beside ``login``/``logout``: password reset and invitations (names un-namespaced,
as Django's auth views expect)."""

from django.urls import path

from . import views

urlpatterns = [
    path("password_reset/", views.PasswordResetRequestView.as_view(), name="password_reset"),
    path("password_reset/done/", views.PasswordResetDoneView.as_view(), name="password_reset_done"),
    path("reset/<uidb64>/<token>/", views.PasswordResetConfirmView.as_view(), name="password_reset_confirm"),
    path("reset/done/", views.PasswordResetCompleteView.as_view(), name="password_reset_complete"),
    path("invitation/<uidb64>/<token>/", views.InvitationAcceptView.as_view(), name="invitation_accept"),
]
