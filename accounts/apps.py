from django.apps import AppConfig
from django.apps import apps as global_apps
from django.db.models.signals import post_migrate
from django.utils.translation import gettext_lazy as _


def _ensure_staff_roles(sender, *, using, verbosity=1, apps=global_apps, **kwargs) -> None:
    """After ``migrate``: the staff groups exist with their documented permissions.

    ``post_migrate`` is sent app by app in ``INSTALLED_APPS`` order and Django creates each app's
    permissions in its own turn, so apps listed after this one have none yet when this runs on a
    fresh database. Creating them here first (idempotent, what Django would do a moment later)
    keeps the result independent of app order.
    """
    from django.contrib.auth.management import create_permissions

    from .roles import ROLE_PERMISSIONS, roles_ensure

    app_labels = {perm.split(".", 1)[0] for perms in ROLE_PERMISSIONS.values() for perm in perms}
    for label in sorted(app_labels):
        try:
            app_config = global_apps.get_app_config(label)
        except LookupError:
            continue  # not installed here; roles_ensure logs the permissions it cannot find
        create_permissions(app_config, verbosity=0, using=using, apps=apps)
    roles_ensure(using=using, strict=False)


class AccountsConfig(AppConfig):
    """Who may do what (``accounts.roles``), signing in, lockout and password reset."""

    name = "accounts"
    verbose_name = _("Accounts")

    def ready(self) -> None:
        # Sent only for apps with a models module: hence accounts/models.py.
        post_migrate.connect(_ensure_staff_roles, sender=self, dispatch_uid="accounts.ensure_staff_roles")
        from django.contrib.auth import get_user_model
        from django.contrib.auth.signals import user_logged_in
        from django.core import checks

        from .checks import demo_passwords_check
        from .sessions import session_expiry_on_login

        user_logged_in.connect(
            session_expiry_on_login, sender=get_user_model(), dispatch_uid="accounts.session_expiry_on_login"
        )
        checks.register(demo_passwords_check, checks.Tags.security, deploy=True)
