"""Recipient pages reached from a message: unsubscribe and the preference centre.

(The open pixel and click redirects are receipts: ``notifications.receipts.views``.)

These arrive without a session (a mail client fetching an image, a recipient clicking in a
webmail tab where they are not logged in), so the signed token in the URL is the authorisation.
A tampered, expired or wrong-purpose token changes nothing and gets a 4xx.
"""

from __future__ import annotations

from dataclasses import dataclass

from django import forms
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from .. import tokens
from ..inbox import selectors
from ..models import Channel, Delivery, Preference
from ..receipts import tracking
from ..templating.context import preferences_url
from ..timezones import TimeZoneField, TimeZoneWidget
from . import preferences

ONE_CLICK_BODY = "One-Click"


def _render(request: HttpRequest, template: str, context: dict, *, status: int = 200) -> HttpResponse:
    """Render a page on the inbox layout; its nav shows the unread badge to a logged-in visitor."""
    if request.user.is_authenticated:
        context = {**context, "unread": selectors.unread_count(user=request.user)}
    return render(request, template, context, status=status)


# --- Unsubscribe ----------------------------------------------------------------------------

# CSRF-exempt on purpose. RFC 8058 one-click unsubscribe is a cross-site POST made by the mail
# provider's servers with no cookies and no CSRF token, and the confirmation page may be opened
# in a browser with no session. The signed, per-delivery token in the URL is the authorisation;
# the most a forged cross-site POST could do is unsubscribe the person that token names from
# marketing, which is what anyone holding the token may do anyway. GET never changes anything
# (link scanners and prefetchers follow GET links).
@csrf_exempt
@never_cache
@require_http_methods(["GET", "HEAD", "POST"])
def unsubscribe(request: HttpRequest, token: str) -> HttpResponse:
    """Leave the message's category on its channel (one-click or the page), or all marketing."""
    one_click = request.method == "POST" and _is_one_click(request)
    try:
        delivery = Delivery.objects.select_related("category").get(pk=tokens.read_unsubscribe_token(token))
    except (tokens.BadToken, Delivery.DoesNotExist):
        if one_click:
            return HttpResponse(_("This unsubscribe link is not valid."), status=400, content_type="text/plain; charset=utf-8")
        return _render(request, "notifications/unsubscribe.html", {"invalid": True}, status=400)
    scope = tracking.Scope.CATEGORY if one_click else request.POST.get("scope", tracking.Scope.CATEGORY)
    if request.method == "POST" and scope not in tracking.Scope.ALL:
        context = {**_unsubscribe_context(delivery), "token": token, "bad_choice": True}
        return _render(request, "notifications/unsubscribe.html", context, status=400)
    if request.method != "POST":
        return _render(request, "notifications/unsubscribe.html", {**_unsubscribe_context(delivery), "token": token})
    tracking.unsubscribe(delivery=delivery, source="one_click" if one_click else "unsubscribe_page", scope=scope)
    if one_click:
        # Mail clients want a plain 200, not a redirect or a page.
        return HttpResponse(_("You have been unsubscribed."), content_type="text/plain; charset=utf-8")
    return _render(request, "notifications/unsubscribe.html", {**_unsubscribe_context(delivery), "done": scope})


def _unsubscribe_context(delivery: Delivery) -> dict:
    """What the page names: the address, the channel, the category one may leave, the way back."""
    category = delivery.category
    leavable = category is not None and tracking.category_leavable(category)
    context = {
        "address": delivery.address,
        "channel": dict(Channel.choices).get(delivery.channel, delivery.channel),
        # No account, no preferences: the address itself is suppressed (``tracking.unsubscribe``).
        "account_gone": delivery.recipient_id is None,
        "category": category if leavable else None,
    }
    if delivery.recipient_id:
        context["preferences_url"] = preferences_url(delivery.recipient_id)
    return context


def _is_one_click(request: HttpRequest) -> bool:
    return request.POST.get("List-Unsubscribe") == ONE_CLICK_BODY


# --- Preference centre ----------------------------------------------------------------------

