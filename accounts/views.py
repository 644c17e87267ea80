"""Password reset and invitation pages: Django's views, Signalbox's form, templates and email."""

from __future__ import annotations

from django.contrib.auth import views as auth_views
from django.http import HttpResponseRedirect
from django.utils.translation import gettext_lazy as _

from .forms import PasswordResetRequestForm
from .passwords import INVITATION, RESET, invitation_token_generator, password_set_by_link


def layout_context(request) -> dict:
    """What the inbox layout (``notifications/base.html``) needs: the unread badge of a signed-in
    visitor (these pages are public, so anyone may open them signed in)."""
    if not request.user.is_authenticated:
        return {}
    from notifications.inbox.selectors import unread_count

    return {"unread": unread_count(user=request.user)}


class InboxLayoutMixin:
    def get_context_data(self, **kwargs):
        return {**super().get_context_data(**kwargs), **layout_context(self.request)}


class PasswordResetRequestView(InboxLayoutMixin, auth_views.PasswordResetView):
    """Asks for an email address; the email goes out through the ledger (``password_reset_send``)."""

    form_class = PasswordResetRequestForm
    template_name = "registration/password_reset_form.html"

    def form_valid(self, form):
        form.save()
        # The same page whether or not the address belongs to anyone: no account enumeration.
        return HttpResponseRedirect(self.get_success_url())


class PasswordResetDoneView(InboxLayoutMixin, auth_views.PasswordResetDoneView):
    pass


class PasswordResetConfirmView(InboxLayoutMixin, auth_views.PasswordResetConfirmView):
    kind = RESET

    def form_valid(self, form):
        response = super().form_valid(form)
        password_set_by_link(user=form.user, kind=self.kind)
        return response


class InvitationAcceptView(PasswordResetConfirmView):
    """The invitation link: the same set-password step with its own tokens and wording."""

    kind = INVITATION
    token_generator = invitation_token_generator
    template_name = "registration/invitation_confirm.html"
    title = _("Choose your password")


class PasswordResetCompleteView(InboxLayoutMixin, auth_views.PasswordResetCompleteView):
    pass
