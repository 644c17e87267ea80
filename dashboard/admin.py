"""Users and groups in the Unfold shell, with the recipient profile alongside the user.

Who may change what follows ``accounts.roles``:

* ``staff.manage`` (superusers only): staff accounts, the staff and superuser flags, groups,
  permissions and every password. No group holds a permission for this, so no group edit can
  hand it out.
* ``recipient.manage`` (Operators): recipients, that is non-staff users, their names, email,
  active flag and profile. The Operator's forms have no privilege field and no password field;
  a recipient who needs a password gets a reset link by email.

Every change to a privilege (staff, superuser, active, password, groups, permissions) is an
``AuditEntry`` whatever made it (``dashboard.privileges``).
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import GroupAdmin as BaseGroupAdmin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.contrib.auth.models import Group
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.core.handlers.asgi import ASGIRequest
from django.http import Http404, HttpResponseRedirect, StreamingHttpResponse
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.http import content_disposition_header
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext
from unfold.admin import ModelAdmin, StackedInline
from unfold.decorators import action
from unfold.forms import AdminPasswordChangeForm, UserChangeForm, UserCreationForm
from unfold.overrides import FORMFIELD_OVERRIDES_INLINE
from unfold.widgets import UnfoldAdminEmailInputWidget, UnfoldAdminTextInputWidget

from accounts.names import full_name
from accounts.roles import allows
from channels_adapters.forms import ChatIdsAdminForm
from notifications.jsonsafe import safe_json_formfields
from notifications.models import RecipientProfile

from .privileges import acting_as
from .reports.exports import async_chunks

User = get_user_model()

admin.site.unregister(User)
admin.site.unregister(Group)

PRIVILEGE_FIELDSET = (_("Permissions"), {"fields": ["is_active", "is_staff", "is_superuser", "groups", "user_permissions"]})


class RecipientProfileInline(StackedInline):
    model = RecipientProfile
    form = ChatIdsAdminForm  # a personal chat address is checked against the chat SSRF rules on save
    formfield_overrides = safe_json_formfields(FORMFIELD_OVERRIDES_INLINE)  # chat ids: no 500 on bad JSON
    can_delete = False
    extra = 0


class RecipientCreationForm(forms.ModelForm):
    """What an Operator fills in to add a recipient: no password (they choose their own)."""

    class Meta:
        model = User
        fields = ["username", "email", "first_name", "last_name"]
        widgets = {
            "username": UnfoldAdminTextInputWidget, "email": UnfoldAdminEmailInputWidget,
            "first_name": UnfoldAdminTextInputWidget, "last_name": UnfoldAdminTextInputWidget,
        }

    def save(self, commit=True):
        user = super().save(commit=False)
        user.set_unusable_password()
        user.is_staff = user.is_superuser = False
        if commit:
            user.save()
        return user


def _is_privileged(user) -> bool:
    return bool(user.is_staff or user.is_superuser)


@admin.register(User)
class UserAdmin(BaseUserAdmin, ModelAdmin):
    form = UserChangeForm
    add_form = UserCreationForm
    change_password_form = AdminPasswordChangeForm
    inlines = [RecipientProfileInline]
    list_display = ["username", "email", "shown_name", "is_staff", "date_joined"]
    actions = ["send_password_reset"]
    actions_detail = ["export_personal_data", "erase_personal_data"]

    @admin.display(description=_("name"), ordering="last_name")
    def shown_name(self, obj) -> str:
        """杨欢 for 欢 (given) and 杨 (family), Huan Yang for Huan and Yang (``accounts.names``)."""
        return full_name(obj.first_name, obj.last_name)

    # --- Who may change whom -------------------------------------------------------------------

    def has_change_permission(self, request, obj=None):
        if not super().has_change_permission(request, obj):
            return False
        if allows(request.user, "staff.manage"):
            return True
        if obj is not None and _is_privileged(obj):
            return False  # staff accounts are the superusers' to change
        return allows(request.user, "recipient.manage")

    def has_delete_permission(self, request, obj=None):
        if obj is not None and _is_privileged(obj):
            return allows(request.user, "staff.manage") and super().has_delete_permission(request, obj)
        return super().has_delete_permission(request, obj)

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("groups")

    # --- Forms: Operators never see a privilege or password field -----------------------------

    def get_form(self, request, obj=None, **kwargs):
        if obj is None and not allows(request.user, "staff.manage"):
            kwargs["form"] = RecipientCreationForm
            kwargs["fields"] = RecipientCreationForm.Meta.fields
            return super(BaseUserAdmin, self).get_form(request, obj, **kwargs)
        return super().get_form(request, obj, **kwargs)

    def get_fieldsets(self, request, obj=None):
        manager = allows(request.user, "staff.manage")
        if obj is None:
            if manager:
                return self.add_fieldsets
            return [(None, {"fields": RecipientCreationForm.Meta.fields})]
        fieldsets = [
            (None, {"fields": ["username", "password"] if manager else ["username"]}),
            (_("Personal info"), {"fields": ["first_name", "last_name", "email"]}),
            PRIVILEGE_FIELDSET if manager else (_("Status"), {"fields": ["is_active"]}),
            (_("Important dates"), {"fields": ["last_login", "date_joined"]}),
        ]
        return fieldsets

    def get_readonly_fields(self, request, obj=None):
        if allows(request.user, "staff.manage"):
            return ["last_login", "date_joined"]
        return ["last_login", "date_joined", "is_staff", "is_superuser"]

    def user_change_password(self, request, id, form_url=""):
        # Setting anyone's password is the superusers' (a recipient gets a reset link instead).
        if not allows(request.user, "staff.manage"):
            raise PermissionDenied
        with acting_as(request.user):
            return super().user_change_password(request, id, form_url)

    # --- Saving: privilege changes are audited with who made them ------------------------------

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        with acting_as(request.user):
            return super().changeform_view(request, object_id, form_url, extra_context)

    def delete_view(self, request, object_id, extra_context=None):
        with acting_as(request.user):
            return super().delete_view(request, object_id, extra_context)

    def save_model(self, request, obj, form, change):
        if not allows(request.user, "staff.manage") and (_is_privileged(obj) or obj.is_superuser):
            raise PermissionDenied  # a forged form cannot make a staff account
        super().save_model(request, obj, form, change)

    # --- Actions -------------------------------------------------------------------------------

    @admin.action(description=_("Email a link to choose a new password"), permissions=["change"])
    def send_password_reset(self, request, queryset):
        from accounts.passwords import password_reset_send

        sent = skipped = 0
        for user in queryset.order_by("pk"):
            if _is_privileged(user) and not allows(request.user, "staff.manage"):
                skipped += 1
                continue
            sent += bool(password_reset_send(user=user, actor=request.user))
        self.message_user(request, ngettext(
            "A link to choose a password was emailed to %(count)d user.",
            "A link to choose a password was emailed to %(count)d users.", sent) % {"count": sent}, messages.SUCCESS)
        if skipped:
            self.message_user(request, ngettext(
                "%(count)d staff account was skipped: only superusers manage staff.",
                "%(count)d staff accounts were skipped: only superusers manage staff.", skipped) % {"count": skipped},
                messages.WARNING)


    # --- One person's data (notifications.privacy): export and erase ------------------------------

    def has_export_personal_data_permission(self, request, object_id=None) -> bool:
        return allows(request.user, "person.export")

    def has_erase_personal_data_permission(self, request, object_id=None) -> bool:
        return allows(request.user, "person.erase")

    def _person_or_404(self, request, object_id: str):
        user = self.get_object(request, unquote(str(object_id)))
        if user is None:
            raise Http404(_("No such person."))
        return user

    @action(
        description=_("Export personal data"), url_path="export-personal-data", icon="download",
        permissions=["export_personal_data"],
    )
    def export_personal_data(self, request, object_id: str):
        """Everything held about this person as a ZIP of JSON and CSV, streamed as it is written."""
        from notifications.privacy import person_load
        from notifications.privacy.export import person_export_stream

        person = person_load(self._person_or_404(request, object_id))
        pieces = person_export_stream(person=person, actor=request.user)
        chunks = async_chunks(pieces) if isinstance(request, ASGIRequest) else pieces
        response = StreamingHttpResponse(chunks, content_type="application/zip")
        response["Content-Disposition"] = content_disposition_header(
            as_attachment=True, filename=f"signalbox-person-{person.pk}.zip"
        )
        response["Cache-Control"] = "no-store"
        return response

    @action(
        description=_("Erase personal data"), url_path="erase-personal-data", icon="person_remove",
        permissions=["erase_personal_data"],
    )
    def erase_personal_data(self, request, object_id: str):
        """A confirmation page (GET); erasing needs a POST with the person's id typed in."""
        from notifications.privacy import ErasureRefused, person_erase, person_load

        user = self._person_or_404(request, object_id)
        form = PersonEraseForm(request.POST or None, person_id=user.pk)
        if request.method == "POST" and form.is_valid():
            try:
                rows = person_erase(person=person_load(user), actor=request.user)
            except ErasureRefused as exc:
                form.add_error(None, str(exc))
            else:
                self.message_user(request, _(
                    "Person #%(id)d was erased: %(deliveries)d deliveries and %(inbox)d inbox messages kept "
                    "without anything that says who they were; their suppressions kept as keyed hashes."
                ) % {"id": user.pk, "deliveries": rows.get("deliveries", 0), "inbox": rows.get("inbox", 0)},
                    messages.SUCCESS)
                return HttpResponseRedirect(reverse("admin:auth_user_change", args=[user.pk]))
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "original": user,
            "title": _("Erase the personal data of person #%(id)d") % {"id": user.pk},
            "form": form,
            "person_id": user.pk,
            "refused": _is_privileged(user),
            "change_url": reverse("admin:auth_user_change", args=[user.pk]),
        }
        return TemplateResponse(request, "dashboard/person_erase.html", context,
                                status=400 if request.method == "POST" else 200)


class PersonEraseForm(forms.Form):
    """Typing the person's id is the confirmation: erasing cannot be undone."""

    confirmation = forms.CharField(
        label=_("Type the person's id to confirm"), max_length=20, widget=UnfoldAdminTextInputWidget,
    )

    def __init__(self, *args, person_id: int, **kwargs):
        super().__init__(*args, **kwargs)
        self.person_id = person_id

    def clean_confirmation(self) -> str:
        value = self.cleaned_data["confirmation"].strip().lstrip("#")
        if value != str(self.person_id):
            raise forms.ValidationError(_("Type %(id)d to confirm.") % {"id": self.person_id})
        return value


@admin.register(Group)
class GroupAdmin(BaseGroupAdmin, ModelAdmin):
    """Groups are roles: only superusers change them (``roles_ensure`` puts the documented
    permissions back on every migrate anyway)."""

    def has_add_permission(self, request):
        return allows(request.user, "staff.manage")

    def has_change_permission(self, request, obj=None):
        return allows(request.user, "staff.manage")

    def has_delete_permission(self, request, obj=None):
        return allows(request.user, "staff.manage")

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        with acting_as(request.user):
            return super().changeform_view(request, object_id, form_url, extra_context)


from . import admin_imports  # noqa: E402,F401
