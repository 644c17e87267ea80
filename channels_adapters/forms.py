"""Forms that check what users type for a channel before it is saved."""

from __future__ import annotations

from django import forms

from .chat import validate_chat_ids


class ChatIdsAdminForm(forms.ModelForm):
    """Base admin form for a model with a ``chat_ids`` field (``RecipientProfile``): the
    personal chat address under ``"apprise"`` must pass ``validate_chat_address`` (an allowed
    service, a host that resolves only to allowed addresses) to be saved.

    Without ``Meta`` on purpose: ``ModelAdmin.form = ChatIdsAdminForm`` (or an inline's
    ``form``) lets the admin supply the model and fields.
    """

    def clean_chat_ids(self):
        value = self.cleaned_data.get("chat_ids")
        validate_chat_ids(value)
        return value
