"""Admin forms for categories and suppressions: the checks a person sees as form errors.

The services (``notifications.categories``, ``notifications.receipts.tracking``) decide; these forms ask
them first, so a refused change comes back as a sentence on the form instead of a 403.
"""

from __future__ import annotations

from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _
from unfold.widgets import UnfoldBooleanSwitchWidget

from accounts.roles import allows

from .. import categories
from ..models import Category, Suppression
from ..querysets import address_validate


class CategoryForm(forms.ModelForm):
    """A category; a change that would send to people who opted out needs a Manager and a tick."""

    actor = None  # the signed-in user, set by ``CategoryAdmin.get_form``

    confirm_override = forms.BooleanField(
        label=_("Send to the people who opted out"),
        required=False,
        widget=UnfoldBooleanSwitchWidget,
        help_text=_("Needed only when a change would send this category to people who opted out of it."),
    )

    class Meta:
        model = Category
        fields = list(categories.EDITABLE_FIELDS)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        policy = self.fields.get("resend_policy")
        if policy is not None and self.instance.pk is None:
            # A new category gets what its kind suggests unless someone chooses.
            policy.required = False
            policy.choices = [("", _("As its kind suggests: at least once if transactional, else at most once")),
                              *Category.ResendPolicy.choices]
            if "resend_policy" not in (kwargs.get("initial") or {}):
                self.initial["resend_policy"] = ""

    def clean(self):
        cleaned = super().clean()
        if self.instance.pk is None:
            return cleaned
        changes = {name: cleaned[name] for name in ("kind", "user_can_opt_out") if name in cleaned}
        override = categories.category_override_check(category=self.instance, changes=changes)
        if override is None:
            return cleaned
        may_override = allows(self.actor, "category.override_optouts")
        if not may_override:
            raise ValidationError(override.message(may_override=False), code="needs_manager")
        if not cleaned.get("confirm_override"):
            self.add_error("confirm_override", override.message(may_override=True))
        return cleaned


class SuppressionForm(forms.ModelForm):
    """A new suppression: the address is checked and stored normalised, like every other writer's."""

    class Meta:
        model = Suppression
        fields = ["channel", "address", "reason", "user", "note"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if "reason" in self.fields and not self.initial.get("reason"):
            self.initial["reason"] = Suppression.Reason.MANUAL

    def clean(self):
        cleaned = super().clean()
        channel, address = cleaned.get("channel"), cleaned.get("address")
        if channel and address is not None:
            try:
                # Normalised before the unique check runs, so ``Ada@Example.com`` is a duplicate
                # of ``ada@example.com`` and both stop the same mail.
                cleaned["address"] = address_validate(channel, address)
            except ValidationError as error:
                self.add_error("address", error)
        return cleaned
