"""Users and groups in the Unfold shell, with the recipient profile alongside the user."""

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import GroupAdmin as BaseGroupAdmin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.contrib.auth.models import Group
from unfold.admin import ModelAdmin, StackedInline
from unfold.forms import AdminPasswordChangeForm, UserChangeForm, UserCreationForm

from notifications.models import RecipientProfile

User = get_user_model()

admin.site.unregister(User)
admin.site.unregister(Group)


class RecipientProfileInline(StackedInline):
    model = RecipientProfile
    can_delete = False
    extra = 0


@admin.register(User)
class UserAdmin(BaseUserAdmin, ModelAdmin):
    form = UserChangeForm
    add_form = UserCreationForm
    change_password_form = AdminPasswordChangeForm
    inlines = [RecipientProfileInline]
    list_display = ["username", "email", "first_name", "last_name", "is_staff", "date_joined"]


@admin.register(Group)
class GroupAdmin(BaseGroupAdmin, ModelAdmin):
    pass


from . import admin_imports  # noqa: F401
