"""The public password reset form: an email address in, the same answer whoever it belongs to."""

from __future__ import annotations

from django import forms
from django.contrib.auth import get_user_model
from django.utils.translation import gettext_lazy as _

from .passwords import password_reset_send


class PasswordResetRequestForm(forms.Form):
    email = forms.EmailField(label=_("Email"), max_length=254)

    def save(self) -> int:
        """Email a reset link to every active user with this address (there may be several, or
        none: the page that follows says the same either way). Users without a usable password
        (imported ones) are included: this is how they choose their first one."""
        users = get_user_model().objects.filter(email__iexact=self.cleaned_data["email"], is_active=True)
        return sum(password_reset_send(user=user) for user in users.select_related("recipient_profile"))