class PreferencesForm(forms.Form):
    """Category × channel switches, a digest per category, quiet hours and a time zone.

    Switches of categories recipients may not leave are disabled fields: Django ignores posted
    values for them, and the service ignores them as well.
    """

    quiet_hours_start = forms.TimeField(label=gettext_lazy("Quiet hours start"), required=False,
                                        widget=forms.TimeInput(attrs={"type": "time"}, format="%H:%M"))
    quiet_hours_end = forms.TimeField(label=gettext_lazy("Quiet hours end"), required=False,
                                      widget=forms.TimeInput(attrs={"type": "time"}, format="%H:%M"))
    timezone = TimeZoneField(label=gettext_lazy("Time zone"), widget=TimeZoneWidget(search_attrs={"class": "tz-search"}))

    def __init__(self, *args, state: preferences.PreferenceState, **kwargs):
        initial = {
            "timezone": state.timezone,
            "quiet_hours_start": state.quiet_hours[0] if state.quiet_hours else None,
            "quiet_hours_end": state.quiet_hours[1] if state.quiet_hours else None,
        }
        super().__init__(*args, initial=initial, **kwargs)
        self.state = state
        for category in state.categories:
            locked = not category.user_can_opt_out
            for channel in state.channels:
                self.fields[self.switch_name(category.pk, channel)] = forms.BooleanField(
                    required=False, disabled=locked, initial=(category.pk, channel) in state.enabled,
                )
            if not locked:
                self.fields[f"digest_{category.pk}"] = forms.ChoiceField(
                    label=gettext_lazy("Delivery"), choices=Preference.Digest.choices,
                    initial=state.digest[category.pk],
                )

    @staticmethod
    def switch_name(category_id: int, channel: str) -> str:
        return f"pref_{category_id}_{channel}"

    def clean(self):
        cleaned = super().clean()
        start, end = cleaned.get("quiet_hours_start"), cleaned.get("quiet_hours_end")
        if (start is None) != (end is None):
            raise ValidationError(_("Give both the start and the end of quiet hours, or neither."))
        return cleaned

    def save(self, *, user) -> None:
        data = self.cleaned_data
        choices = {
            (category.pk, channel)
            for category in self.state.categories
            if category.user_can_opt_out
            for channel in self.state.channels
            if data.get(self.switch_name(category.pk, channel))
        }
        start, end = data.get("quiet_hours_start"), data.get("quiet_hours_end")
        preferences.preferences_update(
            user=user,
            choices=choices,
            quiet_hours=(start, end) if start is not None else None,
            timezone=data["timezone"],
            digest={c.pk: data[f"digest_{c.pk}"] for c in self.state.categories if c.user_can_opt_out},
        )


@dataclass(frozen=True)
class CategoryRow:
    category: object
    locked: bool
    switches: list
    digest: object


def _rows(form: PreferencesForm) -> list[CategoryRow]:
    """Display rows: each switch paired with its channel's label, for the template to lay out."""
    labels = dict(Channel.choices)
    return [
        CategoryRow(
            category=category,
            locked=not category.user_can_opt_out,
            switches=[(labels[c], form[form.switch_name(category.pk, c)]) for c in form.state.channels],
            digest=form[f"digest_{category.pk}"] if category.user_can_opt_out else None,
        )
        for category in form.state.categories
    ]


def _preferences_page(request: HttpRequest, *, user) -> HttpResponse:
    state = preferences.preferences_state(user=user)
    if request.method == "POST":
        form = PreferencesForm(request.POST, state=state)
        if form.is_valid():
            try:
                form.save(user=user)
            except ValidationError as exc:
                form.add_error(None, exc)
            else:
                messages.success(request, _("Your preferences have been saved."))
                return redirect(request.get_full_path())
    else:
        form = PreferencesForm(state=state)
    labels = dict(Channel.choices)
    context = {"form": form, "rows": _rows(form), "channel_labels": [labels[c] for c in state.channels]}
    return _render(request, "notifications/preferences.html", context)


@never_cache
@require_http_methods(["GET", "HEAD", "POST"])
def preferences_by_token(request: HttpRequest, token: str) -> HttpResponse:
    """The preference centre from a link in a message: the signed token names the user."""
    try:
        user = get_user_model().objects.get(pk=tokens.read_preferences_token(token), is_active=True)
    except (tokens.BadToken, get_user_model().DoesNotExist):
        return _render(request, "notifications/preferences.html", {"invalid": True}, status=400)
    return _preferences_page(request, user=user)


@login_required
@never_cache
@require_http_methods(["GET", "HEAD", "POST"])
def preferences_mine(request: HttpRequest) -> HttpResponse:
    return _preferences_page(request, user=request.user)
